"""The measured parts of a run. Each returns report rows and leaves its figures in ``Bench.facts``.

Every timed load run waits (bounded) for a quiet machine first and records the CPU of the
server tree (utime+stime of master and workers, /proc), of the load generator, and of
everyone else ("other load": a noisy neighbour on 2 cores spoils any figure).
"""
from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import load
import metrics
import procs
from dataset import ImageSet
from floor import Floor, decode_floor
from floor import merge as merge_floors
from load import LoadResult
from plan import Plan
from report import Row
from servers import Running


@dataclass
class Bench:
    plan: Plan
    out: Path
    python: str
    workers: int
    quiet: bool
    wrk: str | None
    sets: dict[str, ImageSet]
    log: Callable[[str], None] = print
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def concurrency(self) -> int:
        # Two requests in flight per core: every core busy, queueing still visible in p99.
        return 2 * self.workers


def image_path(name: str, box: int) -> str:
    return f"/images/{quote(name)}?xsize={box}&ysize={box}"


def _rss_text(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def measured(server: Running, run: Callable[[], LoadResult]) -> tuple[LoadResult, procs.CpuWindow, list[float]]:
    """Run one load on a quiet machine; (result, CPU window, RSS of each worker after)."""
    procs.wait_quiet()
    meter = procs.CpuMeter(server.pid)
    result = run()
    window = meter.stop(result.loadgen_cpu_s)
    return result, window, [procs.rss_mb(p) for p in server.workers()]


def to_row(scenario: str, result: LoadResult, window: procs.CpuWindow, rss: list[float], note: str = "") -> Row:
    notes = [n for n in (note, result.note) if n]
    if window.restarts:
        notes.append(f"{window.restarts} worker(s) recycled during the run")
    if result.errors:
        bad = {s: n for s, n in result.statuses.items() if not 200 <= s < 400}
        notes.append(f"failed: {bad or result.errors}")
    return Row(
        scenario=scenario,
        tool=result.tool,
        requests=result.requests,
        rps=ok_rps(result),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_ms_per_req=window.server_s * 1000 / result.requests if result.requests else float("nan"),
        rss_mb=_rss_text(rss),
        errors=result.errors,
        other_cores=window.other_cores,
        note="; ".join(notes),
        extra={"server_cores": round(window.server_cores, 2),
               "worker_cpu_s": [round(v, 2) for v in window.worker_s], "loadgen_cpu_s": round(result.loadgen_cpu_s, 2),
               "elapsed_s": round(result.elapsed_s, 2), "cache": dict(result.cache), "statuses": dict(result.statuses)},
    )


def ok_rps(result: LoadResult) -> float:
    """Successful answers per second (a failed request is not throughput)."""
    return (result.requests - result.errors) / result.elapsed_s if result.elapsed_s > 0 else 0.0


# -- the decode floor ---------------------------------------------------------------------


def floor_row(f: Floor, label: str, note: str = "") -> Row:
    cores = procs.CORES
    return Row(
        scenario=f"decode floor {label}, 1 core x {cores})",
        tool="in-process",
        requests=f.decodes,
        rps=f.per_core_rps * cores,
        cpu_ms_per_req=f.cpu_ms,
        note="; ".join(n for n in (f"decoded to {f.decoded_size[0]}x{f.decoded_size[1]}", f"wall {f.wall_ms:.1f} ms", note) if n),
    )


def floors(b: Bench, bases: dict[str, Path]) -> None:
    """Pillow decode of the other base files, one core: reference rows (the 12 MP JPEG's is interleaved)."""
    for name, label in (("photo48mp.jpg", "48 MP JPEG (Pillow draft"), ("photo2mp.jpg", "2 MP JPEG (Pillow draft"),
                        ("photo12mp.png", "12 MP PNG (full decode")):
        procs.wait_quiet()
        f = decode_floor(bases[name].read_bytes(), name, b.plan.box, duration=3.0 if b.plan.name == "full" else 1.5)
        b.rows.append(floor_row(f, label))
        b.facts[f"floor:{name}"] = f


# -- uncached derivation -----------------------------------------------------------------


def warm_up(b: Bench, server: Running, paths: list[str]) -> None:
    """Untimed requests so every worker has imported and allocated what a request needs."""
    load.run_paths(server.port, paths, concurrency=b.concurrency, duration=30)


def cold(b: Bench, server: Running, scenario: str, fact: str, paths: list[str], *, expect_miss: bool = True) -> LoadResult:
    """Each path once (each a derivation nobody asked for before), bounded by ``plan.load_s``."""
    b.log(f"  {scenario}: {len(paths)} URLs, c={b.concurrency}, <= {b.plan.load_s:.0f} s")
    result, window, rss = measured(
        server, lambda: load.run_paths(server.port, paths, concurrency=b.concurrency, duration=b.plan.load_s)
    )
    note = ""
    if expect_miss and result.cache.get("hit"):
        note = f"NOT COLD: {result.cache['hit']} cache hits"
    if result.requests < len(paths):
        note = "; ".join(n for n in (note, f"time bound reached after {result.requests} of {len(paths)}") if n)
    row = to_row(scenario, result, window, rss, note)
    b.rows.append(row)
    b.facts[fact] = ok_rps(result)
    b.facts[f"cpu:{fact}"] = row.cpu_ms_per_req
    return result


COLD_SLICES = 2
"""Loads each server runs per cold round, in the order A B B A (B A A B the round after)."""


def cold_side_by_side(
    b: Bench, ours: Running, peer: Running | None, floor_source: bytes, originals: ImageSet,
    peer_path: Callable[[str], str], peer_label: str,
) -> list[int]:
    """The goals' cold 12 MP figures, interleaved: (decode floor, image_repo, thumbor) per round.

    On a shared machine the speed drifts 10-20% from minute to minute; measuring the three
    in turn, several times, exposes them to the same conditions. Within a round each server
    runs COLD_SLICES short loads in the order A B B A, so a drift that is steady over the
    round costs both the same (with one load each, the second ran 5 s later: per-round
    ratios spread from 0.94 to 1.23 in one run). Who is A alternates between rounds: the
    second server reads files the first has just read. Each round uses its own originals
    (thumbor the same files as image_repo). Returns the indices of the originals image_repo
    was asked for.
    """
    rounds = b.plan.cold_rounds
    chunks = [list(range(originals.count))[r::rounds] for r in range(rounds)]
    seen: list[int] = []
    bound = max(5.0, b.plan.load_s / rounds) / COLD_SLICES  # a bound, not a target: a load ends when its URLs are done
    floors: list[Floor] = []
    runs: dict[str, list[tuple[LoadResult, procs.CpuWindow, list[float]]]] = {"ours": [], "peer": []}
    per_round: dict[str, list[dict[str, float]]] = {"ours": [], "peer": []}
    servers = {"ours": ours, "peer": peer}
    for r, chunk in enumerate(chunks):
        b.log(f"  round {r + 1}/{len(chunks)}: decode floor, image_repo {len(chunk)} URLs"
              + (f", {peer_label} {len(chunk)} URLs" if peer else "")
              + f", c={b.concurrency}, {COLD_SLICES} loads each (A B B A), <= {bound:.1f} s each")
        procs.wait_quiet()
        floors.append(decode_floor(floor_source, "photo12mp.jpg", b.plan.box, duration=1.0))
        first, second = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
        order = [first, second, second, first] * (COLD_SLICES // 2) if peer else ["ours"] * COLD_SLICES
        slices = {side: [chunk[k::COLD_SLICES] for k in range(COLD_SLICES)] for side in servers}
        parts: dict[str, list[tuple[LoadResult, procs.CpuWindow]]] = {"ours": [], "peer": []}
        load1 = procs.load1()
        for side in order:
            srv, picked = servers[side], slices[side].pop(0)
            assert srv is not None
            paths = ([image_path(originals.name(i), b.plan.box) for i in picked] if side == "ours"
                     else [peer_path(originals.key(i)) for i in picked])
            meter = procs.CpuMeter(srv.pid)
            got = load.run_paths(srv.port, paths, concurrency=b.concurrency, duration=bound)
            procs.wait_idle(srv.pid)  # its writes behind the last answers are its own work
            parts[side].append((got, meter.stop(got.loadgen_cpu_s)))
            if side == "ours":  # run_paths takes the list in order: these were asked for
                seen.extend(picked[: got.requests])
        for side, done in parts.items():
            if not done:
                continue
            got, win = load.merge([d[0] for d in done]), procs.merge_windows([d[1] for d in done])
            srv = servers[side]
            assert srv is not None
            runs[side].append((got, win, [procs.rss_mb(p) for p in srv.workers()]))
            per_round[side].append({"rps": ok_rps(got), "cpu_ms": win.server_s * 1000 / max(1, got.requests),
                                    "load1": load1, "other_cores": win.other_cores, "requests": got.requests})
            b.log(f"    {side}: {ok_rps(got):.1f} req/s, {per_round[side][-1]['cpu_ms']:.1f} CPU ms/req, load {load1:.1f}, "
                  f"other {win.other_cores:.2f} cores")
    floor = merge_floors(floors)
    b.rows.append(floor_row(floor, "12 MP JPEG (Pillow draft", f"{len(floors)} slices between the runs below"))
    b.facts["floor:photo12mp.jpg"] = floor
    b.facts["cold_rounds"] = per_round
    for side, scenario, fact, expect_miss in (("ours", f"image_repo cold 12 MP -> {b.plan.box} px", "cold12", True),
                                              ("peer", peer_label, "thumbor", False)):
        if not runs[side]:
            continue
        result = load.merge([t[0] for t in runs[side]])
        window = procs.merge_windows([t[1] for t in runs[side]])
        note = f"{len(runs[side])} rounds (req/s, CPU ms/req, load1): " + ", ".join(
            f"{p['rps']:.1f} {p['cpu_ms']:.1f} {p['load1']:.1f}" for p in per_round[side])
        if expect_miss and result.cache.get("hit"):
            note += f"; NOT COLD: {result.cache['hit']} cache hits"
        wanted = sum(len(c) for c in chunks)
        if result.requests < wanted:
            note += f"; time bound reached after {result.requests} of {wanted}"
        row = to_row(scenario, result, window, runs[side][-1][2], note)
        b.rows.append(row)
        b.facts[fact] = ok_rps(result)
        b.facts[f"cpu:{fact}"] = row.cpu_ms_per_req
    return seen


# -- one derivation for many identical requests -------------------------------------------


def burst(b: Bench, server: Running, path: str, n: int = 16) -> None:
    """``n`` concurrent identical requests for a new derivative: how many derivations did they cost?"""
    workers = server.workers()
    before, how = metrics.per_worker(server.port, workers)
    answers = load.run_burst(server.port, path, n)
    after, how_after = metrics.per_worker(server.port, workers)
    statuses = [a.status if a else 0 for a in answers]
    misses = sum(1 for a in answers if a and a.headers.get("x-image-repo-cache") == "miss")
    known = all(w in before and w in after for w in workers)
    made = sum(metrics.derivations(after[w]) - metrics.derivations(before[w]) for w in workers) if known else None
    per = {w: metrics.derivations(after[w]) - metrics.derivations(before[w]) for w in workers if w in before and w in after}
    b.facts["burst"] = {"derivations": made, "per_worker": per, "misses": misses, "statuses": statuses,
                        "how": how if known else f"{how}; {how_after}"}
    b.rows.append(Row(
        scenario=f"{n} concurrent identical new requests",
        tool=f"python {n} threads",
        requests=n,
        errors=sum(1 for s in statuses if s != 200),
        note=f"derivations {made if made is not None else '?'} (per worker {per}); "
             f"'miss' answers {misses}; pids via {how}",
    ))


# -- regex listing ------------------------------------------------------------------------


def listing(b: Bench, server: Running, originals: Path, prefix: str) -> None:
    """``GET /images?regex=`` over ``prefix``'s names vs FileStore.list of the same subtree, in-process."""
    from image_repo.storage.filesystem import FileStore

    regex = f"{prefix}/n\\d*42"  # one name in 100 matches: the answer stays small, the scan is whole
    path = "/images?" + urlencode({"regex": regex})
    store = FileStore(str(originals))
    repeats = 3 if b.plan.name == "full" else 2
    raw_ms, http_ms, found, raw_count = [], [], 0, 0
    for _ in range(repeats):
        t = time.perf_counter()
        raw_count = sum(1 for _ in store.list(prefix + "/"))
        raw_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        answer = load.fetch(server.port, path)
        http_ms.append((time.perf_counter() - t) * 1000)
        if answer.status == 200:
            found = len(json.loads(answer.body))
    raw, http = statistics.median(raw_ms), statistics.median(http_ms)
    b.facts["listing"] = {"http_ms": http, "raw_ms": raw, "found": found, "listed": raw_count, "status": answer.status}
    b.rows.append(Row(
        scenario=f"regex listing of {raw_count:,} names",
        tool=f"median of {repeats}",
        requests=repeats,
        p50_ms=http,
        errors=0 if answer.status == 200 else repeats,
        note=f"GET /images?regex={regex}: {found} names in {http:.0f} ms; raw FileStore.list: {raw:.0f} ms",
    ))
    uploads(b, server, prefix, raw_count)


def uploads(b: Bench, server: Running, prefix: str, among: int) -> None:
    """PUT of a new image among ``among`` names vs in a directory of its own (then deleted): an
    upload looks for the name's other stored forms, which must not cost a read of the directory."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buf, "JPEG")
    body = buf.getvalue()
    times: dict[str, list[float]] = {"crowded": [], "alone": []}
    for i in range(8 if b.plan.name == "full" else 4):
        for where, path in (("crowded", f"/images/{prefix}/bench-upload-{i}"), ("alone", f"/images/bench-alone-{i}/u")):
            t = time.perf_counter()
            answer = load.fetch(server.port, path, method="PUT", body=body, headers={"Content-Type": "image/jpeg"})
            times[where].append((time.perf_counter() - t) * 1000)
            load.fetch(server.port, path, method="DELETE")
            if answer.status not in (200, 201):
                times[where][-1] = float("nan")
    crowded, alone = statistics.median(times["crowded"]), statistics.median(times["alone"])
    b.facts["uploads"] = {"crowded_ms": crowded, "alone_ms": alone, "among": among}
    b.rows.append(Row(
        scenario=f"upload among {among:,} names",
        tool=f"median of {len(times['crowded'])}",
        requests=len(times["crowded"]),
        p50_ms=crowded,
        errors=sum(1 for v in times["crowded"] + times["alone"] if v != v),
        note=f"PUT then DELETE: {crowded:.1f} ms among {among:,} names, {alone:.1f} ms alone in a directory ({crowded / alone:.2f}x)",
    ))


# -- memory over time ---------------------------------------------------------------------


def rss_run(b: Bench, server: Running, originals: ImageSet, bound_s: float) -> None:
    """Random requests over a fixed set of (48 MP original, size) keys; RSS of each worker at two checkpoints.

    The key set is fixed so that the derived-image cache stops growing early: growth between
    the checkpoints is then the server's own (leaks, fragmentation, unbounded tables).
    """
    sizes = b.plan.rss_sizes
    keys = [(i, s) for i in range(originals.count) for s in sizes]
    rnd = random.Random(48)
    first, second = b.plan.rss_checkpoints
    sequence = [image_path(originals.name(i), s) for i, s in (rnd.choice(keys) for _ in range(second))]
    b.log(f"  48 MP mix: {len(keys)} keys, {second} requests, <= {bound_s:.0f} s")
    rss_at: dict[int, list[float]] = {}
    results: list[LoadResult] = []
    deadline = time.monotonic() + bound_s
    procs.wait_quiet()
    meter = procs.CpuMeter(server.pid)
    for start, stop in ((0, first), (first, second)):
        left = deadline - time.monotonic()
        r = load.run_paths(server.port, sequence[start:stop], concurrency=b.concurrency, duration=max(1.0, left))
        results.append(r)
        rss_at[start + r.requests] = [procs.rss_mb(p) for p in server.workers()]
    done = sum(r.requests for r in results)
    window = meter.stop(sum(r.loadgen_cpu_s for r in results))
    merged = LoadResult(
        tool=results[0].tool,
        requests=done,
        elapsed_s=sum(r.elapsed_s for r in results),
        errors=sum(r.errors for r in results),
        statuses=results[0].statuses + results[1].statuses,
        cache=results[0].cache + results[1].cache,
        p50_ms=statistics.median([r.p50_ms for r in results]),
        p99_ms=max(r.p99_ms for r in results),
        loadgen_cpu_s=window.loadgen_s,
    )
    (n1, rss1), (n2, rss2) = sorted(rss_at.items())
    note = f"RSS after {n1}: {_rss_text(rss1)} MB; after {n2}: {_rss_text(rss2)} MB; 'miss' answers {merged.cache.get('miss', 0)}"
    b.rows.append(to_row(f"48 MP mix ({len(keys)} keys, sizes {sizes[0]}-{sizes[-1]})", merged, window, rss2, note))
    b.facts["rss"] = {"n1": n1, "n2": n2, "rss1": rss1, "rss2": rss2, "complete": n2 == second and n1 == first,
                      "workers_changed": len(rss1) != len(rss2)}
