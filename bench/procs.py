"""What the kernel says about processes: CPU time, RSS, process trees, machine load (Linux /proc)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parens)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return (int(f[11]) + int(f[12])) / CLK_TCK


def reaped_cpu_seconds(pid: int) -> float:
    """cutime + cstime: the CPU of children this process has waited for (a recycled worker's, say)."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    return (int(f[13]) + int(f[14])) / CLK_TCK


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, for every process we can see."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        f = _stat_fields(int(entry))
        if f is not None:
            out.setdefault(int(f[1]), []).append(int(entry))
    return out


def tree(root: int) -> list[int]:
    """``root`` and all its descendants still alive."""
    kids = children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def workers(root: int) -> list[int]:
    """The worker processes of a pre-fork server: the leaves of its tree.

    This holds whether ``root`` is the Gunicorn master itself or a launcher above it
    (and for thumbor's parent + forked children); a lone process is its own worker.
    """
    kids = children_map()
    pids = tree(root)
    return sorted(p for p in pids if not kids.get(p))


def tree_cpu(root: int) -> float:
    """utime + stime of a process tree, in seconds (processes alive now)."""
    return sum(cpu_seconds(p) for p in tree(root))


def wait_idle(root: int, max_wait: float = 1.0, step: float = 0.1) -> None:
    """Wait (bounded) until the tree of ``root`` uses at most one clock tick of CPU in ``step`` s.

    A server finishes some work after its last answer (cache writes behind the answers):
    a measured window that ends at the last answer would leave that work out.
    """
    deadline = time.monotonic() + max_wait
    before = tree_cpu(root)
    while time.monotonic() < deadline:
        time.sleep(step)
        now = tree_cpu(root)
        if now - before <= 1.0 / CLK_TCK:
            return
        before = now


def rss_mb(pid: int) -> float:
    """VmRSS of one process in MiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user/nice: only the first 8 fields add up.
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class CpuWindow:
    """CPU used during one measured run: by the server tree, by the load generator, by everyone else."""

    server_s: float
    loadgen_s: float
    machine_s: float
    wall_s: float
    restarts: int = 0
    worker_s: list[float] = field(default_factory=list)
    """CPU of each worker alive for the whole run (recycled ones left out)."""

    @property
    def balance(self) -> float | None:
        """Least / most busy worker's CPU: ~1 when the load was spread, ~0 when one worker had it all.

        With keep-alive, a load generator that opens its connections at once can see them all
        accepted by one worker while the others idle: a property of the benchmark more than
        of the server (many clients connecting over time spread out), so such runs are flagged.
        """
        if len(self.worker_s) < 2 or max(self.worker_s) <= 0:
            return None
        return min(self.worker_s) / max(self.worker_s)

    @property
    def other_cores(self) -> float:
        """Cores busy with processes that are neither server nor load generator (a noisy-neighbour gauge)."""
        if self.wall_s <= 0:
            return 0.0
        return max(0.0, (self.machine_s - self.server_s - self.loadgen_s) / self.wall_s)

    @property
    def server_cores(self) -> float:
        return self.server_s / self.wall_s if self.wall_s > 0 else 0.0


def merge_windows(windows: list[CpuWindow]) -> CpuWindow:
    """Several runs' windows as one (sums)."""
    return CpuWindow(
        sum(w.server_s for w in windows),
        sum(w.loadgen_s for w in windows),
        sum(w.machine_s for w in windows),
        sum(w.wall_s for w in windows),
        sum(w.restarts for w in windows),
    )


class CpuMeter:
    """Snapshot the server tree and the machine before a run; ``stop`` gives the window.

    The load generator's CPU is passed in at stop because only the caller knows it
    (our own process time for the Python generator, wait4 rusage for wrk).
    """

    def __init__(self, server_root: int) -> None:
        self.root = server_root
        self.pids = tree(server_root)
        self.start_workers = set(workers(server_root))
        self.start_cpu = {p: cpu_seconds(p) for p in self.pids}
        self.start_reaped = {p: reaped_cpu_seconds(p) for p in self.pids}
        self.start_machine = machine_busy_seconds()
        self.start_wall = time.monotonic()

    def stop(self, loadgen_s: float) -> CpuWindow:
        wall = time.monotonic() - self.start_wall
        machine = machine_busy_seconds() - self.start_machine
        now = tree(self.root)
        # Workers recycled during the run (Gunicorn max_requests) are gone from the tree, but
        # their whole lifetime's CPU lands in the master's cutime when it reaps them: count
        # that, less what they had used before the run. New processes count from zero.
        server = sum(cpu_seconds(p) - self.start_cpu.get(p, 0.0) for p in now)
        server += sum(reaped_cpu_seconds(p) - self.start_reaped.get(p, 0.0) for p in now)
        server -= sum(cpu for p, cpu in self.start_cpu.items() if p not in now)
        ended_workers = set(workers(self.root))
        restarts = len(self.start_workers - ended_workers)
        per_worker = [cpu_seconds(p) - self.start_cpu[p] for p in sorted(self.start_workers & ended_workers)]
        return CpuWindow(server, loadgen_s, machine, wall, restarts, per_worker)


def load1() -> float:
    """The 1-minute load average (reported with every figure: the machine is shared)."""
    return os.getloadavg()[0]


def busy_cores(window: float = 1.0) -> float:
    """Cores busy (with anything) over the next ``window`` seconds."""
    before = machine_busy_seconds()
    time.sleep(window)
    return (machine_busy_seconds() - before) / window


_waits_timed_out = [0]


def wait_quiet(max_wait: float = 10.0, threshold: float = 0.15, window: float = 1.0) -> float:
    """Wait (bounded) until the machine is quiet: < ``threshold`` busy cores over ``window`` s.

    Returns the busy cores of the last window, so a report can say it never got quiet.
    Measurements taken while someone else burns CPU are worth little on 2 cores. On a
    machine that stays busy, later waits are cut short so the run still ends in time.
    """
    if _waits_timed_out[0] >= 2:
        max_wait = min(max_wait, 2.0)
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_cores(window)
        if busy < threshold:
            return busy
        if time.monotonic() >= deadline:
            _waits_timed_out[0] += 1
            return busy
