"""The env-file reader the container test uses, against the rules of Docker's."""
from __future__ import annotations

import pytest

from tests.container.envfile import EnvFileError, parse_env_file

TEXT = (
    "\ufeff# a comment line\n"
    "   # indented comment\n"
    "\n"
    "PLAIN=value\n"
    'QUOTED="kept with its quotes"\n'
    "HASH=a # not a comment\n"
    "SPACES=  both sides  \n"
    "   INDENTED=yes\n"
    "EQUALS=a=b=c\n"
    "EMPTY=\n"
    "INHERITED\n"
    "ABSENT\n"
    "CRLF=line\r\n"
    "PLAIN=later wins\n"
)


def test_values_are_literal_and_bare_keys_inherit() -> None:
    got = parse_env_file(TEXT.encode(), {"INHERITED": "from the environment", "OTHER": "x"})
    assert got == [
        ("PLAIN", "value"),
        ("QUOTED", '"kept with its quotes"'),
        ("HASH", "a # not a comment"),
        ("SPACES", "  both sides  "),
        ("INDENTED", "yes"),
        ("EQUALS", "a=b=c"),
        ("EMPTY", ""),
        ("INHERITED", "from the environment"),
        ("CRLF", "line"),
        ("PLAIN", "later wins"),
    ]
    assert dict(got)["PLAIN"] == "later wins"


@pytest.mark.parametrize("line, message", [
    ("MY KEY=x", "variable 'MY KEY' contains whitespaces"),
    ("KEY =x", "variable 'KEY ' contains whitespaces"),
    ("=x", "no variable name on line '=x'"),
])
def test_lines_docker_refuses(line: str, message: str) -> None:
    with pytest.raises(EnvFileError, match=message):
        parse_env_file(f"OK=1\n{line}\n".encode(), {})


def test_bytes_that_are_not_utf8() -> None:
    with pytest.raises(EnvFileError, match="invalid utf8 bytes at line 2"):
        parse_env_file(b"OK=1\nBAD=\xff\n", {})
