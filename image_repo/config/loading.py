"""Loading the settings: defaults, the YAML file, the environment, then checks.

Sources, later wins: defaults < YAML file (``-y``) < environment ``IMAGE_REPO_<KEY>``
(nested keys joined by ``__``). Then unset Swift and S3 credentials are filled from the
usual ``ST_*`` / ``OS_*`` / ``AWS_*`` variables, so backends read only settings: nothing
outside this module reads the environment.

Any setting may be given in YAML as ``{"$env": NAME}`` or ``{"$file": path}`` (relative
paths from the YAML file's directory; one trailing newline stripped). A reference's text,
like an environment value, is read by the setting's type: strings verbatim (empty means
null for optional ones), lists as ``[a, b]`` or ``a,b``, other types as a YAML scalar.
Sizes in bytes (``*_bytes``) also take ``256MiB`` / ``2GB``. The 2016 server's keys are
accepted (see legacy.py).
"""
from __future__ import annotations

import difflib
import logging
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import yaml

from ..errors import ConfigError
from .settings import Settings, iter_settings, setting_fields
from .types import STR_OR_LIST, check, from_text, show, unwrap


log = logging.getLogger("image_repo.settings")

ENV_PREFIX = "IMAGE_REPO_"
CONFIG_VARIABLE = "IMAGE_REPO_CONFIG"
"""Path of the YAML file for ``image_repo.web.wsgi`` (not a setting, so not ``IMAGE_REPO_<KEY>``)."""
TEST_POINTS_VARIABLE = "IMAGE_REPO_TEST_POINTS"
"""A directory that turns on the test points (image_repo/testpoints.py); tests only, never a setting."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_DIGESTS = ("sha1", "sha256", "sha512")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")
_RETRY_MODES = ("standard", "adaptive", "legacy")

# Unset credentials are filled from the first of these variables that is set and not empty.
_SWIFT_ENV: dict[str, tuple[str, ...]] = {
    "auth_url": ("OS_AUTH_URL",),
    "auth_version": ("OS_IDENTITY_API_VERSION", "OS_AUTH_VERSION"),
    "user": ("OS_USERNAME",),
    "key": ("OS_PASSWORD",),
    "tenant_name": ("OS_TENANT_NAME", "OS_PROJECT_NAME"),
    "tenant_id": ("OS_TENANT_ID", "OS_PROJECT_ID"),
    "user_domain_name": ("OS_USER_DOMAIN_NAME",),
    "project_domain_name": ("OS_PROJECT_DOMAIN_NAME",),
    "application_credential_id": ("OS_APPLICATION_CREDENTIAL_ID",),
    "application_credential_secret": ("OS_APPLICATION_CREDENTIAL_SECRET",),
    "region_name": ("OS_REGION_NAME",),
    "storage_url": ("OS_STORAGE_URL",),
    "token": ("OS_AUTH_TOKEN",),
}
_SWIFT_V1_ENV: dict[str, tuple[str, ...]] = {
    "auth_url": ("ST_AUTH",), "auth_version": ("ST_AUTH_VERSION",), "user": ("ST_USER",), "key": ("ST_KEY",),
}
_S3_ENV: dict[str, tuple[str, ...]] = {
    "endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "region": ("AWS_DEFAULT_REGION", "AWS_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
}



def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, then the YAML file at ``path``, then ``IMAGE_REPO_*`` variables."""
    env = os.environ if environ is None else environ
    loader = _Loader(env, os.path.dirname(os.path.abspath(path)) if path else os.getcwd())
    s = Settings()
    if path:
        raw = _read_yaml(path)
        from . import legacy as config_legacy

        if config_legacy.is_legacy(raw):
            translated = config_legacy.translate(raw)
            raw, loader.origins = translated.raw, translated.origins
            for warning in translated.warnings:
                log.warning("%s", warning)
        loader.merge(s, raw, "")
    loader.overlay(s)
    loader.fill_credentials(s)
    _validate(s)
    s.references = loader.refs
    return s


def load_settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a WSGI server: the YAML file named by ``IMAGE_REPO_CONFIG``, if any."""
    env = os.environ if environ is None else environ
    return load_settings(env.get(CONFIG_VARIABLE) or None, env)


def test_points_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The directory of the test points if a test turned them on, else None (every server in use)."""
    return (os.environ if environ is None else environ).get(TEST_POINTS_VARIABLE) or None


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except OSError as e:
        raise ConfigError(f"config: cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config: {path}:{where}: invalid YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: {path}: expected a mapping of settings, got {show(raw)}")
    return raw


class _Loader:
    """Merges raw values into a Settings, type-checking each and remembering references."""

    def __init__(self, environ: Mapping[str, str], base_dir: str) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.refs: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    def merge(self, obj: Any, data: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(obj))
        by_name = {f.name: f for f in setting_fields(type(obj))}
        for k, v in data.items():
            key = f"{prefix}{k}"
            f = by_name.get(k) if isinstance(k, str) else None
            if f is None:
                raise _unknown(key, [prefix + n for n in by_name])
            tp = hints[f.name]
            if is_dataclass(tp):
                if v is None:
                    continue  # "swift:" with nothing under it
                if not isinstance(v, Mapping) or _is_ref(v):
                    raise ConfigError(f"config: {key}: expected a section (a mapping of settings), got {show(v)}")
                self.merge(getattr(obj, f.name), v, key + ".")
            else:
                setattr(obj, f.name, self.value(v, tp, key, bool(f.metadata["secret"])))

    def value(self, raw: Any, tp: Any, key: str, secret: bool) -> Any:
        source = f" (from {self.origins[key]})" if key in self.origins else ""
        self.refs.pop(key, None)
        if _is_ref(raw):
            text = self.resolve(raw, key)
            self.refs[key] = dict(raw)
            return from_text(text, tp, key + source, secret)
        list_tp = tp if typing.get_origin(tp) is list else list[str] if unwrap(tp)[0] == STR_OR_LIST else None
        if isinstance(raw, list) and raw and list_tp is not None:
            (item_tp,) = typing.get_args(list_tp)
            items: list[Any] = []
            item_refs: list[dict[str, Any] | None] = []
            for i, item in enumerate(raw):
                ikey = f"{key}[{i}]"
                if _is_ref(item):
                    items.append(from_text(self.resolve(item, ikey), item_tp, ikey + source, secret))
                    item_refs.append(dict(item))
                else:
                    items.append(check(item, item_tp, ikey + source, secret))
                    item_refs.append(None)
            if any(item_refs):
                self.refs[key] = item_refs
            return items
        return check(raw, tp, key + source, secret)

    def resolve(self, ref: Mapping[str, Any], key: str) -> str:
        """The text an ``{"$env": NAME}`` or ``{"$file": path}`` reference points at."""
        kind, arg = next(iter(ref.items()))
        if not isinstance(arg, str) or not arg:
            raise ConfigError(f"config: {key}: {kind} needs a {'variable name' if kind == '$env' else 'path'}")
        if kind == "$env":
            if arg not in self.environ:
                raise ConfigError(f"config: {key}: environment variable {arg} is not set")
            return self.environ[arg]
        path = os.path.join(self.base_dir, os.path.expanduser(arg))
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config: {key}: cannot read {arg}: {getattr(e, 'strerror', None) or e}") from None

    def overlay(self, s: Settings) -> None:
        """Apply ``IMAGE_REPO_<KEY>`` variables (nested keys joined by ``__``)."""
        for name in sorted(self.environ):
            if not name.startswith(ENV_PREFIX) or name in (CONFIG_VARIABLE, TEST_POINTS_VARIABLE):
                continue
            parts = name[len(ENV_PREFIX):].lower().split("__")
            obj: Any = s
            for depth, part in enumerate(parts):
                key = ".".join(parts[: depth + 1])
                hints = typing.get_type_hints(type(obj))
                by_name = {f.name: f for f in setting_fields(type(obj))}
                f = by_name.get(part)
                if f is None or (depth < len(parts) - 1 and not is_dataclass(hints[part])):
                    raise ConfigError(f"config: unknown setting '{key}' (from {name})")
                if is_dataclass(hints[part]):
                    if depth == len(parts) - 1:
                        raise ConfigError(f"config: {key} (from {name}): is a section; set its keys as {name}__<KEY>")
                    obj = getattr(obj, part)
                    continue
                secret = bool(f.metadata["secret"])
                setattr(obj, part, from_text(self.environ[name], hints[part], f"{key} (from {name})", secret))
                self.refs.pop(key, None)
                if secret:  # so -Y prints where the secret is, never the secret
                    self.refs[key] = {"$env": name}

    def fill_credentials(self, s: Settings) -> None:
        """Fill unset Swift and S3 credentials from ST_* / OS_* / AWS_* variables."""
        swift_env = dict(_SWIFT_ENV)
        v1 = s.swift.auth_url is None and bool(self.environ.get("ST_AUTH"))
        if v1:  # swiftclient's v1 variables, which it prefers when ST_AUTH is set
            swift_env.update(_SWIFT_V1_ENV)
        for section_name, table in (("swift", swift_env), ("s3", _S3_ENV)):
            sect = getattr(s, section_name)
            secrets = {f.name for f in fields(sect) if f.metadata.get("secret")}
            for attr, names in table.items():
                if getattr(sect, attr) is not None:
                    continue
                if section_name == "s3" and s.s3.credentials_file and attr in _S3_FILE_KEYS:
                    continue  # a configured credentials file comes before AWS_* variables
                name = next((n for n in names if self.environ.get(n)), None)
                if name is not None:
                    setattr(sect, attr, self.environ[name])
                    if attr in secrets:
                        self.refs[f"{section_name}.{attr}"] = {"$env": name}
        if v1 and s.swift.auth_version is None:
            s.swift.auth_version = "1"


_S3_FILE_KEYS = frozenset({"access_key_id", "secret_access_key", "session_token"})


def _is_ref(value: Any) -> bool:
    if not isinstance(value, Mapping) or not any(isinstance(k, str) and k.startswith("$") for k in value):
        return False
    if len(value) != 1 or next(iter(value)) not in ("$env", "$file"):
        raise ConfigError('config: a reference is {"$env": NAME} or {"$file": path}, got ' + show(dict(value)))
    return True


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"config: unknown setting '{key}'{hint}")


def _validate(s: Settings) -> None:
    """Checks a type cannot express; normalises spellings so the dump shows one."""
    from ..imaging.formats import KINDS, output_kind

    for key, f, tp, value in iter_settings(s):
        if (tp is int or tp is float) and value < 0:
            raise ConfigError(f"config: {key}: expected a value of 0 or more, got {show(value)}")
        if tp is float and not math.isfinite(value):
            raise ConfigError(f"config: {key}: expected a finite number, got {show(value)}")
    if s.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"config: log_level: expected one of {', '.join(LOG_LEVELS)}, got {show(s.log_level)}")
    s.log_level = s.log_level.lower()
    kind = output_kind(s.default_kind)
    if kind is None:
        raise ConfigError(f"config: default_kind: expected one of {', '.join(KINDS)}, got {show(s.default_kind)}")
    s.default_kind = kind.name
    from ..imaging.derive import RESAMPLE_FILTERS

    if s.resample_filter.lower() not in RESAMPLE_FILTERS:
        raise ConfigError(f"config: resample_filter: expected one of {', '.join(RESAMPLE_FILTERS)}, got {show(s.resample_filter)}")
    s.resample_filter = s.resample_filter.lower()
    for i, origin in enumerate(s.cors_origins):
        if origin != "*" and not _ORIGIN.fullmatch(origin.strip().rstrip("/")):
            raise ConfigError(f"config: cors_origins[{i}]: expected '*' or an origin such as https://example.org (scheme, host, port; no path), got {show(origin)}")
    size = s.thumbnail_default_size
    if len(size) != 2 or not all(1 <= v <= 9999 for v in size):
        raise ConfigError(f"config: thumbnail_default_size: expected [width, height], each 1..9999, got {size!r}")
    if s.pyramid_read_chunk_bytes < 0:
        raise ConfigError(f"config: pyramid_read_chunk_bytes: expected 0 or more, got {s.pyramid_read_chunk_bytes}")
    if not 1 <= s.pyramid_jpeg_quality <= 100:
        raise ConfigError(f"config: pyramid_jpeg_quality: expected 1..100, got {s.pyramid_jpeg_quality}")
    for key, low in (("threads", 1), ("url_lifetime", 1), ("iiif_tile_size", 64)):
        if getattr(s, key) < low:
            raise ConfigError(f"config: {key}: expected {low} or more, got {getattr(s, key)}")
    if s.swift.temp_url_digest.lower() not in _DIGESTS:
        raise ConfigError(f"config: swift.temp_url_digest: expected one of {', '.join(_DIGESTS)}, got {show(s.swift.temp_url_digest)}")
    s.swift.temp_url_digest = s.swift.temp_url_digest.lower()
    if s.s3.retry_mode.lower() not in _RETRY_MODES:
        raise ConfigError(f"config: s3.retry_mode: expected one of {', '.join(_RETRY_MODES)}, got {show(s.s3.retry_mode)}")
    s.s3.retry_mode = s.s3.retry_mode.lower()
