"""info.json for Image API 3.0 and 2.1, from a TiledSource's SourceInfo.

``tiles`` and ``sizes`` say what the source serves cheaply: its tile size, and the scale
factors and sizes of its levels (a pyramid's stored ones; an original's without a pyramid
are made by decoding it, see service/whole.py). ``maxArea`` is ``max_output_pixels``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..pyramids.source import Level, SourceInfo
from .params import FORMATS

PROTOCOL = "http://iiif.io/api/image"
CONTEXT = {3: "http://iiif.io/api/image/3/context.json", 2: "http://iiif.io/api/image/2/context.json"}
PROFILE = {3: "http://iiif.io/api/image/3/level2.json", 2: "http://iiif.io/api/image/2/level2.json"}
"""The profile document of each version's level 2 (also sent as the Link rel="profile" header)."""

EXTRA_FEATURES_3 = ("mirroring", "rotationArbitrary", "sizeUpscaling", "profileLinkHeader", "canonicalLinkHeader")
"""What we support beyond 3.0 level 2 (which already has the region, size, 90s and HTTP features)."""
SUPPORTS_2 = ("regionSquare", "mirroring", "rotationArbitrary", "sizeAboveFull", "profileLinkHeader",
              "canonicalLinkHeader")
"""What we support beyond 2.1 level 2."""


def nominal_factor(level: Level) -> int | None:
    """The integer scale factor IIIF tiles of ``level`` are requested at, or None.

    A pyramid halves with rounding (2001 px becomes 1000 or 1001), so a level's true scale
    is near, not at, a whole number; the difference is under a pixel of the level.
    """
    factor = round(level.scale)
    return factor if factor >= 1 and abs(level.scale / factor - 1) < 0.01 else None


def scale_factors(info: SourceInfo) -> list[int]:
    """The levels' downsampling as the integer scale factors IIIF tiles are requested at."""
    return sorted({f for f in (nominal_factor(level) for level in info.levels) if f is not None})


def sizes(info: SourceInfo, max_area: int) -> list[dict[str, int]]:
    """The levels' whole-image sizes within ``max_area``, smallest first."""
    seen = sorted({(level.width, level.height) for level in info.levels if level.width * level.height <= max_area})
    return [{"width": w, "height": h} for w, h in sorted(seen, key=lambda wh: wh[0] * wh[1])]


def qualities(info: SourceInfo) -> list[str]:
    """The API's qualities beyond ``default`` that mean something for this image."""
    return ["gray", "bitonal"] if info.photometric == "grey" else ["color", "gray", "bitonal"]


def tiles(info: SourceInfo) -> list[dict[str, Any]]:
    return [{"width": info.tile_width, "height": info.tile_height, "scaleFactors": scale_factors(info)}]


def info_v3(info: SourceInfo, image_id: str, *, max_area: int, extra_qualities: Sequence[str] = ()) -> dict[str, Any]:
    """The 3.0 image information document; ``extra_qualities``: this image's saved renderings (issue 16)."""
    return {
        "@context": CONTEXT[3],
        "id": image_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": "level2",
        "width": info.width,
        "height": info.height,
        "maxArea": max_area,
        "sizes": sizes(info, max_area),
        "tiles": tiles(info),
        "extraFormats": [f for f in FORMATS if f not in ("jpg", "png")],
        "extraQualities": [*qualities(info), *extra_qualities],
        "extraFeatures": list(EXTRA_FEATURES_3),
    }


def info_v2(info: SourceInfo, image_id: str, *, max_area: int, extra_qualities: Sequence[str] = ()) -> dict[str, Any]:
    """The 2.1 image information document."""
    return {
        "@context": CONTEXT[2],
        "@id": image_id,
        "protocol": PROTOCOL,
        "width": info.width,
        "height": info.height,
        "sizes": sizes(info, max_area),
        "tiles": tiles(info),
        "profile": [
            PROFILE[2],
            {
                "formats": list(FORMATS),
                "qualities": ["default", *qualities(info), *extra_qualities],
                "supports": list(SUPPORTS_2),
                "maxArea": max_area,
            },
        ],
    }


def info_json(version: int, info: SourceInfo, image_id: str, *, max_area: int,
              extra_qualities: Sequence[str] = ()) -> dict[str, Any]:
    build = info_v3 if version == 3 else info_v2
    return build(info, image_id, max_area=max_area, extra_qualities=extra_qualities)
