"""Checking a configuration value against a setting's type, with one-line errors.

Values come as YAML (``check``) or as text (``from_text``: environment variables and
``$env``/``$file`` references): strings verbatim, empty meaning null where null is
allowed; lists as ``[a, b]`` or ``a,b``; other types read as a YAML scalar. Integers
of ``*_bytes`` settings also take sizes such as ``256MiB`` or ``2GB``. A secret's value
never appears in an error.
"""
from __future__ import annotations

import re
import typing
from typing import Any

import yaml

from ..errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({u + s: 2 ** (10 * (i + 1)) for i, u in enumerate("kmgt") for s in ("", "i", "ib")})


STR_OR_LIST = str | list[str]
"""A string, or a list of them (``url_key``: the first signs, every one verifies)."""


def unwrap(tp: Any) -> tuple[Any, bool]:
    """(the type, whether null is allowed) for ``X`` or ``X | None``; ``str | list[str]`` stays whole."""
    args = typing.get_args(tp)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else STR_OR_LIST), True
    return tp, False


def describe(tp: Any, key: str) -> str:
    inner, optional = unwrap(tp)
    if inner == STR_OR_LIST:
        text = "a string or a list of strings"
    elif typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        text = "a list of " + {int: "integers", str: "strings"}.get(item, "values")
    elif inner is int and key.split(" ")[0].endswith("bytes"):
        text = "an integer or a size such as 256MiB"
    else:
        text = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(inner, str(inner))
    return text + (" or null" if optional else "")


def show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, str, int, float)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return type(value).__name__


def type_error(key: str, tp: Any, value: Any, secret: bool) -> ConfigError:
    # A secret of the wrong type is still a secret: name its type, never its value.
    shown = f"a value of type {type(value).__name__}" if secret and value is not None else show(value)
    return ConfigError(f"config: {key}: expected {describe(tp, key)}, got {shown}")


def check(value: Any, tp: Any, key: str, secret: bool) -> Any:
    """``value`` as type ``tp``, or a ConfigError naming ``key``."""
    inner, optional = unwrap(tp)
    if value is None:
        if optional:
            return None
    elif inner == STR_OR_LIST:
        if isinstance(value, list) and value:
            return check(value, list[str], key, secret)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return check(value, str, key, secret)
    elif inner is bool:
        if isinstance(value, bool):
            return value
    elif inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and key.split(" ")[0].endswith("bytes"):
            m = _SIZE.match(value)
            if m and m.group(2).lower() in _UNITS:
                return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    elif inner is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif inner is str:
        if isinstance(value, str):
            return value
        # auth_version: 3 or a numeric password is meant as text; true/false is not.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif typing.get_origin(inner) is list:
        (item_tp,) = typing.get_args(inner)
        if isinstance(value, str):
            return from_text(value, inner, key, secret)
        if isinstance(value, list):
            return [check(v, item_tp, f"{key}[{i}]", secret) for i, v in enumerate(value)]
    raise type_error(key, tp, value, secret)


def from_text(text: str, tp: Any, key: str, secret: bool) -> Any:
    """A value given as text (environment, ``$env``, ``$file``) as type ``tp``."""
    inner, optional = unwrap(tp)
    if inner is str:
        return None if optional and text == "" else text
    if inner == STR_OR_LIST:  # verbatim, commas and all, unless written as a YAML list
        if text.strip().startswith("["):
            return check(parse_scalar(text, key, secret), tp, key, secret)
        return None if optional and text == "" else text
    if typing.get_origin(inner) is list:
        if text.strip().startswith("["):
            return check(parse_scalar(text, key, secret), tp, key, secret)
        (item_tp,) = typing.get_args(inner)
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return [from_text(p, item_tp, f"{key}[{i}]", secret) for i, p in enumerate(parts)]
    return check(parse_scalar(text, key, secret) if text.strip() else text, tp, key, secret)


def parse_scalar(text: str, key: str, secret: bool) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        if secret:
            raise ConfigError(f"config: {key}: not a valid YAML value") from None
        raise ConfigError(f"config: {key}: not a valid YAML value: {show(text)}") from None
