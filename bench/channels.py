#!/usr/bin/env python3
"""Rendered multichannel tiles, one command: ``python bench/channels.py`` (``--quick``: 8192 px).

Issue 16's speed figures, side by side in one run on one server: cold aligned 512 px IIIF tiles
of a generated 16-bit OME-TIFF of 8 channels (20,000 x 20,000 by default, with its SubIFD
pyramid, so it is used as it stands), rendered with 1, 3 and 8 channels (the inline quality
``channels:...``), against aligned tiles of a single-channel 16-bit pyramid of the same size
and content (its default quality: decode, window, JPEG: the same work as one channel), and
the bytes each rendered tile reads (the channel tiles it covers, one ranged read each; from
the file's own tile table). Each tile is asked once (a derivative nobody asked for); rounds
interleave the four cases so a change in the machine's load hits them alike.

The images are generated with numpy and written by tifffile (tile by tile, bounded memory)
under bench/out/channels-src/ and kept between runs; everything else goes under
bench/out/channels-<time>/ (git-ignored). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TILE = 512
CHANNELS = 8
COLOURS = ["0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FF8000", "FFFFFF"]

sys.path.insert(0, str(BENCH_DIR))
from interpreter import ensure_interpreter

ensure_interpreter(("image_repo", "yaml", "tifffile"))
sys.path.insert(0, str(REPO))

import numpy as np
import tifffile

import load
import procs
import servers


def _tiles(channels: range, size: int, scale: int, seed: int) -> Iterator[np.ndarray]:
    """Tiles of each channel in turn, row by row: smooth structure (cells, a gradient) plus sensor noise."""
    rng = np.random.default_rng(seed)
    n = -(-size // TILE)
    for c in channels:
        for row in range(n):
            for col in range(n):
                y, x = np.mgrid[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE].astype(np.float32) * scale
                cells = np.sin(x / (37 + 11 * c)) * np.cos(y / (29 + 7 * c))
                base = 6000 + 2500 * c + 20000 * np.clip(cells, 0, 1) + x * 0.2
                yield (base + rng.integers(0, 64, (TILE, TILE))).astype(np.uint16)


def write_pyramid(path: Path, size: int, channels: int) -> None:
    """A tiled OME-TIFF (``channels`` pages of ``size``^2 16-bit, zlib + predictor) with SubIFD levels to one tile."""
    levels, s = [], size
    while True:
        levels.append(s)
        if s <= TILE:
            break
        s = -(-s // 2)
    tmp = path.with_suffix(".part")
    options: dict[str, Any] = {"tile": (TILE, TILE), "photometric": "minisblack", "compression": "zlib",
                               "compressionargs": {"level": 1}, "predictor": True, "maxworkers": 2}
    meta = {"axes": "CYX", "Channel": {"Name": [f"marker {c}" for c in range(channels)]}} if channels > 1 else {"axes": "YX"}
    shape = (channels, size, size) if channels > 1 else (size, size)
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=channels > 1) as tw:
        tw.write(_tiles(range(channels), size, 1, 1), shape=shape, dtype=np.uint16, subifds=len(levels) - 1,
                 metadata=meta, **options)
        for k, s in enumerate(levels[1:], 1):
            sub = (channels, s, s) if channels > 1 else (s, s)
            tw.write(_tiles(range(channels), s, 2 ** k, 1 + k), shape=sub, dtype=np.uint16, subfiletype=1, **options)
    os.replace(tmp, path)


def tile_bytes(path: Path, channels: tuple[int, ...], col: int, row: int) -> int:
    """What a rendered level-0 tile reads: the byte counts of its channels' tiles (one range each)."""
    with tifffile.TiffFile(path) as tf:
        pages = tf.series[0].levels[0].pages
        n = -(-pages[0].imagewidth // TILE)
        return sum(int(pages[c].databytecounts[row * n + col]) for c in channels)


def stored(store_root: Path, key: str, src: Path) -> None:
    """The generated file as an original in the server's file store (a hard link: no copy of gigabytes)."""
    from image_repo.storage.filesystem import FileStore

    link = store_root.parent / (key + ".incoming")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists():
        link.unlink()
    os.link(src, link)
    FileStore(str(store_root), fsync=False).put_file(key, str(link), "image/tiff")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="an 8192 px image, 60 tiles a case a round")
    ap.add_argument("--size", type=int, default=0, help="side of the images in pixels (default 20000; --quick 8192)")
    ap.add_argument("--tiles", type=int, default=0, help="tiles per case per round (default 150; --quick 60)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    size = args.size or (8192 if args.quick else 20000)
    per_round = args.tiles or (60 if args.quick else 150)
    out = BENCH_DIR / "out"
    src_dir = out / "channels-src"
    src_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out / time.strftime("channels-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    sources = {"multi": src_dir / f"multi-{size}x{CHANNELS}.ome.tif", "grey": src_dir / f"grey-{size}.tif"}
    for kind, path in sources.items():
        if not path.exists():
            t0 = time.perf_counter()
            print(f"generating {path.name} ...", flush=True)
            write_pyramid(path, size, CHANNELS if kind == "multi" else 1)
            print(f"  {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 1e9:.2f} GB", flush=True)

    data = run_dir / "data"
    for name, path in (("multi", sources["multi"]), ("grey", sources["grey"])):
        stored(data / "originals", f"{name}.tif", path)
    config = {"data_dir": str(data), "workers": args.workers, "threads": 4, "pyramid_builders": 0,
              "max_pyramid_pixels": 20_000_000_000}
    cfg = run_dir / "config.yml"
    import yaml

    cfg.write_text(yaml.safe_dump(config))
    subprocess.run([sys.executable, "-m", "image_repo", "-y", str(cfg), "pyramids", "build", "--all"], check=True,
                   capture_output=True, timeout=3600)  # both have SubIFD pyramids: indexed as they stand
    server = servers.start_image_repo(sys.executable, config, run_dir / "server", workers=args.workers, quiet=True)
    try:
        info = json.loads(load.fetch(server.port, "/iiif/3/multi/info.json").body)
        assert load.fetch(server.port, "/iiif/3/grey/info.json").status == 200
        meta = json.loads(load.fetch(server.port, "/images/multi?meta=true").body)
        assert meta["pyramid"]["in_original"], meta["pyramid"]
        stats = meta["channels"]
        n = -(-info["width"] // TILE)
        positions = [(c, r) for r in range(n - 1) for c in range(n - 1)]  # whole tiles only
        random.Random(16).shuffle(positions)

        def quality(k: int) -> str:
            chosen = [0, 3, 6] if k == 3 else list(range(k))
            return "channels:" + ",".join(f"{c}:{COLOURS[c]}:{int(stats[c]['p0.1'])}:{int(stats[c]['p99.9'])}" for c in chosen)

        cases: dict[str, tuple[str, str, tuple[int, ...]]] = {
            "single-channel 16-bit pyramid, aligned (default)": ("grey", "default", (0,)),
            "1 channel rendered": ("multi", quality(1), (0,)),
            "3 channels rendered": ("multi", quality(3), (0, 3, 6)),
            "8 channels rendered": ("multi", quality(8), tuple(range(8))),
        }
        results: dict[str, list[tuple[load.LoadResult, float]]] = {k: [] for k in cases}
        used = 0
        for rnd in range(args.rounds):
            chunk = positions[used:used + per_round]
            used += per_round
            for label, (image, q, _) in cases.items():
                paths = [f"/iiif/3/{image}/{c * TILE},{r * TILE},{TILE},{TILE}/{TILE},/0/{q}.jpg" for c, r in chunk]
                cpu0 = procs.tree_cpu(server.pid)
                res = load.run_paths(server.port, paths, concurrency=2 * args.workers, duration=600)
                cpu = procs.tree_cpu(server.pid) - cpu0
                if res.errors or set(res.statuses) != {200}:
                    sys.exit(f"{label}: {res.statuses} errors={res.errors}\n{server.log_tail()}")
                results[label].append((res, cpu * 1000 / res.requests))
                print(f"round {rnd + 1} {label}: {res.rps:.1f} tiles/s, {cpu * 1000 / res.requests:.0f} ms CPU/tile", flush=True)
        sample = positions[:40]
        base_label = next(iter(cases))
        base_rps = statistics.median(r.rps for r, _ in results[base_label])
        base_cpu = statistics.median(c for _, c in results[base_label])
        lines = [f"Rendered multichannel tiles: {size} x {size} x {CHANNELS} channels uint16 (OME-TIFF, SubIFD pyramid, "
                 f"zlib+predictor, {TILE} px tiles), {args.workers} workers, concurrency {2 * args.workers}, "
                 f"{args.rounds} rounds x {per_round} cold aligned tiles a case; machine load {os.getloadavg()[0]:.1f}",
                 "", f"{'case':<50} {'tiles/s':>8} {'x single':>9} {'CPU ms/tile':>12} {'x single':>9} {'p50 ms':>7} "
                 f"{'p99 ms':>7} {'bytes read/tile':>16}"]
        for label, (image, _, chans) in cases.items():
            rps = statistics.median(r.rps for r, _ in results[label])
            cpu = statistics.median(c for _, c in results[label])
            lat = sorted(x for r, _ in results[label] for x in r.latencies)
            read = statistics.mean(tile_bytes(sources[image], chans, c, r) for c, r in sample)
            lines.append(f"{label:<50} {rps:>8.1f} {rps / base_rps:>9.2f} {cpu:>12.0f} {cpu / base_cpu:>9.2f} "
                         f"{load.percentile(lat, 50):>7.0f} {load.percentile(lat, 99):>7.0f} {read:>16,.0f}")
        lines += ["", "x single: against the single-channel pyramid's aligned tiles in the same run (tiles/s: higher is "
                  "better; CPU: lower). A rendered tile reads only its channels: one range per channel tile, in one "
                  "request where the store can (Swift multi-range GET)."]
        report = "\n".join(lines)
        print("\n" + report)
        (run_dir / "report.txt").write_text(report + "\n")
        (out / "channels-latest.txt").write_text(report + "\n")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
