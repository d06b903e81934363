"""Cache hits, 304s and the bare WSGI app serving the very same bytes, direct and behind nginx, interleaved.

Every round counts: a row's figure is the median of all its rounds, its note gives
min/median/max and each round's req/s, the 1-minute load average when it started, and
how evenly the server's workers shared the CPU (idlest / busiest). The goals compare the
cache hit with the bare app round by round (the two ran seconds apart), so a round in
which one worker got the connections and the other idled shows as the worst round.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import load
import peer_nginx
import procs
import servers
from load import LoadResult
from scenarios import Bench, measured, ok_rps, to_row
from servers import Running

NGINX_KEEPALIVE = (2, 8)
"""Idle upstream connections nginx keeps: with 2, most requests open a new upstream
connection (churn); with 8 and 8 client connections, every upstream connection lives the
whole run, so whichever worker took it serves it throughout."""


def hot_phase(b: Bench, srv: Running, path: str, run_dir: Path, running: list[Running], nginx: str | None) -> None:
    """Start the bare app (and nginx in front of both), then the interleaved rounds."""
    first = load.fetch(srv.port, path)
    again = load.fetch(srv.port, path)
    if first.status != 200 or not first.headers.get("etag"):
        raise RuntimeError(f"GET {path} answered {first.status} without an ETag")
    etag = first.headers["etag"]
    b.log(f"  hot URL {path}: {len(first.body)} bytes, X-Image-Repo-Cache {again.headers.get('x-image-repo-cache')}")
    bare = servers.start_bare_wsgi(b.python, run_dir / "server" / "config.yml", first.body, etag.strip('"'),
                                   run_dir / "bare", workers=b.workers, quiet=b.quiet)
    running.append(bare)
    direct = 8 * b.workers
    backends: dict[str, Running] = {"image_repo": srv, "bare": bare}
    fronts: dict[str, tuple[Running, Running]] = {name: (s, s) for name, s in backends.items()}
    runs: dict[str, tuple[str, str, dict[str, str], int]] = {
        "cache hit": ("image_repo", path, {}, direct),
        "bare WSGI": ("bare", "/", {}, direct),
        "304": ("image_repo", path, {"If-None-Match": etag}, direct),
    }
    if nginx is None:
        b.facts["nginx_error"] = "nginx not installed (apt-get install nginx) and not installable here"
    else:
        for keep in NGINX_KEEPALIVE:
            for name, backend in backends.items():
                proxy = peer_nginx.start_nginx(nginx, backend.port, run_dir / f"nginx-{name}-ka{keep}", keep,
                                               ready_path=path if name == "image_repo" else "/")
                running.append(proxy)
                fronts[f"{name} nginx{keep}"] = (proxy, backend)
            runs[f"cache hit via nginx keepalive {keep}"] = (f"image_repo nginx{keep}", path, {}, 8)
            runs[f"bare WSGI via nginx keepalive {keep}"] = (f"bare nginx{keep}", "/", {}, 8)
    try:
        hot(b, fronts, runs)
    finally:
        for s in running[running.index(bare):]:
            s.stop()


def hot(b: Bench, fronts: dict[str, tuple[Running, Running]], runs: dict[str, tuple[str, str, dict[str, str], int]]) -> None:
    """Rounds of wrk runs, one per entry of ``runs`` (scenario -> (front, path, headers, connections)), interleaved.

    ``fronts`` maps a name to (what wrk talks to, the Gunicorn server whose CPU is measured):
    the same server twice, or nginx and the server behind it (nginx's CPU is in the note).
    """
    per: dict[str, list[tuple[LoadResult, procs.CpuWindow, list[float], float, float]]] = {k: [] for k in runs}
    for name, (front, path, headers, conns) in runs.items():  # warm-up: connections, memory cache
        _once(b, fronts[front][0], path, headers, conns, 2.0)
    for r in range(b.plan.hot_rounds):
        for name, (front, path, headers, conns) in runs.items():
            target, backend = fronts[front]
            load1 = procs.load1()

            def once(t: Running = target, p: str = path, h: dict[str, str] = headers, c: int = conns) -> LoadResult:
                return _once(b, t, p, h, c, b.plan.hot_s)

            proxy = procs.CpuMeter(target.pid) if target is not backend else None
            result, window, rss = measured(backend, once)
            proxy_s = proxy.stop(0.0).server_s if proxy is not None else 0.0
            per[name].append((result, window, rss, load1, proxy_s))
            b.log(f"  {name}: round {r + 1}/{b.plan.hot_rounds}: {ok_rps(result):,.0f} req/s; load {load1:.1f}; "
                  f"worker CPU s {[round(v, 2) for v in window.worker_s]}"
                  + (f"; nginx CPU s {proxy_s:.2f}" if proxy is not None else "")
                  + (f"; {window.restarts} worker(s) recycled" if window.restarts else ""))
    for name, results in per.items():
        rates = [ok_rps(t[0]) for t in results]
        ordered = sorted(range(len(results)), key=lambda i: rates[i])
        mid = ordered[len(ordered) // 2]  # the median round (of an even count, the higher)
        result, window, rss, _, _ = results[mid]
        note = (f"all {len(rates)} rounds: min/median/max {min(rates):,.0f} / {statistics.median(rates):,.0f} / "
                f"{max(rates):,.0f}; rounds (req/s load1 balance): "
                + ", ".join(f"{ok_rps(t[0]):,.0f} {t[3]:.1f} {_balance(t[1])}" + ("+" if t[1].restarts else "") for t in results))
        if any(t[1].restarts for t in results):
            note += "; + a worker was recycled (max_requests)"
        if any(t[4] for t in results):
            note += f"; nginx CPU ms/req {1000 * sum(t[4] for t in results) / max(1, sum(t[0].requests for t in results)):.2f}"
        row = to_row(name, result, window, rss, note)
        row.rps = statistics.median(rates)
        b.rows.append(row)
        b.facts[f"hot:{name}"] = statistics.median(rates)
        b.facts[f"hot_rounds:{name}"] = rates
        b.facts[f"cpu:hot:{name}"] = row.cpu_ms_per_req


def _balance(window: procs.CpuWindow) -> str:
    return "-" if window.balance is None else f"{window.balance:.2f}"


def _once(b: Bench, server: Running, path: str, headers: dict[str, str], conns: int, seconds: float) -> LoadResult:
    if b.wrk:
        return load.run_wrk(b.wrk, f"http://127.0.0.1:{server.port}{path}", connections=conns, duration=seconds, headers=headers)
    return load.python_fallback_hot(server.port, path, connections=conns, duration=seconds, headers=headers)


def paired(facts: dict[str, Any], ours: str, ref: str) -> list[float]:
    """Round-by-round ratios of two hot rows (each pair measured seconds apart)."""
    a, r = facts.get(f"hot_rounds:{ours}") or [], facts.get(f"hot_rounds:{ref}") or []
    return [x / y for x, y in zip(a, r) if y > 0]
