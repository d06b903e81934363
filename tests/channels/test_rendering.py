"""Renderings as values: the inline form and JSON parsed and refused with the part named, the
composite against the formula, the default rendering from a pyramid's channels."""
from __future__ import annotations

import numpy as np
import pytest

from image_repo.errors import InvalidRequest
from image_repo.imaging.rendering import MAX_CHANNELS, composite, default_rendering, from_json, parse_inline
from image_repo.pyramids.source import Channel

from .conftest import composite as formula
from .conftest import pattern


def test_the_inline_form_parses_to_a_canonical_text_and_key():
    r = parse_inline("0:0000ff:500:4000,3:FF0000:200.50:9000:0.5")
    assert r.indices == (0, 3)
    assert r.text() == "0:0000FF:500:4000,3:FF0000:200.5:9000:0.5"
    assert r.key() == parse_inline(r.text()).key() != parse_inline("0:0000FF:500:4001,3:FF0000:200.5:9000:0.5").key()
    assert from_json(r.as_json()) == r


@pytest.mark.parametrize("text, says", [
    ("0:FF000:0:10", "colour 'FF000' is not 6 hex digits"),
    ("0:GG0000:0:10", "colour 'GG0000' is not 6 hex digits"),
    ("0:FF0000:10:10", "high 10 is not above low 10"),
    ("0:FF0000:10:5", "high 5 is not above low 10"),
    ("0:FF0000:-1:5", "low '-1' is not a number"),
    ("x:FF0000:0:5", "index 'x' is not a channel number"),
    ("0:FF0000:0", "is not index:RRGGBB:low:high"),
    ("0:FF0000:0:5:0", "gamma 0.0 is not a number from 0.05"),
    ("0:FF0000:0:5,0:00FF00:0:5", "channel 0 is given twice"),
    ("", "is not index:RRGGBB:low:high"),
    (",".join(f"{i}:FF0000:0:10" for i in range(MAX_CHANNELS + 1)), "17 channels; a rendering has at most 16"),
])
def test_bad_inline_renderings_are_400s_naming_the_part(text, says):
    with pytest.raises(InvalidRequest) as e:
        parse_inline(text)
    assert e.value.message.startswith("channels: ") and says in e.value.message, e.value.message


@pytest.mark.parametrize("doc, says", [
    ({"channels": "no"}, "expected"),
    ({"channels": [{"index": 0, "colour": "FF0000", "low": 0}]}, "channels[0]: high must be a number"),
    ({"channels": [{"index": -1, "colour": "FF0000", "low": 0, "high": 5}]}, "channels[0]: index must be a channel number"),
    ({"channels": [{"index": 0, "colour": "red", "low": 0, "high": 5}]}, "channels[0]: colour 'red' is not 6 hex digits"),
    ({"channels": [{"index": 0, "colour": "FF0000", "low": 9, "high": 5}]}, "channels[0]: high 5 is not above low 9"),
    ({"channels": [{"index": 0, "colour": "FF0000", "low": 0, "high": 5, "alpha": 1}]}, "unknown field 'alpha'"),
    ({"channels": []}, "at least one channel"),
])
def test_bad_json_renderings_are_400s_naming_the_part(doc, says):
    with pytest.raises(InvalidRequest) as e:
        from_json(doc)
    assert e.value.message.startswith("body: ") and says in e.value.message, e.value.message


def test_the_composite_is_the_formula_pixel_by_pixel_on_16_bit_samples():
    samples = [pattern(c, 100, 50, 300, 200) for c in range(3)]
    rendering = parse_inline("0:0000FF:500:40000,1:FF8000:1000:30000:0.5,2:00FF00:0:65535:2")
    out = composite(np.stack(samples, axis=2), rendering)
    want = formula(samples, [("0000FF", 500, 40000, 1), ("FF8000", 1000, 30000, 0.5), ("00FF00", 0, 65535, 2)])
    assert out.dtype == np.uint8 and out.shape == (200, 300, 3)
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 1  # float32 against float64 rounding
    assert (out == want).mean() > 0.99
    # Additive and clipped: two full channels of one colour saturate, they do not wrap.
    full = composite(np.full((2, 2, 2), 65535, np.uint16), parse_inline("0:FF0000:0:100,1:FF0000:0:100"))
    assert full[0, 0].tolist() == [255, 0, 0]


def test_the_default_rendering_windows_each_channel_by_its_percentiles_and_keeps_ome_colours():
    def ch(name, colour, lo, hi):
        return Channel(name, "uint16", colour, {"min": 0.0, "max": 65535.0, "p0.1": lo, "p99.9": hi})

    stored = default_rendering([ch("DNA", "0000FF", 10.4, 900.2), ch("CD45", "FF0000", 50, 4000),
                                ch("CD3", None, 7, 70), ch("KI67", None, 1, 2), ch("X", None, 1, 2)])
    assert [w.index for w in stored.channels] == [0, 1, 2, 3]  # up to the first four
    assert [(w.low, w.high) for w in stored.channels][:2] == [(10.0, 901.0), (50.0, 4000.0)]
    assert [w.colour for w in stored.channels][:2] == ["0000FF", "FF0000"]  # the file's colours win
    assert len({w.colour for w in stored.channels}) == 4  # the others from the palette, all distinct
    none = default_rendering([ch("a", None, 0, 10), ch("b", None, 0, 10), ch("c", None, 0, 10)])
    assert [w.colour for w in none.channels] == ["0000FF", "00FF00", "FF0000"]
    # All alike (a writer that colours every channel white) tells nothing apart: the palette instead.
    white = default_rendering([ch("a", "FFFFFF", 0, 10), ch("b", "FFFFFF", 0, 10)])
    assert [w.colour for w in white.channels] == ["0000FF", "00FF00"]
    flat = default_rendering([ch("a", None, 5, 5)])
    assert (flat.channels[0].low, flat.channels[0].high, flat.channels[0].colour) == (5.0, 6.0, "FFFFFF")
