#!/usr/bin/env python3
"""Soak: ``--minutes`` (30) of mixed load on a 2-worker image_repo, and what it left behind.

    python3 bench/soak.py                  # the full soak: 30 minutes
    python3 bench/soak.py --minutes 3      # a short one, for development

The load (``soak_load.py``, pluggable): uploads, cold and warm derivations, zips, imports,
deletes, metadata, and IIIF tiles when the server offers them. It reports, against the
goals of issue 13: 5xx (goal 0); each worker's RSS at 5, 15 and 30 minutes (at 1/6, 1/2 and
the end of a shorter run; goal: flat within 10% from the first mark to the last); p99 per
route; the cache levels' sizes against their caps; and, after the load, every original an
upload or import acknowledged and no delete removed, checked by its SHA-256 (objects lost,
goal 0). The machine is shared: how busy it was (other processes' cores) is printed too.
Writes under bench/out/soak-<time>/ (git-ignored). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from interpreter import ensure_interpreter  # noqa: E402  (re-runs under .venv when needed)

ensure_interpreter()

import procs  # noqa: E402
import servers  # noqa: E402
import soak_load  # noqa: E402
from load import percentile  # noqa: E402

MB = 2**20


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long the load runs (default 30)")
    p.add_argument("--workers", type=int, default=2, help="Gunicorn workers (default 2)")
    p.add_argument("--clients", type=int, default=6, help="concurrent load threads (default 6)")
    p.add_argument("--mix", default="", help="weights, e.g. 'cold=20,warm=40,upload=5' (default: soak_load.DEFAULT_MIX)")
    p.add_argument("--plugin", action="append", default=[], help="module:function that adds actions (see soak_load)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="a server setting")
    return p.parse_args()


def config_for(root: Path, sets: list[str]) -> dict[str, Any]:
    """The server's settings: its defaults, but caps small enough that a soak fills and evicts them."""
    config: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "url_key": "soak-url-key",
        "memory_cache": {"max_bytes": 64 * MB},
        "disk_cache": {"path": str(root / "disk_cache"), "max_bytes": 256 * MB},
        "log_level": "warning",
    }
    for item in sets:
        key, _, value = item.partition("=")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(value) if value[:1] in "[{0123456789-" or value in ("true", "false") else value
    return config


class Sampler(threading.Thread):
    """Worker RSS every 2 s; a mark's figure (at 1/6, 1/2 and the end of the run) is the median of
    the samples of the minute before it (a tenth of the run, if shorter), since one sample also
    holds whatever decodes were in flight at that instant (tens of MiB each)."""

    def __init__(self, server: servers.Running, minutes: float) -> None:
        super().__init__(daemon=True, name="soak-sampler")
        self.server = server
        self.start_wall = time.monotonic()
        self.marks = [minutes * 60 / 6, minutes * 60 / 2, minutes * 60]
        self.window = min(60.0, minutes * 6)
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.peak: dict[int, float] = {}
        self.pids_seen: set[int] = set()
        self.stop_event = threading.Event()

    def sample(self) -> dict[int, float]:
        rss = {pid: procs.rss_mb(pid) for pid in self.server.workers()}
        self.samples.append((time.monotonic() - self.start_wall, rss))
        self.pids_seen |= set(rss)
        for pid, mb in rss.items():
            self.peak[pid] = max(self.peak.get(pid, 0.0), mb)
        return rss

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(2.0)
        self.sample()  # the end of the load

    def at_mark(self, mark: float, pid: int) -> tuple[float, float, float] | None:
        """(median, min, max) of ``pid``'s RSS in the window before ``mark`` (the last mark: the run's end)."""
        end = mark if mark < self.marks[-1] else float("inf")
        seen = sorted(rss[pid] for t, rss in self.samples if mark - self.window <= t <= end and pid in rss)
        return (seen[len(seen) // 2], seen[0], seen[-1]) if seen else None


def cache_figures(port: int, workers: list[int], root: Path) -> list[str]:
    """Each worker's memory cache and the host's disk cache against their caps (from /metrics)."""
    import metrics

    lines, seen = [], set()
    for _ in range(40):  # new connections until every worker has answered
        pid, body = metrics.ask(port, workers)
        if pid is None or pid in seen:
            continue
        seen.add(pid)
        for level in body.get("cache", {}).get("levels", []):
            if level.get("type") in ("MemoryCache", "DiskCache"):
                used, cap = level.get("bytes", 0), level.get("max_bytes", 0)
                lines.append(f"  worker {pid} {level['type']:<12} {used / MB:8.1f} MiB of {cap / MB:6.0f} MiB "
                             f"({100 * used / cap if cap else 0:5.1f}%)  evictions {level.get('evictions', 0)}"
                             f"  {'OK' if used <= cap else 'OVER THE CAP'}")
        gate = body.get("store_gate", {})
        lines.append(f"  worker {pid} store gate: refused {gate.get('refused', 0)}")
        if seen >= set(workers):
            break
    on_disk = sum(p.stat().st_size for p in (root / "disk_cache").rglob("*") if p.is_file() and len(p.name) == 64)
    store = sum(p.stat().st_size for p in (root / "data" / "cache").rglob("*") if p.is_file())
    lines.append(f"  disk cache files on disk {on_disk / MB:.1f} MiB; cache store (no cap: a store) {store / MB:.1f} MiB")
    return lines


def report(args: argparse.Namespace, run: soak_load.Run, sampler: Sampler, wall: float, window: procs.CpuWindow,
           checked: int, lost: list[str], cache_lines: list[str]) -> str:
    out = [f"soak: {args.minutes:g} min of load, {args.workers} workers, {args.clients} clients, "
           f"{len(run.records)} requests in {wall:.0f} s",
           f"machine: {procs.CORES} cores; the server used {window.server_cores:.2f}, everyone else "
           f"{window.other_cores:.2f} on average (the machine is shared); load average now "
           f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", ""]
    out.append(f"{'route':<10} {'requests':>8} {'5xx':>5} {'4xx':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    five_xx = 0
    for route in sorted({r.route for r in run.records}):
        rows = [r for r in run.records if r.route == route]
        ms = sorted(r.ms for r in rows)
        errors = sum(r.status >= 500 or r.status == 0 for r in rows)
        five_xx += errors
        out.append(f"{route:<10} {len(rows):>8} {errors:>5} {sum(400 <= r.status < 500 for r in rows):>5} "
                   f"{percentile(ms, 50):>8.1f} {percentile(ms, 99):>8.1f} {ms[-1]:>8.1f}")
    out += ["", f"5xx (and failed connections): {five_xx}  goal 0: {'PASS' if five_xx == 0 else 'FAIL'}"]
    if run.failures:
        out += ["  first failures:"] + [f"    {f}" for f in run.failures[:8]]
    out += ["", f"worker RSS (MiB), median of the {sampler.window:.0f} s before "
            + ", ".join(f"{m / 60:.3g} min" for m in sampler.marks) + " [min-max in that window]"]
    growths = []
    for pid in sorted(sampler.pids_seen):
        series = [sampler.at_mark(m, pid) for m in sampler.marks]
        shown = "  ".join(f"{v[0]:7.1f} [{v[1]:.0f}-{v[2]:.0f}]" if v else "      -" for v in series)
        first, last = series[0], series[-1]
        growth = (last[0] / first[0] - 1) * 100 if first and last else None
        if growth is not None:
            growths.append(growth)
        out.append(f"  worker {pid}: {shown}   peak {sampler.peak.get(pid, 0):.1f}"
                   + (f"   first to last {growth:+.1f}%" if growth is not None else "   (not alive at every mark)"))
    flat = bool(growths) and max(abs(g) for g in growths) <= 10
    out.append(f"RSS flat within 10%: {'PASS' if flat else 'FAIL'}"
               + ("" if len(sampler.pids_seen) == args.workers else f" ({len(sampler.pids_seen)} worker pids seen)"))
    out += ["", "caches against their caps:"] + cache_lines
    out += ["", f"objects: {checked} acknowledged originals checked by SHA-256 after the load, {len(lost)} lost"
            + (": " + ", ".join(lost[:5]) if lost else "") + f"  goal 0: {'PASS' if not lost else 'FAIL'}"]
    return "\n".join(out) + "\n"


def main() -> int:
    args = parse_args()
    root = BENCH_DIR / "out" / time.strftime("soak-%Y%m%d-%H%M%S")
    root.mkdir(parents=True)
    print(f"soak: writing under {root}", flush=True)
    python = sys.executable
    server = servers.start_image_repo(python, config_for(root, args.sets), root / "server", workers=args.workers,
                                      quiet=True)
    try:
        base = f"http://127.0.0.1:{server.port}"
        load = soak_load.Load(base, root, mix=soak_load.parse_mix(args.mix), plugins=args.plugin)
        load.seed()
        print(f"soak: seeded; for {args.minutes:g} min, actions (weights) {load.describe()}", flush=True)
        sampler = Sampler(server, args.minutes)
        meter = procs.CpuMeter(server.pid)
        started = time.monotonic()
        sampler.start()
        run = load.run(args.clients, args.minutes * 60, progress=lambda line: print(line, flush=True))
        wall = time.monotonic() - started
        window = meter.stop(run.client_cpu_s)
        sampler.stop_event.set()
        sampler.join()
        checked, lost = load.check_originals()
        text = report(args, run, sampler, wall, window, checked, lost,
                      cache_figures(server.port, server.workers(), root))
    finally:
        server.stop()
    (root / "report.txt").write_text(text)
    (BENCH_DIR / "out" / "soak-latest.txt").write_text(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
