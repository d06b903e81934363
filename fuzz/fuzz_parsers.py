"""Fuzz the query/spec parser and the name parser: only InvalidRequest may escape, and what parses is sound.

    .venv/bin/python fuzz/fuzz_parsers.py -max_total_time=300      # atheris (libFuzzer flags)
    .venv/bin/python fuzz/fuzz_parsers.py --hypothesis 300          # no atheris: hypothesis for N seconds

Checked for every input: parse_query() either raises InvalidRequest or gives a spec whose
sides are in 1..9999 and whose key() is a single safe path segment that parses to the same
spec again; validate_name() either raises InvalidRequest or gives an NFC name that is its
own canonical form, has no '.', '..' or empty segment, no control character, and whose
original and derived keys parse back to that name.
"""
from __future__ import annotations

import contextlib
import sys
import time
import unicodedata
from typing import Any
from urllib.parse import parse_qsl

atheris: Any
try:
    import atheris
except ImportError:  # hypothesis mode needs no atheris
    atheris = None

# Coverage feedback needs the package instrumented as it is imported.
_instrument = (
    atheris.instrument_imports(include=["image_repo"])
    if atheris is not None and "--hypothesis" not in sys.argv
    else contextlib.nullcontext()
)
with _instrument:
    from image_repo.errors import InvalidRequest
    from image_repo.imaging.spec import MAX_SIDE, DerivationSpec, parse_query
    from image_repo.names import NameLimits, derived_key, original_key, parse_original_key, validate_name

LIMITS = NameLimits(512, 32)


def check_query(query: str) -> None:
    args: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        args.setdefault(key, value)
    try:
        options = parse_query(args)
    except InvalidRequest:
        return
    spec = options.spec
    for side in (spec.width, spec.height):
        assert side is None or 1 <= side <= MAX_SIDE, spec
    key = spec.key()
    assert "/" not in key and not key.startswith(".") and key.isascii() and key.isprintable(), key
    again = parse_query(
        {
            "kind": spec.kind,
            **({"xsize": str(spec.width)} if spec.width else {}),
            **({"ysize": str(spec.height)} if spec.height else {}),
            "thumbnail": "true" if spec.thumbnail else "false",
        }
    ).spec
    assert again.key() == key, (spec, again)


def check_name(raw: str) -> None:
    try:
        name = validate_name(raw, LIMITS)
    except InvalidRequest:
        return
    assert name == unicodedata.normalize("NFC", name)
    assert validate_name(name, LIMITS) == name
    assert len(name.encode("utf-8", "surrogatepass")) <= LIMITS.max_bytes
    for segment in name.split("/"):
        assert segment and segment not in (".", "..") and not segment.startswith("."), name
        assert "/" not in unicodedata.normalize("NFKC", segment), name
    assert not any(unicodedata.category(ch) == "Cc" for ch in name), name
    ref = parse_original_key(original_key(name, "jpg"))
    assert ref is not None and ref.name == name, (name, ref)
    assert parse_original_key(derived_key(name, "0" * 64, DerivationSpec())) is None


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    check_query(text)
    check_name(text)
    check_name(data.decode("utf-8", "replace"))


def run_hypothesis(seconds: float) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    deadline = time.monotonic() + seconds
    runs = 0

    @settings(max_examples=10**9, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
    def fuzz(data: bytes) -> None:
        nonlocal runs
        runs += 1
        if time.monotonic() > deadline:
            raise _Done
        one_input(data)

    try:
        fuzz()
    except _Done:
        pass
    print(f"hypothesis fuzzing: {runs} inputs in {seconds:.0f} s, no failure")


class _Done(Exception):
    pass


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--hypothesis":
        run_hypothesis(float(sys.argv[2]) if len(sys.argv) > 2 else 60)
        return
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris, or run with --hypothesis SECONDS")
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
