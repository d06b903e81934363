#!/usr/bin/env python3
"""image_repo's benchmark, one command: ``python bench/run.py`` (6-11 minutes; ``--quick``: 3-5).

It generates its test images, starts image_repo under Gunicorn on loopback with the file
store, loads it (a Python generator for URL lists, wrk for one hot URL), measures the
references side by side (Pillow's decode floor, a bare WSGI app under the same Gunicorn
options, thumbor in its own virtualenv), and prints a table and each goal of issue #5 as a
ratio with PASS/FAIL/SKIP (issues #5 and #18). Everything it writes goes under bench/out/ (git-ignored).
Not part of the test suite: figures depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

sys.path.insert(0, str(BENCH_DIR))
from interpreter import ensure_interpreter

ensure_interpreter()

import dataset
import goals as goals_mod
import hot
import images
import load
import peer_nginx
import peer_thumbor
import procs
import quality
import scenarios
import servers
from plan import FULL, QUICK, Plan
from report import Row, goals_table, rows_table


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sets and shorter runs (~1.5 min): for development")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="where images, data and reports go (default bench/out)")
    p.add_argument("--workers", type=int, default=procs.CORES, help="Gunicorn workers (default: one per core)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra server setting (YAML value), e.g. --set original_stat_ttl=5 --set threads=2")
    p.add_argument("--quiet-server", action="store_true",
                   help="serve with -q (no access log, log level error); default: image_repo's defaults, access log on")
    p.add_argument("--no-thumbor", action="store_true", help="skip thumbor (its goal is then SKIP)")
    p.add_argument("--no-install", action="store_true", help="never install wrk or thumbor (use what is there)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="first wait up to this long for a quiet machine (< 0.15 busy cores for 10 s); for shared machines")
    p.add_argument("--only", choices=["cold", "hot", "other"],
                   help="run one group of phases (cold 12 MP with its references and the second size; the "
                        "cache-hit/bare/304 rounds; or the rest: other sources, burst, listing, RSS): for "
                        "development; goals of the others are SKIP")
    return p.parse_args()


def server_config(data: Path, workers: int, extra: list[str]) -> dict[str, Any]:
    import yaml

    config: dict[str, Any] = {"data_dir": str(data), "workers": workers}
    for item in extra:
        key, _, value = item.partition("=")
        node = config
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return config


def environment(wrk: str | None, thumbor_exe: Path | None) -> dict[str, str]:
    import gunicorn
    import PIL

    def cmd(args: list[str]) -> str:
        try:
            return subprocess.run(args, check=False, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {
        "commit": cmd(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "cpu": f"{cpu}, {procs.CORES} cores",
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "gunicorn": gunicorn.__version__,
        "wrk": cmd([wrk, "--version"]).split(" [")[0] if wrk else "none (Python generator)",
    }
    if thumbor_exe is not None:
        env["thumbor"] = cmd([str(thumbor_exe.parent / "python"), "-c",
                              "import thumbor, PIL; print('thumbor', thumbor.__version__, 'Pillow', PIL.__version__)"])
    return env


def wanted_group(args: argparse.Namespace, group: str) -> bool:
    return args.only is None or args.only == group


def jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class Phases:
    """Runs each phase, so one that fails says why in the report and the others still run."""

    def __init__(self, b: scenarios.Bench, t0: float) -> None:
        self.b, self.t0 = b, t0

    def __call__(self, title: str, fact: str, fn: Any, *args: Any) -> Any:
        self.b.log(f"[{time.monotonic() - self.t0:5.0f} s] {title}")
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - a phase's failure is a finding to report, not a reason to stop
            msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            self.b.log(f"  FAILED: {msg}")
            if isinstance(e, servers.StartError):
                self.b.log(str(e))
            self.b.facts.setdefault(f"{fact}_error", msg)
            self.b.rows.append(Row(scenario=title, note=f"FAILED: {msg}"))
            return None


def main() -> int:
    args = parse_args()
    plan: Plan = QUICK if args.quick else FULL
    t0 = time.monotonic()
    out: Path = args.out.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = out / f"run-{stamp}-{plan.name}"
    data = out / f"data-v{images.GENERATOR_VERSION}"
    originals = data / "originals"
    run_dir.mkdir(parents=True, exist_ok=True)
    def log(msg: str) -> None:
        print(msg, flush=True)
        with open(run_dir / "log.txt", "a") as fh:
            fh.write(msg + "\n")

    log(f"image_repo benchmark ({plan.name}), output in {run_dir}")
    log("setup")
    # Anything a server kept from an earlier run (derived images, intermediates, indexes)
    # would make "cold" requests warm: keep only the originals and our own markers.
    for child in data.iterdir() if data.exists() else []:
        if child.name != "originals" and not child.name.endswith(".done"):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    sets = plan.image_sets()
    bases = images.ensure_bases(out / "bases", log)
    dataset.fill(originals, list(sets.values()), bases, log)
    dataset.fill_listing(originals, "many", plan.listing_names, log)
    dataset.warm(originals, [s for k, s in sets.items() if k in ("cold12", "cold2", "png12")], log)
    wrk = None if args.no_install and not shutil.which("wrk") else load.ensure_wrk(log)
    nginx = peer_nginx.ensure_nginx(log, install=not args.no_install) if wanted_group(args, "hot") else None
    thumbor_exe, thumbor_why = None, "--no-thumbor"
    if not args.no_thumbor:
        if args.no_install and not (out / "venv-thumbor" / "bin" / "thumbor").exists():
            thumbor_why = "not installed and --no-install"
        else:
            thumbor_exe, thumbor_why = peer_thumbor.ensure_venv(out / "venv-thumbor", log)
    if thumbor_exe is None:
        log(f"  thumbor: SKIP ({thumbor_why})")

    if args.wait_quiet > 0:
        log(f"waiting up to {args.wait_quiet:.0f} s for a quiet machine")
        deadline = time.monotonic() + args.wait_quiet
        while time.monotonic() < deadline:
            busy = procs.busy_cores(10.0)
            if busy < 0.15:
                break
            log(f"  busy: {busy:.2f} cores")
    b = scenarios.Bench(plan, run_dir, sys.executable, args.workers, args.quiet_server, wrk, sets, log)
    if thumbor_exe is None:
        b.facts["thumbor_error"] = thumbor_why
    config = server_config(data, args.workers, args.set)
    phase = Phases(b, t0)
    running: list[servers.Running] = []

    def start_server(tag: str) -> servers.Running:
        srv = servers.start_image_repo(sys.executable, config, run_dir / tag, workers=args.workers, quiet=b.quiet)
        running.append(srv)
        return srv

    def wanted(group: str) -> bool:
        return args.only is None or args.only == group

    try:
        if wanted("other"):
            phase("decode floor of the other sources (Pillow, in-process)", "floor", scenarios.floors, b, bases)
        srv = phase("start image_repo", "server", start_server, "server")
        th = None
        if thumbor_exe is not None and wanted("cold"):
            th = phase("start thumbor", "thumbor", start_thumbor, b, thumbor_exe, originals, run_dir, running)
        box, cold12 = plan.box, sets["cold12"]
        if srv is not None and wanted("cold"):
            warm = sets["warm12"]
            phase("warm-up (untimed)", "warm", scenarios.warm_up, b, srv,
                  [scenarios.image_path(warm.name(i), s) for i in range(warm.count) for s in (box, plan.second_box)])
            if th is not None:
                phase("warm-up thumbor (untimed)", "thumbor", scenarios.warm_up, b, th,
                      [peer_thumbor.url_path(warm.key(i), box) for i in range(warm.count)])
            seen = phase(f"cold 12 MP -> {box} px: decode floor, image_repo, thumbor interleaved", "cold12",
                         scenarios.cold_side_by_side, b, srv, th, bases["photo12mp.jpg"].read_bytes(), cold12,
                         lambda key: peer_thumbor.url_path(key, box), f"thumbor {args.workers} processes, 12 MP -> {box} px")
            if seen:
                picks = seen[:4]
                sides = {"image_repo": (srv, [scenarios.image_path(cold12.name(i), box) for i in picks])}
                if th is not None:
                    sides["thumbor"] = (th, [peer_thumbor.url_path(cold12.key(i), box) for i in picks])
                phase("SSIM of the outputs", "ssim", ssim_phase, b, bases["photo12mp.jpg"].read_bytes(), sides, box)
            if th is not None:
                th.stop()
            if seen:
                second = [scenarios.image_path(cold12.name(i), plan.second_box) for i in seen]
                phase(f"second size ({plan.second_box} px) of the same originals", "second", scenarios.cold, b, srv,
                      f"image_repo 2nd size {plan.second_box} px of seen 12 MP", "second", second)
        if srv is not None and wanted("other"):
            for key, label in (("cold2", "2 MP JPEG"), ("png12", "12 MP PNG")):
                s = sets[key]
                paths = [scenarios.image_path(s.name(i), box) for i in range(s.count)]
                phase(f"cold {label} -> {box} px", key, scenarios.cold, b, srv,
                      f"image_repo cold {label} -> {box} px", key, paths)
            phase("16 concurrent identical new requests", "burst", scenarios.burst, b, srv,
                  scenarios.image_path(sets["burst"].name(0), box))
        if srv is not None and wanted("hot"):
            phase("cache hit / bare WSGI / 304, direct and behind nginx (wrk)", "hot", hot.hot_phase, b, srv,
                  scenarios.image_path(cold12.name(0), box), run_dir, running, nginx)
        if srv is not None and wanted("other"):
            phase("regex listing", "listing", scenarios.listing, b, srv, originals, "many")
        if srv is not None:
            srv.stop()
        srv2 = phase("start a fresh image_repo for the memory run", "rss", start_server, "server-rss") if wanted("other") else None
        if srv2 is not None:
            phase("48 MP mix (worker RSS)", "rss", scenarios.rss_run, b, srv2, sets["big48"], 150.0 if plan.name == "full" else 40.0)
            srv2.stop()
    finally:
        for r in running:
            r.stop()

    goals = goals_mod.evaluate(b.facts, procs.CORES, plan.name)
    env = environment(wrk, thumbor_exe)
    others = [r.other_cores for r in b.rows if r.other_cores == r.other_cores]
    busy = max(others, default=0.0)
    warning = (
        f"WARNING: other processes used up to {busy:.2f} of {procs.CORES} cores during the runs: req/s figures and "
        "the ratios between runs made at different times are unreliable; the CPU/req ratios in 'how' are less affected. "
        "Run again on a quiet machine."
        if busy > 0.25 else ""
    )
    text = "\n".join([
        "",
        f"image_repo benchmark ({plan.name}): " + "; ".join(f"{k} {v}" for k, v in env.items()),
        (f"server: {args.workers} Gunicorn workers, settings {json.dumps({k: v for k, v in config.items() if k != 'data_dir'})}, "
         f"access log {'off (-q)' if args.quiet_server else 'on'}; load concurrency {b.concurrency} (URL lists), "
         f"{8 * args.workers} connections (wrk)"),
        *([warning] if warning else []),
        "",
        rows_table(b.rows),
        "",
        goals_table(goals),
        "",
        f"took {time.monotonic() - t0:.0f} s; details in {run_dir}",
    ])
    log(text)
    (run_dir / "report.txt").write_text(text + "\n")
    (out / "latest.txt").write_text(text + "\n")
    facts = {k: v for k, v in b.facts.items()}
    (run_dir / "results.json").write_text(json.dumps(jsonable(
        {"plan": plan, "environment": env, "config": config, "rows": b.rows, "goals": goals, "facts": facts}), indent=1))
    return 0


def ssim_phase(b: scenarios.Bench, base: bytes, sides: dict[str, Any], box: int) -> None:
    scores = quality.compare(base, sides)
    b.rows.append(quality.row(scores, box))
    b.facts["ssim"] = {k: min(v) for k, v in scores.items()}


def start_thumbor(b: scenarios.Bench, exe: Path, originals: Path, run_dir: Path,
                  running: list[servers.Running]) -> servers.Running:
    """thumbor on the same files (it keeps no result: every request derives), as many processes as workers."""
    th = peer_thumbor.start_thumbor(exe, originals, run_dir / "thumbor", processes=b.workers)
    running.append(th)
    return th


if __name__ == "__main__":
    sys.exit(main())
