"""The 2016 server's configuration keys, translated to today's settings.

A 2016 ``image_repo -Yt`` dump (or the hand-edited ``docker/config.yml``) loads as it is:
keys that still mean something are mapped, every other one is ignored and named in one
warning. Python-style values the 2016 dump wrote (``None``, ``('env', 'OS_AUTH_URL')``)
are understood. Where a 2016 key and a current key set the same thing, the current key
wins. Nothing here ever deletes anything: ``initialise`` and ``initialise_store`` are
ignored.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

_CACHE_KEYS = frozenset(
    {"alarm_free_threshold", "eager_writeback", "evict_free_threshold", "evict_hysterysis",
     "max_elements", "max_size", "next_level", "priority"}
)
_LOCAL_KEYS = _CACHE_KEYS | {"cache_path", "initialise"}
_SWIFT_KEYS = _CACHE_KEYS | {
    "container", "credentials", "download_path", "initialise_store", "server_url", "url_key",
    "url_lifetime", "url_lifetime_slack", "url_method", "use_file_cache",
}
_TOP_IGNORED = frozenset(
    {"alarm_threshold", "cannonical_format", "cannonical_format_used", "create_new",
     "local_file_cache_path", "max_images", "max_size", "owner", "pid_file", "thumbnail_equalise",
     "thumbnail_liquid_cutin_ratio", "thumbnail_liquid_resize", "thumbnail_sharpen"}
)
_SECTIONS: dict[str, frozenset[str]] = {
    "local_cache_configuration": _LOCAL_KEYS,
    "memory_cache_configuration": _CACHE_KEYS,
    # Order matters where both sections map to one setting: the 2016 server signed
    # temporary URLs with the cache section's key, so it is read first.
    "swift_cache_configuration": _SWIFT_KEYS,
    "persistent_store_configuration": _SWIFT_KEYS,
}
LEGACY_KEYS = _TOP_IGNORED | {"image_default_format", "thumbnail_default_format"} | set(_SECTIONS)

_ONE_GIB = 1073741824  # the 2016 default max_size of every cache section
_DEFAULT_URL_KEY = "123456789"

# credentials key -> (setting, the variable the 2016 default read, which our env fill reads too)
_CREDENTIALS = {
    "authurl": ("swift.auth_url", "OS_AUTH_URL"),
    "username": ("swift.user", "OS_USERNAME"),
    "password": ("swift.key", "OS_PASSWORD"),
    "tenant": ("swift.tenant_name", "OS_TENANT_NAME"),
    "tenant_id": ("swift.tenant_id", "OS_TENANT_ID"),
}
_PAIR = re.compile(r"""^\(\s*['"](\w+)['"]\s*,\s*['"](.*)['"]\s*,?\s*\)$""")


@dataclass
class Translated:
    """A configuration in today's keys, where each mapped value came from, and warnings to log."""

    raw: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def is_legacy(raw: Mapping[str, Any]) -> bool:
    """Whether a loaded YAML mapping uses any key only the 2016 server knew."""
    return any(k in LEGACY_KEYS for k in raw)


def translate(raw: Mapping[str, Any]) -> Translated:
    """Map the 2016 keys of ``raw`` onto current settings; pass current keys through."""
    out = Translated({k: v for k, v in raw.items() if k not in LEGACY_KEYS})
    ignored: list[str] = []
    superseded: list[str] = []
    destructive: list[str] = []

    def put(new_key: str, value: Any, old_key: str) -> None:
        value = _none(value)
        if value is None:
            return
        current = _get(out.raw, new_key)
        if current is _ABSENT:
            _set(out.raw, new_key, value)
            out.origins[new_key] = old_key
        elif current != value:
            superseded.append(old_key)

    ignored.extend(sorted(k for k in raw if k in _TOP_IGNORED))
    # The 2016 request default was always jpg; thumbnail_default_format only named thumbnails.
    for key in ("image_default_format", "thumbnail_default_format"):
        if key in raw:
            put("default_kind", raw[key], key)
    for name, known in _SECTIONS.items():
        if name not in raw or raw[name] is None:
            continue
        sect = raw[name]
        if not isinstance(sect, Mapping):
            raise ConfigError(f"config: {name}: expected a section (a mapping), got {sect!r}")
        for key in sorted(sect, key=str):
            dotted = f"{name}.{key}"
            value = sect[key]
            if key not in known:
                raise ConfigError(f"config: unknown setting '{dotted}'")
            mapper = _MAPPERS.get((name, key))
            if mapper is not None:
                mapper(put, value, dotted, ignored)
            elif key == "credentials":
                _credentials(put, value, dotted, ignored)
            else:
                ignored.append(dotted)
                if key in ("initialise", "initialise_store") and _none(value) not in (None, False):
                    destructive.append(dotted)

    notes = []
    if ignored:
        notes.append("ignoring 2016 settings that no longer apply: " + ", ".join(ignored))
    if superseded:
        notes.append("overridden by other keys: " + ", ".join(superseded))
    if destructive:
        notes.append(f"{', '.join(destructive)} would have wiped storage at startup; image_repo never does")
    if notes:
        out.warnings.append("config: " + "; ".join(notes))
    if _get(out.raw, "url_key") == _DEFAULT_URL_KEY:
        out.warnings.append("config: url_key is the 2016 default, which anyone can use to sign URLs; set your own")
    return out


Put = Callable[[str, Any, str], None]


def _container(new_key: str) -> Callable[[Put, Any, str, list[str]], None]:
    def mapper(put: Put, value: Any, old_key: str, ignored: list[str]) -> None:
        value = _none(value)
        if value is not None:
            put(new_key, f"swift://{value}", old_key)

    return mapper


def _same(new_key: str, default: Any = None) -> Callable[[Put, Any, str, list[str]], None]:
    def mapper(put: Put, value: Any, old_key: str, ignored: list[str]) -> None:
        # A 2016 cache size left at its default was never chosen; mapping it would give
        # every worker a 1 GiB memory cache, so it keeps today's default instead.
        if default is not None and value == default:
            ignored.append(f"{old_key} (2016 default)")
        else:
            put(new_key, value, old_key)

    return mapper


_MAPPERS: dict[tuple[str, str], Callable[[Put, Any, str, list[str]], None]] = {
    ("local_cache_configuration", "cache_path"): _same("disk_cache.path"),
    ("local_cache_configuration", "max_size"): _same("disk_cache.max_bytes", _ONE_GIB),
    ("memory_cache_configuration", "max_size"): _same("memory_cache.max_bytes", _ONE_GIB),
    ("persistent_store_configuration", "container"): _container("store"),
    ("swift_cache_configuration", "container"): _container("cache_store"),
    ("swift_cache_configuration", "url_key"): _same("url_key"),
    ("swift_cache_configuration", "url_lifetime"): _same("url_lifetime"),
    ("persistent_store_configuration", "url_key"): _same("url_key"),
    ("persistent_store_configuration", "url_lifetime"): _same("url_lifetime"),
}


def _credentials(put: Put, value: Any, old_key: str, ignored: list[str]) -> None:
    """Map ``(mechanism, param)`` pairs: env, file, explicit (the 2016 mechanisms)."""
    value = _none(value)
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(f"config: {old_key}: expected a section (a mapping), got {type(value).__name__}")
    for name in sorted(value, key=str):
        dotted = f"{old_key}.{name}"
        if name not in _CREDENTIALS:
            raise ConfigError(f"config: unknown setting '{dotted}'")
        new_key, standard = _CREDENTIALS[name]
        pair = _pair(value[name], dotted)
        if pair is None:
            continue
        mechanism, param = pair
        if mechanism == "env":
            # The standard variable is read anyway when the setting is unset; a reference
            # to it would only make a missing variable an error, as 2016 never did.
            if param != standard:
                put(new_key, {"$env": param}, dotted)
        elif mechanism == "file":
            put(new_key, {"$file": param}, dotted)
        elif mechanism == "explicit":
            put(new_key, param, dotted)
        else:
            raise ConfigError(f"config: {dotted}: unknown credentials mechanism {mechanism!r} (env, file or explicit)")


def _pair(value: Any, key: str) -> tuple[str, str] | None:
    """A 2016 ``(mechanism, param)`` credential, dumped as a string or given as a list."""
    value = _none(value)
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return str(value[0]), str(value[1])
    if isinstance(value, str):
        m = _PAIR.match(value.strip())
        if m:
            return m.group(1), m.group(2)
    raise ConfigError(f"config: {key}: expected a (mechanism, parameter) pair such as ('env', 'OS_PASSWORD')")


def _none(value: Any) -> Any:
    """The 2016 dump printed None unquoted, which YAML reads back as the string 'None'."""
    return None if value == "None" else value


class _Absent:
    pass


_ABSENT = _Absent()


def _get(raw: Mapping[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            return  # a malformed section: the loader reports it by its own key
        else:
            child = node[part] = dict(child)  # copy: never change the caller's mapping
        node = child
    node[last] = value
