#!/usr/bin/env python3
"""Where a request's time goes: cProfile of image_repo handling requests in-process.

``python bench/profile_request.py [cold|second|hit|304] [-n N] [--top 25]``

Uses the originals ``run.py`` wrote (run it once first) and a fresh cache directory, and
calls the WSGI app with environs built beforehand (no Gunicorn, no sockets, no test
client), so the profile shows the application's own work: lookups, store reads, decode/resize/encode, cache
writes, Flask/Werkzeug. Sorted by cumulative and by own time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from run import ensure_interpreter

ensure_interpreter()

import images
from plan import FULL
from scenarios import image_path


def environ(path: str, headers: dict[str, str]) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path=path.split("?")[0], query_string=path.partition("?")[2], headers=list(headers.items()))
    try:
        return builder.get_environ()
    finally:
        builder.close()


def call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """One request straight into the WSGI callable, body consumed: (status line, headers)."""
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got[:] = [status, dict(headers)]
        return lambda data: None

    body = app(env, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return got[0], got[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["cold", "second", "hit", "304"], nargs="?", default="cold")
    p.add_argument("-n", type=int, default=100, help="requests profiled (default 100; cold/second: at most 900)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--time-only", action="store_true", help="no profiler: just CPU and wall per request")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    args = p.parse_args()

    from image_repo.config.settings import Settings
    from image_repo.web.app import create_app

    originals = args.out.resolve() / f"data-v{images.GENERATOR_VERSION}" / "originals"
    cold12 = FULL.image_sets()["cold12"]
    if not (originals / cold12.key(0)).exists():
        sys.exit(f"no originals under {originals}: run python bench/run.py --quick once first")
    n = min(args.n, cold12.count)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        settings = Settings(data_dir=tmp, store="file://" + str(originals))
        app = create_app(settings)
        names = [cold12.name(i) for i in range(n)]
        if args.what == "cold":
            paths = [image_path(name, 256) for name in names]
            headers: dict[str, str] = {}
        elif args.what == "second":
            for name in names:  # first size, unprofiled
                call(app, environ(image_path(name, 256), {}))
            paths = [image_path(name, 128) for name in names]
            headers = {}
        else:
            path = image_path(names[0], 256)
            status, answer_headers = call(app, environ(path, {}))
            paths = [path] * args.n
            headers = {"If-None-Match": answer_headers["ETag"]} if args.what == "304" else {}
        # Environs are built before profiling: the profile is the app's, not a client's.
        environs = [environ(path, headers) for path in paths]
        # CPU time, not wall: on a shared machine the wall clock also counts other processes.
        profiler = cProfile.Profile(time.process_time)
        t, c = time.perf_counter(), time.process_time()
        if not args.time_only:
            profiler.enable()
        for env in environs:
            status, _ = call(app, env)
            assert status[:3] in ("200", "304"), (env["PATH_INFO"], status)
        profiler.disable()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"{args.what}: {len(paths)} requests, {cpu / len(paths) * 1000:.3f} ms CPU/req "
          f"({wall / len(paths) * 1000:.3f} ms wall/req)"
          + ("" if args.time_only else ", under the profiler (slower than without)"))
    if args.time_only:
        if args.what in ("cold", "second"):
            from floor import decode_floor

            data = (originals / cold12.key(0)).read_bytes()
            floor = decode_floor(data, cold12.key(0), box=256 if args.what == "cold" else 128, duration=2.0)
            print(f"decode floor of the same original: {floor.cpu_ms:.3f} ms CPU; the request costs "
                  f"{cpu / len(paths) * 1000 - floor.cpu_ms:.3f} ms more")
        return
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
