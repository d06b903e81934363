"""Query parsing into DerivationSpec, and the canonical key."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from image_repo.errors import InvalidRequest
from image_repo.imaging.spec import DerivationSpec, parse_query


def test_defaults():
    q = parse_query({})
    assert q.spec == DerivationSpec(kind="jpg") and not q.meta and not q.url and q.regex is None


def test_thumbnail_box_and_override():
    assert parse_query({"thumbnail": "true"}).spec == DerivationSpec("jpg", 50, 50, True)
    assert parse_query({"thumbnail": "1", "xsize": "80"}).spec == DerivationSpec("jpg", 80, None, True)
    assert parse_query({"thumbnail": "T"}, thumbnail_box=(64, 32)).spec.height == 32


def test_kind_aliases_and_path_kind():
    assert parse_query({"kind": "JPEG"}).spec.kind == "jpg"
    assert parse_query({"kind": "tiff"}).spec.kind == "tif"
    assert parse_query({}, path_kind="png").spec.kind == "png"
    assert parse_query({"kind": "bmp"}, path_kind="png").spec.kind == "bmp"


@pytest.mark.parametrize("value", ["0", "-1", "10000", "1.5", "", "abc", "1e3", "٣", "0x10", "9" * 50])
def test_bad_sizes(value):
    with pytest.raises(InvalidRequest) as info:
        parse_query({"xsize": value})
    assert "xsize" in info.value.message


def test_size_grammar():
    assert parse_query({"xsize": " +0042 "}).spec.width == 42


spellings = {"jpg": ["jpg", "JPG", "jpeg", "Jpeg"], "png": ["png", "PNG"], "tif": ["tif", "tiff", "TIFF"]}
sizes = st.one_of(st.none(), st.integers(1, 9999))


@given(st.sampled_from(sorted(spellings)), st.data(), sizes, sizes, st.booleans())
def test_same_meaning_same_key(kind, data, w, h, thumb):
    a = data.draw(st.sampled_from(spellings[kind]))
    b = data.draw(st.sampled_from(spellings[kind]))

    def query(spelling: str, pad: str) -> dict[str, str]:
        q = {"kind": spelling, "thumbnail": "true" if thumb else "0"}
        if w is not None:
            q["xsize"] = pad + str(w)
        if h is not None:
            q["ysize"] = str(h)
        return q

    assert parse_query(query(a, "")).spec.key() == parse_query(query(b, "0")).spec.key()


@given(st.sampled_from(["jpg", "png", "tif", "bmp", "gif", "webp"]), sizes, sizes, st.booleans(),
       st.sampled_from(["jpg", "png", "tif", "bmp", "gif", "webp"]), sizes, sizes, st.booleans())
def test_different_meaning_different_key(k1, w1, h1, t1, k2, w2, h2, t2):
    s1, s2 = DerivationSpec(k1, w1, h1, t1), DerivationSpec(k2, w2, h2, t2)
    assert (s1 == s2) == (s1.key() == s2.key())
