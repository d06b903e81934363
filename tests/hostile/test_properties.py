"""Properties of the name and query parsers, on inputs built from the characters that cause trouble.

The fuzz target fuzz/fuzz_parsers.py checks the same properties on arbitrary bytes.
"""
from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from image_repo.errors import InvalidRequest
from image_repo.imaging.spec import MAX_SIDE, DerivationSpec, parse_query
from image_repo.names import NameLimits, derived_key, original_key, parse_original_key, validate_name

TRICKY = "ab+()/.\\%=_ -~\x00\n\u00e9\u0301\uff0e\uff0f\u2215\u202e\ufffd"
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=40)
LIMITS = NameLimits(512, 32)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(tricky_text, st.text(max_size=60)))
def test_a_valid_name_is_canonical_safe_and_finds_itself(raw):
    try:
        name = validate_name(raw, LIMITS)
    except InvalidRequest:
        return
    assert validate_name(name, LIMITS) == name == unicodedata.normalize("NFC", name)
    for segment in name.split("/"):
        assert segment and not segment.startswith(".") and "\\" not in segment
        assert "/" not in unicodedata.normalize("NFKC", segment)
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name)
    for ext in ("jpg", "png", "tif"):
        ref = parse_original_key(original_key(name, ext))
        assert ref is not None and ref.name == name
    assert parse_original_key(derived_key(name, "0" * 64, DerivationSpec())) is None


values = st.one_of(
    st.sampled_from(["", "0", "1", "9999", "10000", "-1", "+5", " 7 ", "1.5", "1e3", "\u0665", "true", "F", "jpeg",
                     "TIFF", "webp", "svg", "%ff"]),
    st.text(max_size=8),
    st.integers(-10, 20000).map(str),
)
queries = st.dictionaries(st.sampled_from(["xsize", "ysize", "kind", "thumbnail", "meta", "url", "regex", "x"]), values)


@settings(max_examples=2000, deadline=None)
@given(queries)
def test_a_parsed_query_is_in_range_and_its_key_is_canonical(args):
    try:
        options = parse_query(args)
    except InvalidRequest:
        return
    spec = options.spec
    assert all(side is None or 1 <= side <= MAX_SIDE for side in (spec.width, spec.height))
    key = spec.key()
    assert "/" not in key and not key.startswith(".") and key.isascii() and key.isprintable()
    again = {"kind": spec.kind, "thumbnail": str(spec.thumbnail).lower()}
    if spec.width:
        again["xsize"] = str(spec.width)
    if spec.height:
        again["ysize"] = str(spec.height)
    assert parse_query(again).spec == spec
