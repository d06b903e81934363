"""Image names: validation, key layout, the 2016 grammar."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from image_repo.errors import InvalidRequest
from image_repo.imaging.spec import DerivationSpec
from image_repo.names import (
    NameLimits,
    derived_key,
    derived_prefix,
    legacy_original_key,
    original_key,
    parse_original_key,
    validate_name,
)


@pytest.mark.parametrize(
    "name",
    ["photo", "site1/photo", "a b/c d", "été/小猫", "a.b", "x+y", "100%", "a(1)", "emoji 📷", "a..b", "ＡＢＣ"],
)
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "", "..", ".", "a/../b", "a/./b", "/abs", "a//b", "a/", "a\\b", "a\x00b", "a\nb", "a\x7fb",
        ".hidden", "a/.d/x", "\uff0e\uff0e/x", "a\uff0fb", "x\u202eexe", "a/ /b", "p+size(1,1)", "p+original(None)",
    ],
)
def test_invalid_names(name):
    with pytest.raises(InvalidRequest) as info:
        validate_name(name)
    assert info.value.message.startswith("name:")


def test_limits():
    with pytest.raises(InvalidRequest):
        validate_name("a" * 513)
    with pytest.raises(InvalidRequest):
        validate_name("/".join("a" * 33))
    assert validate_name("a" * 20, NameLimits(max_bytes=20))
    with pytest.raises(InvalidRequest):
        validate_name("é" * 11, NameLimits(max_bytes=20))


def test_nfc_normalisation():
    assert validate_name("e\u0301te") == "\u00e9te"


def test_key_layout():
    spec = DerivationSpec(kind="png", width=100)
    assert original_key("a/b", "jpg") == "a/b.jpg"
    assert derived_key("a/b", "abc", spec).startswith(derived_prefix("a/b") + "abc.")
    assert parse_original_key(derived_key("a/b", "abc", spec)) is None
    ref = parse_original_key("a/b.JPG")
    assert ref and ref.name == "a/b" and ref.kind.name == "jpg"
    assert parse_original_key("notes.txt") is None


def test_legacy_keys():
    ref = parse_original_key("site1/my%20photo+original(None).jpg")
    assert ref and ref.name == "site1/my photo" and ref.legacy
    assert parse_original_key("site1/photo+size(100,100).jpg") is None
    assert parse_original_key("site1/photo+thumbnail(50,50,els).jpg") is None
    assert parse_original_key(legacy_original_key("a b/c", "png")).name == "a b/c"  # type: ignore[union-attr]


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(names)
def test_validation_is_idempotent_and_never_traverses(raw):
    try:
        name = validate_name(raw)
    except InvalidRequest:
        return
    assert validate_name(name) == name
    assert not name.startswith("/") and ".." not in name.split("/")
    ref = parse_original_key(original_key(name, "jpg"))
    assert ref is not None and ref.name == name


@given(names, st.sampled_from(["jpg", "png", "tif"]))
def test_an_original_key_names_its_image(raw, ext):
    try:
        name = validate_name(raw)
    except InvalidRequest:
        return
    ref = parse_original_key(original_key(name, ext))
    assert ref is not None and (ref.name, ref.kind.name) == (name, ext)
