"""Load generators: a Python one for URL lists (every request different), wrk for one hot URL.

The Python generator runs ``concurrency`` threads over a list of paths, each path once, and
stops at the end of the list or at the time limit, whichever comes first. By default it
opens a new connection per request (``Connection: close``): that is what spreads requests
evenly over pre-fork workers (with keep-alive, one worker can own every connection and
leave a core idle: perf.md section 4), and its cost (~0.1 ms) is noise next to a 25 ms
derivation. wrk keeps its connections alive and is the one to use for cache hits, where
a Python client would be the bottleneck.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CACHE_HEADER = "X-Image-Repo-Cache"


@dataclass
class LoadResult:
    """What one load run did. Latencies in ms."""

    tool: str
    requests: int
    elapsed_s: float
    errors: int
    statuses: Counter[int] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    loadgen_cpu_s: float = 0.0
    note: str = ""
    latencies: list[float] = field(default_factory=list, repr=False)  # sorted, ms (Python generator only)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(
    port: int, path: str, headers: Mapping[str, str] | None = None, *, timeout: float = 60.0, host: str = "127.0.0.1",
    method: str = "GET", body: bytes | None = None,
) -> Answer:
    """One request (a GET unless told) on a new connection."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def run_paths(
    port: int,
    paths: Sequence[str],
    *,
    concurrency: int,
    duration: float,
    headers: Mapping[str, str] | None = None,
    keepalive: bool = False,
    timeout: float = 60.0,
) -> LoadResult:
    """GET each of ``paths`` once, ``concurrency`` at a time, for at most ``duration`` seconds."""
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    cache: Counter[str] = Counter()
    errors = [0]
    last_done = [0.0]
    start = time.perf_counter()
    deadline = start + duration
    base_headers = dict(headers or {})
    if not keepalive:
        base_headers["Connection"] = "close"

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with lock:
                i = next_index[0]
                if i >= len(paths) or time.perf_counter() >= deadline:
                    break
                next_index[0] += 1
            t0 = time.perf_counter()
            status, hit = 0, ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request("GET", paths[i], headers=base_headers)
                resp = conn.getresponse()
                resp.read()
                status, hit = resp.status, resp.getheader(CACHE_HEADER, "") or ""
                if not keepalive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            t1 = time.perf_counter()
            with lock:
                latencies.append((t1 - t0) * 1000)
                statuses[status] += 1
                if hit:
                    cache[hit] += 1
                if not (200 <= status < 400):
                    errors[0] += 1
                last_done[0] = max(last_done[0], t1)
        if conn is not None:
            conn.close()

    cpu0 = time.process_time()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu0
    latencies.sort()
    elapsed = (last_done[0] or time.perf_counter()) - start
    return LoadResult(
        tool=f"python c={concurrency}" + (" keep-alive" if keepalive else " conn-close"),
        requests=len(latencies),
        elapsed_s=elapsed,
        errors=errors[0],
        statuses=statuses,
        cache=cache,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        loadgen_cpu_s=cpu,
        latencies=latencies,
    )


def merge(results: Sequence[LoadResult]) -> LoadResult:
    """Several runs as one: counts and times added, percentiles over all latencies."""
    latencies = sorted(v for r in results for v in r.latencies)
    statuses: Counter[int] = Counter()
    cache: Counter[str] = Counter()
    for r in results:
        statuses += r.statuses
        cache += r.cache
    return LoadResult(
        tool=results[0].tool,
        requests=sum(r.requests for r in results),
        elapsed_s=sum(r.elapsed_s for r in results),
        errors=sum(r.errors for r in results),
        statuses=statuses,
        cache=cache,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        loadgen_cpu_s=sum(r.loadgen_cpu_s for r in results),
        note="; ".join(dict.fromkeys(r.note for r in results if r.note)),
        latencies=latencies,
    )


def run_burst(port: int, path: str, n: int, timeout: float = 120.0) -> list[Answer | None]:
    """``n`` GETs of one path released at the same instant, each on its own connection."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) for _ in range(n)]
    for c in conns:
        c.connect()  # connect first, so the barrier releases requests, not handshakes
    barrier = threading.Barrier(n)
    answers: list[Answer | None] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            conns[i].request("GET", path, headers={"Connection": "close"})
            resp = conns[i].getresponse()
            answers[i] = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        except (OSError, http.client.HTTPException):
            answers[i] = None
        finally:
            conns[i].close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


# -- wrk ----------------------------------------------------------------------------------


def ensure_wrk(log: Callable[[str], None] = print) -> str | None:
    """Path of wrk, installing Debian's package when we are root and apt-get exists; None if not to be had."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("  wrk not found and cannot apt-get install it (not root or no apt): Python generator instead")
        return None
    log("  installing wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=240, check=False)
        except subprocess.TimeoutExpired:
            break
        if shutil.which("wrk"):
            break
    found = shutil.which("wrk")
    if not found:
        log("  could not install wrk: Python generator instead")
    return found


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> LoadResult:
    """The figures of ``wrk --latency`` output."""
    req = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
    if req is None:
        raise RuntimeError("unexpected wrk output:\n" + out)
    requests = int(req.group(1))
    elapsed = _ms(req.group(2) + req.group(3)) / 1000
    dist = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", out, re.MULTILINE))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    note = ""
    if sock:
        errors += int(sock.group(1)) + int(sock.group(3)) + int(sock.group(4))
        # read errors are sync workers closing after each answer, not failures of a request.
        if int(sock.group(2)):
            note = f"{sock.group(2)} socket read errors"
    return LoadResult(
        tool="wrk",
        requests=requests,
        elapsed_s=elapsed,
        errors=errors,
        p50_ms=_ms(dist.get("50", "")),
        p99_ms=_ms(dist.get("99", "")),
        note=note,
    )


def run_wrk(
    wrk: str, url: str, *, connections: int, duration: float, headers: Mapping[str, str] | None = None
) -> LoadResult:
    """``wrk -t1 -cC -dD --latency`` (one thread: it shares the cores with the server)."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}:\n{text}")
    result = parse_wrk(text)
    result.tool = f"wrk c={connections}"
    result.loadgen_cpu_s = usage.ru_utime + usage.ru_stime
    return result


class _Repeat(Sequence[str]):
    """The same path, as many times as a time-bounded run can ask for."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, i: Any) -> Any:
        return self.path


def python_fallback_hot(
    port: int, path: str, *, connections: int, duration: float, headers: Mapping[str, str] | None = None
) -> LoadResult:
    """One hot path with the Python generator, keep-alive (when wrk is not to be had)."""
    result = run_paths(port, _Repeat(path), concurrency=connections, duration=duration, headers=headers, keepalive=True)
    result.note = "Python generator (no wrk): client-bound, a lower bound"
    return result

