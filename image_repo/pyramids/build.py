"""Building a pyramid with libvips: a local original in, a pyramidal BigTIFF and its index out.

Run in a child process (``python -m image_repo.pyramids.build``, started by builder.py at low
priority), so that a build never shares a worker's memory or GIL, and a kill of the build
never kills a server. The original is streamed (``access="sequential"``): libvips holds a
few lines of the base and the reduced levels, which it writes to temporary files past its
disc threshold, so memory stays bounded whatever the image's size.

What is stored: tiles of 512 px; JPEG for 8-bit RGB and grey; deflate with horizontal
differencing for 16-bit, raw values kept (zstd is not in the libtiff of pyvips-binary, and
deflate is what every TIFF reader has: QuPath, napari, OpenSlide, GDAL). Alpha is flattened
onto white, CMYK and other spaces converted to sRGB, an embedded ICC profile applied, the
EXIF orientation applied. More than 4 bands, or a multi-page TIFF of equal single-band
pages, is N channels: one page per channel with a SubIFD pyramid each (the OME-TIFF
layout), so a tile of one channel is a range of its own.

Exit status: 0 built (result JSON on stdout); 3 the image cannot be built (its reason on
stdout: corrupt, truncated, too large, unsupported); anything else is worth a retry.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ome
from .index import index_tiff, with_stats

TILE = 512
STATS_PIXELS = 4_000_000
"""Statistics and the 16-bit window come from the largest level of at most this many pixels."""
PERCENTILES = (0.1, 1.0, 99.0, 99.9)
EXIT_BAD_IMAGE = 3


class BadImage(Exception):
    """The original cannot become a pyramid; the message says why (shown as the failure reason)."""


@dataclass(frozen=True)
class Built:
    tiff: str
    index: str
    levels: int
    width: int
    height: int


def _vips() -> Any:
    import pyvips

    pyvips.cache_set_max(0)  # nothing is read twice: a cache would only hold memory
    return pyvips


def open_original(path: str, max_pixels: int) -> tuple[Any, str, list[str]]:
    """The original as a libvips image ready to save, its photometric kind and channel names."""
    pyvips = _vips()
    try:
        im = pyvips.Image.new_from_file(path, access="sequential", fail_on="truncated")
        loader = str(im.get("vips-loader")) if im.get_typeof("vips-loader") else ""
        pages = int(im.get("n-pages")) if im.get_typeof("n-pages") else 1
        if loader.startswith("tiff") and pages > 1 and im.bands == 1:
            roll = pyvips.Image.new_from_file(path, access="random", n=-1, fail_on="truncated")
            if roll.get_typeof("page-height") and int(roll.get("page-height")) == im.height:
                _check_size(im.width, im.height * pages, max_pixels)
                return roll, "channels", [f"channel {i}" for i in range(pages)]
        _check_size(im.width, im.height, max_pixels)
        if im.format not in ("uchar", "ushort"):
            if im.format == "char" or im.format == "short":
                im = im.cast("uchar" if im.format == "char" else "ushort")
            else:
                raise BadImage(f"samples of type {im.format} are not supported (8- and 16-bit only)")
        turn = int(im.get("orientation")) if im.get_typeof("orientation") else 1
        if turn != 1:  # rotation needs random access: libvips decodes to a temporary file, not to memory
            im = pyvips.Image.new_from_file(path, access="random", fail_on="truncated").autorot()
        grey_planes = (loader.startswith("tiff") and im.bands > 1 and im.interpretation in ("b-w", "grey16")
                       and not ome.grey_planes_with_alpha(path))  # minisblack samples: channels, not colours
        if im.bands > 4 or (im.interpretation == "multiband" and im.bands not in (1, 3)) or grey_planes:
            rnd = pyvips.Image.new_from_file(path, access="random", fail_on="truncated")
            bands = [rnd[i] for i in range(rnd.bands)]
            roll = pyvips.Image.arrayjoin(bands, across=1).copy()
            roll.set_type(pyvips.GValue.gint_type, "page-height", rnd.height)
            return roll, "channels", [f"channel {i}" for i in range(rnd.bands)]
        sixteen = im.format == "ushort"
        if im.interpretation == "cmyk" or (im.bands == 4 and im.get_typeof("icc-profile-data") and
                                           im.interpretation not in ("srgb", "rgb16")):
            im = im.icc_transform("srgb") if im.get_typeof("icc-profile-data") else im.colourspace("srgb")
        elif im.get_typeof("icc-profile-data") and im.bands >= 3:
            try:
                im = im.icc_transform("srgb", depth=16 if sixteen else 8)
            except pyvips.Error:
                pass  # a broken profile: the pixels as they are
        if im.hasalpha():
            im = im.flatten(background=[65535 if sixteen else 255] * (im.bands - 1))
        if im.bands == 2:
            im = im[0]
        if im.bands == 4:
            im = im[:3]
        if im.interpretation not in ("srgb", "rgb16", "b-w", "grey16", "multiband", "rgb"):
            im = im.colourspace("grey16" if sixteen and im.bands == 1 else "rgb16" if sixteen else
                                "b-w" if im.bands == 1 else "srgb")
        im = im.cast("ushort" if sixteen else "uchar")
        kind = "grey" if im.bands == 1 else "rgb"
        return im, kind, (["grey"] if kind == "grey" else ["red", "green", "blue"])
    except pyvips.Error as e:
        raise BadImage(_vips_reason(e)) from None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise BadImage(f"{width}x{height} is {width * height / 1e9:.1f} gigapixels; "
                       f"the limit is {max_pixels / 1e9:.1f} (max_pyramid_pixels)")


def _vips_reason(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and "unable to call" not in ln]
    text = "; ".join(dict.fromkeys(lines))[:300]
    return f"corrupt or truncated image: {text}" if text else "corrupt or truncated image"


def build(src: str, out_dir: str, key: str, *, quality: int, max_pixels: int, source_version: str = "") -> Built:
    """Write ``out_dir/pyramid.tif`` and ``out_dir/pyramid.index`` for the original at ``src``."""
    pyvips = _vips()
    readable = src
    if ome.separate_planes(src):  # libvips misreads planar-separate TIFFs: one page per plane first
        readable = ome.split_planes(src, os.path.join(out_dir, "planes.tif"))
    im, kind, names = open_original(readable, max_pixels)
    tiff = os.path.join(out_dir, "pyramid.tif")
    options: dict[str, Any] = {"tile": True, "tile_width": TILE, "tile_height": TILE, "pyramid": True, "bigtiff": True}
    if im.format == "uchar" and kind != "channels":
        options.update(compression="jpeg", Q=quality)
    else:
        options.update(compression="deflate", predictor="horizontal", level=1)
    if kind == "channels":
        options.update(subifd=True)
    if im.get_typeof("image-description"):  # the original's OME-XML would describe another layout than ours
        im = im.copy()
        im.remove("image-description")
    try:
        im.tiffsave(tiff, **options)
    except pyvips.Error as e:
        raise BadImage(_vips_reason(e)) from None
    index = index_tiff(tiff, key, os.path.getsize(tiff), in_original=False, source_version=source_version)
    stats = measure(tiff, index.info.levels, kind, len(names))
    window = None
    if im.format == "ushort" and kind != "channels":
        lo, hi = min(s["p0.1"] for s in stats), max(s["p99.9"] for s in stats)
        window = (lo, hi if hi > lo else lo + 1)
    colours: list[str | None] = []
    if kind == "channels":  # what the original's OME-XML says of its channels (the pyramid keeps none)
        told = ome.of_file(src)
        names = [told.name(i) if told.names else n for i, n in enumerate(names)]
        colours = [told.colour(i) for i in range(len(names))]
    index = with_stats(index, stats, window, names, colours)
    path = os.path.join(out_dir, "pyramid.index")
    with open(path, "wb") as f:
        f.write(index.encode())
    if readable != src:
        os.remove(readable)
    return Built(tiff, path, len(index.levels), index.info.width, index.info.height)


def measure(tiff: str, levels: Any, kind: str, n: int) -> list[dict[str, float]]:
    """min, max and percentiles of each channel, from the largest level of at most STATS_PIXELS."""
    pyvips = _vips()
    pick = next((i for i, lv in enumerate(levels) if lv.width * lv.height <= STATS_PIXELS), len(levels) - 1)
    out = []
    for c in range(n if kind == "channels" else 1):
        if kind == "channels":
            im = pyvips.Image.new_from_file(tiff, page=c, subifd=pick - 1) if pick else \
                pyvips.Image.new_from_file(tiff, page=c)
        else:
            im = pyvips.Image.new_from_file(tiff, page=pick)
        arr = np.ndarray(buffer=im.write_to_memory(), dtype=np.uint16 if im.format == "ushort" else np.uint8,
                         shape=(im.height, im.width, im.bands))
        for b in range(arr.shape[2]) if kind != "channels" else [0]:
            values = arr[..., b]
            pct = np.percentile(values, PERCENTILES)
            out.append({"min": float(values.min()), "max": float(values.max()),
                        **{f"p{p:g}": float(v) for p, v in zip(PERCENTILES, pct)}})
    return out


def main(argv: list[str] | None = None) -> int:
    """The child process: build, print the result (or the reason) as JSON, exit 0 or EXIT_BAD_IMAGE."""
    ap = argparse.ArgumentParser(prog="python -m image_repo.pyramids.build")
    ap.add_argument("src")
    ap.add_argument("out_dir")
    ap.add_argument("--key", required=True)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--max-pixels", type=int, required=True)
    ap.add_argument("--source-version", default="")
    ap.add_argument("--parent", type=int, default=0, help="die with this process")
    args = ap.parse_args(argv)
    if args.parent:
        from .process import die_with_parent

        die_with_parent(args.parent)
    try:
        built = build(args.src, args.out_dir, args.key, quality=args.quality, max_pixels=args.max_pixels,
                      source_version=args.source_version)
    except BadImage as e:
        print(json.dumps({"reason": str(e), "peak_rss": _peak_rss()}))
        return EXIT_BAD_IMAGE
    print(json.dumps({"tiff": built.tiff, "index": built.index, "levels": built.levels,
                      "width": built.width, "height": built.height, "peak_rss": _peak_rss()}))
    return 0


def _peak_rss() -> int:
    """This process's peak resident memory: VmHWM, which exec resets (ru_maxrss keeps the forking
    parent's high-water mark across exec, so a build started by a big worker would report the worker's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    sys.exit(main())
