#!/usr/bin/env python3
"""The IIIF tile benchmark, one command: ``python bench/tiles.py`` (``--quick``: a smaller image).

Issue 14's serving goals, side by side in one run on one pyramidal TIFF:

- aligned 512 px tiles per second, cold (each tile asked once, by a fresh server), from
  image_repo on the file store and on Swift, against a bare WSGI app serving the same tile
  bytes from memory under the same Gunicorn options (goal >= 0.7x), and against IIPImage
  (Debian's iipimage-server behind lighttpd's FastCGI) reading the same TIFF from local
  disk (goal >= 1.0x);
- unaligned regions rendered per second (image_repo and IIPImage), and p99 of a tile.

The image is generated with libvips (pyvips), its pyramid built by image_repo itself
(``image_repo pyramids build``); IIPImage and the bare app get that same file. Until the
pyramids part (PyramidReader) is on this branch, image_repo's rows read WAITS and the peers
run on a pyramidal TIFF made with ``vips tiffsave --tile --pyramid``. Everything goes
under bench/out/tiles-<time>/ (git-ignored). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TILE = 512

sys.path.insert(0, str(BENCH_DIR))
from interpreter import ensure_interpreter

ensure_interpreter(("image_repo", "yaml"))
sys.path.insert(0, str(REPO))

import load
import peer_iipimage
import procs
import servers


def ensure_python_packages(install: bool) -> None:
    """pyvips (with its libvips wheel) and tifffile: what makes the image and reads its tiles."""
    missing = [p for p, mod in (("pyvips", "pyvips"), ("pyvips-binary", "pyvips"), ("tifffile", "tifffile"))
               if importlib.util.find_spec(mod) is None]
    if missing and install:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pyvips>=3", "pyvips-binary", "tifffile"],
                       check=True)
    elif missing:
        sys.exit(f"bench: needs {', '.join(missing)} (pip install pyvips pyvips-binary tifffile)")


def reader_available() -> bool:
    return importlib.util.find_spec("image_repo.pyramids.reader") is not None


# --- the image -------------------------------------------------------------------------------


def make_original(path: Path, side: int) -> None:
    """A photo-like JPEG (smooth structure and grain; q90): ~40 KB per 512 px tile at q85, as photos have."""
    import pyvips

    xy = pyvips.Image.xyz(side, side)
    x, y = xy[0], xy[1]
    bands = [((x / (37 + 11 * i)).sin() * 55 + (y / (53 + 7 * i)).cos() * 55 + 128
              + pyvips.Image.gaussnoise(side, side, sigma=8, mean=0)) for i in range(3)]
    im = bands[0].bandjoin(bands[1:]).cast("uchar")
    im.jpegsave(str(path), Q=90)


def make_ptiff(original: Path, out: Path) -> None:
    """``vips tiffsave --tile --pyramid``, 512 px JPEG tiles: the peers' TIFF until image_repo builds its own."""
    import pyvips

    im = pyvips.Image.new_from_file(str(original), access="sequential")
    im.tiffsave(str(out), tile=True, pyramid=True, bigtiff=True, compression="jpeg", Q=85,
                tile_width=TILE, tile_height=TILE)


def extract_tiles(tiff: Path, out: Path) -> list[tuple[int, int]]:
    """Level 0's interior tiles as standalone JPEGs (tables spliced in), one file each: the bare app's bytes."""
    import tifffile

    out.mkdir(parents=True, exist_ok=True)
    grid = []
    with tifffile.TiffFile(str(tiff)) as tif, open(tiff, "rb") as fh:
        page = tif.pages[0]
        tables = page.jpegtables or b""
        columns = page.imagewidth // TILE  # whole tiles only: edge tiles are padded in a TIFF
        across = -(-page.imagewidth // TILE)
        for row in range(page.imagelength // TILE):
            for column in range(columns):
                n = row * across + column
                fh.seek(page.dataoffsets[n])
                raw = fh.read(page.databytecounts[n])
                data = tables[:-2] + raw[2:] if tables else raw
                (out / f"0_{column}_{row}").write_bytes(data)
                grid.append((column, row))
    return grid


# --- image_repo --------------------------------------------------------------------------


def server_config(data: Path, workers: int, store: dict[str, Any] | None, sets: list[str]) -> dict[str, Any]:
    import yaml

    config: dict[str, Any] = {"data_dir": str(data), "workers": workers, "pyramid_builders": 0}
    config.update(store or {})
    for item in sets:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    return config


def prepare_image_repo(python: str, original: Path, config: dict[str, Any], workdir: Path, log) -> Path | None:
    """Store the original as an upload leaves it, build its pyramid with the CLI; the pyramid's local path (file store)."""
    import yaml

    from image_repo.config.loading import load_settings
    from image_repo.storage.base import sha256_hex
    from image_repo.storage.registry import open_store

    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yml"
    cfg.write_text(yaml.safe_dump(config))
    settings = load_settings(str(cfg))
    data = original.read_bytes()
    store = open_store(settings.store_url(), settings)
    store.put("bench/huge.jpg", data, "image/jpeg", {"sha256": sha256_hex(data)})
    log("  building the pyramid (image_repo pyramids build bench/huge)")
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "image_repo", "-y", str(cfg), "pyramids", "build", "bench/huge"], check=True,
                   cwd=workdir, capture_output=True)
    log(f"  built in {time.perf_counter() - t0:.1f} s")
    from image_repo.pyramids.service import pyramid_key  # type: ignore[import-not-found]

    if settings.cache_store_url().startswith("file://"):
        info = store.stat("bench/huge.jpg")
        assert info is not None
        from image_repo.storage.base import content_version

        path = Path(settings.cache_store_url()[len("file://"):]) / pyramid_key("bench/huge", content_version(info))
        return path if path.exists() else None
    return None


def swift_config(state: list[Any], log) -> dict[str, Any] | None:
    """The suite's own Swift on loopback (tests/swift), started once; None (with why) when it cannot start."""
    try:
        from tests.fixtures.swift import _parse, _start, _state_root
    except ImportError as e:
        log(f"  Swift: cannot import the test harness ({e})")
        return None
    import tempfile

    state_dir = tempfile.mkdtemp(prefix="image_repo-swift-bench-", dir=_state_root())
    Path(state_dir, "owner.pid").write_text(str(os.getpid()))
    done = _start(state_dir)
    state.append(state_dir)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:]
        log("  Swift did not start: " + (tail[0] if tail else f"exit {done.returncode}"))
        return None
    server = _parse(done.stdout)
    suffix = f"{os.getpid()}"
    return {"store": f"swift://bench-orig-{suffix}", "cache_store": f"swift://bench-cache-{suffix}",
            "swift": {"auth_url": server.auth_url, "auth_version": "1", "user": server.user, "key": server.key}}


# --- rounds -------------------------------------------------------------------------------


def cold_round(name: str, start, paths: list[str], concurrency: int, log, warm: list[str] | None = None) -> load.LoadResult:
    """A fresh server, each path once; the server is stopped after. ``warm``: paths asked first,
    not measured (other tiles than ``paths``), so each worker has made its imports and read the
    image's header or index: a cold *tile*, not a cold process. The server's CPU per request
    (its whole process tree, from /proc) goes in ``note``: on a shared machine the other engineers'
    load moves tiles/s from one round to the next, but hardly what a tile costs the server."""
    running = start()
    try:
        if warm:
            load.run_paths(running.port, warm, concurrency=concurrency, duration=60)
        cpu0 = procs.tree_cpu(running.pid)
        result = load.run_paths(running.port, paths, concurrency=concurrency, duration=120)
        cpu = procs.tree_cpu(running.pid) - cpu0
    finally:
        running.stop()
    per = cpu * 1000 / max(result.requests, 1)
    result.note = f"{per:.3f}"
    log(f"  {name:<28} {result.rps:8.1f}/s  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms"
        f"  server CPU {per:5.2f} ms/request  errors {result.errors}  (load {os.getloadavg()[0]:.1f})")
    return result


def unaligned_regions(side: int, n: int, seed: int = 14) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w, h = rng.randint(600, 1400), rng.randint(600, 1400)
        out.append((rng.randint(1, side - w - 1), rng.randint(1, side - h - 1), w, h))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="an 8192 px image and one round (default 16384 px, 3 rounds)")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    p.add_argument("--workers", type=int, default=procs.CORES)
    p.add_argument("--no-install", action="store_true", help="never pip or apt-get install anything")
    p.add_argument("--no-swift", action="store_true")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a server setting for image_repo's rounds (YAML value), e.g. --set pyramid_read_chunk_bytes=4194304")
    args = p.parse_args()
    ensure_python_packages(not args.no_install)
    side, rounds = (8192, 1) if args.quick else (16384, 3)
    run_dir = args.out / time.strftime("tiles-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    python = sys.executable
    concurrency = 2 * args.workers
    base = args.out / f"tiles-{side}"
    base.mkdir(parents=True, exist_ok=True)
    original = base / "huge.jpg"
    if not original.exists():
        log(f"making a {side}x{side} JPEG with libvips")
        make_original(original, side)
    why_not_iip = peer_iipimage.ensure_installed(log, install=not args.no_install)
    have_reader = reader_available()
    results: dict[str, list[load.LoadResult]] = {}
    swift_state: list[Any] = []
    try:
        configs: dict[str, dict[str, Any]] = {}
        tiff = base / "vips-pyramid.tif"
        if have_reader:
            configs["file"] = server_config(run_dir / "file-data", args.workers, None, args.sets)
            built = prepare_image_repo(python, original, configs["file"], run_dir / "file", log)
            if built is not None:
                tiff = run_dir / "pyramid.tif"
                shutil.copyfile(built, tiff)  # the peers read the very file image_repo serves
            if not args.no_swift and (swift := swift_config(swift_state, log)) is not None:
                configs["swift"] = server_config(run_dir / "swift-data", args.workers, swift, args.sets)
                prepare_image_repo(python, original, configs["swift"], run_dir / "swift", log)
        if not tiff.exists():
            log("making the pyramidal TIFF with vips tiffsave --tile --pyramid (512 px, JPEG)")
            make_ptiff(original, tiff)
        grid = extract_tiles(tiff, run_dir / "tiles")
        rng = random.Random(5)
        rng.shuffle(grid)
        log(f"{len(grid)} aligned 512 px tiles of level 0; concurrency {concurrency}, workers {args.workers}, {rounds} round(s)")
        iiif_paths = [f"/iiif/3/bench%2Fhuge/{c * TILE},{r * TILE},{TILE},{TILE}/{TILE},{TILE}/0/default.jpg" for c, r in grid]
        bare_paths = [f"/tile/0/{c}/{r}" for c, r in grid]
        # Warm-up: level 1's tiles of the first rows (never measured), a few per worker.
        warm_tiles = [(c, r) for r in range(2) for c in range(min(8, side // (2 * TILE)))]
        iiif_warm = [f"/iiif/3/bench%2Fhuge/{c * 2 * TILE},{r * 2 * TILE},{2 * TILE},{2 * TILE}/{TILE},{TILE}/0/default.jpg"
                     for c, r in warm_tiles]
        iip_warm = [f"{peer_iipimage.iiif_prefix(tiff)}/{c * 2 * TILE},{r * 2 * TILE},{2 * TILE},{2 * TILE}/{TILE},{TILE}/0/default.jpg"
                    for c, r in warm_tiles]
        bare_warm = bare_paths[:len(warm_tiles)]  # all in memory already: the same bytes again cost the same
        iip_paths = [f"{peer_iipimage.iiif_prefix(tiff)}/{c * TILE},{r * TILE},{TILE},{TILE}/{TILE},{TILE}/0/default.jpg"
                     for c, r in grid]
        bare_cfg = run_dir / "bare.yml"
        bare_cfg.write_text(f"workers: {args.workers}\n")

        def bare() -> servers.Running:
            env = {"BENCH_APP": "bare_tiles", "BENCH_TILES_DIR": str(run_dir / "tiles")}
            port = servers.free_port()
            cmd = [python, str(BENCH_DIR / "bare_server.py"), str(bare_cfg), f"127.0.0.1:{port}"]
            return servers.start("bare-tiles", cmd, port, run_dir / "bare.log", ready_path="/", env=env,
                                 cwd=run_dir, min_workers=args.workers)

        def image_repo(store: str):
            def start() -> servers.Running:
                shutil.rmtree(Path(configs[store]["data_dir"]) / "disk_cache", ignore_errors=True)
                return servers.start_image_repo(python, configs[store], run_dir / store, workers=args.workers, quiet=False)
            return start

        for round_no in range(rounds):
            log(f"round {round_no + 1}")
            for store in configs:
                results.setdefault(f"image_repo {store}", []).append(
                    cold_round(f"image_repo ({store} store)", image_repo(store), iiif_paths, concurrency, log, iiif_warm))
            results.setdefault("bare", []).append(cold_round("bare WSGI, same bytes", bare, bare_paths, concurrency, log,
                                                             bare_warm))
            if why_not_iip is None:
                results.setdefault("iipimage", []).append(cold_round(
                    "IIPImage (lighttpd FastCGI)",
                    lambda: peer_iipimage.start(tiff, run_dir / "iip", processes=args.workers),
                    iip_paths, concurrency, log, iip_warm))
        regions = unaligned_regions(side, 200 if args.quick else 400)
        log("unaligned regions (600-1400 px) at 512 px wide, each once")
        if "file" in configs:
            results["unaligned image_repo"] = [cold_round(
                "image_repo (file store)", image_repo("file"),
                [f"/iiif/3/bench%2Fhuge/{x},{y},{w},{h}/512,/0/default.jpg" for x, y, w, h in regions], concurrency, log,
                iiif_warm)]
        if why_not_iip is None:
            results["unaligned iipimage"] = [cold_round(
                "IIPImage", lambda: peer_iipimage.start(tiff, run_dir / "iip", processes=args.workers),
                [f"{peer_iipimage.iiif_prefix(tiff)}/{x},{y},{w},{h}/512,/0/default.jpg" for x, y, w, h in regions],
                concurrency, log, iip_warm)]
    finally:
        if swift_state:
            from tests.fixtures.swift import _stop

            for state_dir in swift_state:
                _stop(state_dir)
    report(results, have_reader, why_not_iip, log)
    (run_dir / "report.txt").write_text("\n".join(lines) + "\n")
    (run_dir / "results.json").write_text(json.dumps(
        {k: [{"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "errors": r.errors} for r in v]
         for k, v in results.items()}, indent=1))
    shutil.copyfile(run_dir / "report.txt", args.out / "tiles-latest.txt")


def report(results: dict[str, list[load.LoadResult]], have_reader: bool, why_not_iip: str | None, log) -> None:
    def median_rps(key: str) -> float | None:
        runs = results.get(key)
        return statistics.median(r.rps for r in runs) if runs else None

    waits = "WAITS: image_repo serves a pyramid once PyramidReader (the pyramids part) is on this branch"
    log("")
    log(f"{'figure':<58} {'value':>10}  {'goal':>8}  verdict")
    for label, key in (("aligned cold tiles/s, bare WSGI (same bytes)", "bare"),
                       ("aligned cold tiles/s, IIPImage", "iipimage"),
                       ("aligned cold tiles/s, image_repo file store", "image_repo file"),
                       ("aligned cold tiles/s, image_repo Swift", "image_repo swift")):
        value = median_rps(key)
        log(f"{label:<58} {value:>10.1f}" if value is not None else f"{label:<58} {'-':>10}")
    bare, iip = median_rps("bare"), median_rps("iipimage")
    def cpu_ms(key: str) -> float | None:
        runs = results.get(key)
        return statistics.median(float(r.note) for r in runs) if runs and all(r.note for r in runs) else None

    for label, key in (("server CPU ms per aligned tile, bare WSGI", "bare"), ("... IIPImage (lighttpd + iipsrv)", "iipimage"),
                       ("... image_repo file store", "image_repo file"), ("... image_repo Swift (Swift's own not counted)", "image_repo swift")):
        value = cpu_ms(key)
        log(f"{label:<58} {value:>10.3f}" if value is not None else f"{label:<58} {'-':>10}")
    for label, key, ref_key in (("CPU-per-tile ratio bare / file store (tiles/s a core would give)", "image_repo file", "bare"),
                                ("CPU-per-tile ratio IIPImage / file store", "image_repo file", "iipimage")):
        mine, ref = cpu_ms(key), cpu_ms(ref_key)
        if mine and ref:
            log(f"{label:<58} {ref / mine:>9.2f}x")
    for label, key, ref, goal in (("file store / bare WSGI", "image_repo file", bare, 0.7),
                                  ("Swift / bare WSGI", "image_repo swift", bare, 0.7),
                                  ("file store / IIPImage", "image_repo file", iip, 1.0)):
        mine = median_rps(key)
        if mine is None or ref is None:
            why = waits if not have_reader else (why_not_iip if ref is None and why_not_iip else "not measured")
            log(f"{label:<58} {'-':>10}  {'>= ' + str(goal):>8}  SKIP ({why})")
            continue
        ratio = mine / ref
        log(f"{label:<58} {ratio:>9.2f}x  {'>= ' + str(goal):>8}  {'PASS' if ratio >= goal else 'FAIL'}")
    for label, key in (("unaligned regions rendered/s, image_repo", "unaligned image_repo"),
                       ("unaligned regions rendered/s, IIPImage", "unaligned iipimage")):
        runs = results.get(key)
        if runs:
            log(f"{label:<58} {runs[0].rps:>10.1f}  (p99 {runs[0].p99_ms:.0f} ms)")
        else:
            log(f"{label:<58} {'-':>10}  SKIP ({waits if 'image_repo' in key else why_not_iip})")
    tiles_runs = results.get("image_repo file")
    if tiles_runs:
        merged = load.merge(tiles_runs)
        log(f"{'p99 of an aligned cold tile, image_repo file store (ms)':<58} {merged.p99_ms:>10.1f}")


if __name__ == "__main__":
    main()
