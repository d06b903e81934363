"""Docker's ``--env-file`` syntax, read the way the Docker CLI reads it.

One ``KEY=value`` a line; the value is taken literally, up to the end of the line (quotes,
``#``, trailing spaces and all: there are no inline comments and no quoting); leading
whitespace of a line is ignored; lines that are empty or start with ``#`` are skipped; a
line that is only ``KEY`` takes KEY's value from the environment, and is left out when the
environment has none. A key holding a space or tab, or an empty key, is an error; so are
bytes that are not UTF-8. A UTF-8 byte order mark before the first line is dropped.
"""
from __future__ import annotations

from collections.abc import Mapping

WHITESPACE = " \t"


class EnvFileError(ValueError):
    """A line Docker would refuse, as Docker words it."""


def parse_env_file(data: bytes, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The variables of an env-file in order (a later line for the same key wins, as in Docker)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out: list[tuple[str, str]] = []
    # Go's bufio.ScanLines: split on \n, drop one \r before it.
    for number, raw in enumerate(data.split(b"\n"), 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvFileError(f"env file contains invalid utf8 bytes at line {number}") from None
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has_value, value = line.partition("=")
        key = key.lstrip(WHITESPACE)
        if any(c in key for c in WHITESPACE):
            raise EnvFileError(f"variable '{key}' contains whitespaces")
        if not key:
            raise EnvFileError(f"no variable name on line '{line}'")
        if has_value:
            out.append((key, value))
        elif key in environ:
            out.append((key, environ[key]))
    return out
