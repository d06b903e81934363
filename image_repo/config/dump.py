"""Settings as commented YAML (``image_repo -Yt``) and as the README's Markdown table.

The dump loads back to the same settings and dumps to the same text, with one exception
made on purpose: a secret given literally (not by reference) prints as ``null``, because a
dump must never show a secret. Secrets given as ``{"$env": NAME}`` or ``{"$file": path}``,
or taken from the environment, print as those references.
"""
from __future__ import annotations

import json
import math
from dataclasses import is_dataclass
from typing import Any

from .loading import ENV_PREFIX

from .settings import Settings, iter_settings, setting_fields

HEADER = """\
# image_repo configuration: every setting, with its help and default.
# Made by `image_repo -Yt`; use with `image_repo -y FILE`. Variables IMAGE_REPO_<KEY>
# (nested keys joined by __, e.g. IMAGE_REPO_DISK_CACHE__MAX_BYTES) override this file.
# Any value may be {"$env": NAME} or {"$file": path}. Secrets are never printed: they
# show as such references, or as null marked "(set, hidden)" when given literally.
"""

_COMMENT_COLUMN = 44  # lines longer than this get their comment two spaces after the value


def yaml_value(value: Any) -> str:
    """One value as a YAML flow scalar that PyYAML reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
        text = repr(value)
        # YAML 1.1 (PyYAML) reads 1e+20 as a string: it wants a dot in the mantissa.
        if "e" in text and "." not in text.split("e")[0]:
            text = text.replace("e", ".0e", 1)
        return text
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {yaml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot dump {type(value).__name__}")


def _shown(key: str, value: Any, default: Any, secret: bool, refs: dict[str, Any]) -> tuple[str, bool]:
    """(the text printed for a setting, whether a secret was hidden)."""
    ref = refs.get(key)
    if isinstance(ref, dict):
        return yaml_value(ref), False
    if isinstance(ref, list) and all(ref):
        return yaml_value(ref), False
    if secret and value != default:
        return "null", True
    return yaml_value(value), False


def dump_yaml(settings: Settings | None = None) -> str:
    """Every setting as commented YAML: value, then ``# help (default: X)``; secrets hidden."""
    s = Settings() if settings is None else settings
    defaults = {key: value for key, _, _, value in iter_settings(Settings())}
    out = [HEADER, "\n"]
    lines: list[tuple[str, str]] = []

    def flush() -> None:
        fitting = [len(code) for code, _ in lines if len(code) <= _COMMENT_COLUMN]
        column = max(fitting, default=0) + 2
        for code, comment in lines:
            pad = " " * max(column - len(code), 2)
            out.append(f"{code}{pad}# {comment}\n")
        lines.clear()

    def walk(obj: Any, indent: str, prefix: str) -> None:
        for f in setting_fields(type(obj)):
            key = prefix + f.name
            value = getattr(obj, f.name)
            if is_dataclass(value):
                flush()
                out.append(f"\n{indent}{f.name}:  # {f.metadata['help']}\n")
                walk(value, indent + "  ", key + ".")
                flush()
                if indent == "":
                    out.append("\n")
                continue
            text, hidden = _shown(key, value, defaults[key], bool(f.metadata["secret"]), s.references)
            comment = ("(set, hidden) " if hidden else "") + f"{f.metadata['help']} (default: {yaml_value(defaults[key])})"
            lines.append((f"{indent}{f.name}: {text}", comment))

    walk(s, "", "")
    flush()
    text = "".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def settings_table_markdown() -> str:
    """The README table: one row per setting with its variable, default and help."""
    rows = [
        "| Setting | Environment variable | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    for key, f, _, value in iter_settings(Settings()):
        env = ENV_PREFIX + key.replace(".", "__").upper()
        help_text = str(f.metadata["help"]).replace("|", "\\|")
        secret = " Secret: never printed." if f.metadata["secret"] else ""
        default = yaml_value(value).replace("|", "\\|")
        rows.append(f"| `{key}` | `{env}` | `{default}` | {help_text}{secret} |")
    return "\n".join(rows) + "\n"
