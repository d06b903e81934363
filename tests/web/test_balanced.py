"""Keep-alive connections spread over the workers (web/balanced.py), on a real Gunicorn server."""
from __future__ import annotations

import http.client
import os
from collections import Counter
from pathlib import Path

from tests.fixtures.server import running_server


def _workers(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as fh:
        return [int(p) for p in fh.read().split()]


def _holder(server_port: int, client_port: int, workers: list[int]) -> int | None:
    """The worker holding the server end of our connection (asked of the kernel, not of the app)."""
    inode = None
    local, remote = f":{server_port:04X}", f":{client_port:04X}"
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(local) and parts[2].endswith(remote):
                inode = parts[9]
    if inode is None:
        return None
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _open(port: int) -> tuple[http.client.HTTPConnection, int]:
    """A kept-alive connection that has had one answer (so a worker has accepted it), and our port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/healthz")
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 200 and not answer.will_close
    return conn, conn.sock.getsockname()[1]


def test_kept_alive_connections_spread_over_the_workers(tmp_path: Path) -> None:
    """Connections opened one after another, all kept open, alternate between the workers.

    Plain gthread lets whichever worker wakes first take each one (often the same worker
    every time). Until the second worker has started accepting, the first takes them all;
    after that they go to whichever holds fewer. One connection of the fixture's readiness
    probe may still be counted for a moment after it closed: hence a spread of at most 2.
    """
    with running_server({"data_dir": str(tmp_path / "data")}, tmp_path / "server", workers=2) as server:
        port = int(server.url.rsplit(":", 1)[1])
        held: list[http.client.HTTPConnection] = []
        by_worker: Counter[int] = Counter()
        try:
            workers: list[int] = []
            while len(by_worker) < 2:  # until both workers accept (each has booted)
                assert len(held) < 200, f"one worker took every connection: {dict(by_worker)}"
                workers = workers if len(workers) == 2 else _workers(server.process.pid)
                conn, client_port = _open(port)
                held.append(conn)
                owner = _holder(port, client_port, workers)
                assert owner is not None
                by_worker[owner] += 1
            target = 2 * max(by_worker.values()) + 12
            while len(held) < target:
                conn, client_port = _open(port)
                held.append(conn)
                owner = _holder(port, client_port, workers)
                assert owner in workers
                by_worker[owner] += 1
            counts = sorted(by_worker.values())
            assert counts[1] - counts[0] <= 2, f"connections per worker: {dict(by_worker)}"
        finally:
            for conn in held:
                conn.close()


def test_a_sibling_is_checked_by_a_signal_every_turn_and_in_proc_now_and_then(monkeypatch) -> None:
    """A worker asks whether a sibling holding fewer connections lives on every loop turn: a
    zombie (dead, not reaped by the master) is seen within ZOMBIE_CHECK_S, a reaped one at once."""
    import signal
    import subprocess
    import time
    from types import SimpleNamespace

    from image_repo.web import balanced

    clock = [1000.0]
    monkeypatch.setattr(balanced, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    reads: list[int] = []
    real = balanced._alive

    def alive(pid: int) -> bool:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(balanced, "_alive", alive)
    worker = balanced.BalancedThreadWorker.__new__(balanced.BalancedThreadWorker)
    worker._running = {}
    sibling = subprocess.Popen(["sleep", "60"])
    try:
        assert worker._sibling_alive(sibling.pid) and reads == [sibling.pid]
        for _ in range(100):
            assert worker._sibling_alive(sibling.pid)
        assert reads == [sibling.pid]  # /proc read once, not per turn
        sibling.send_signal(signal.SIGKILL)
        for _ in range(500):  # until the kernel has made it a zombie (the worker's clock stands still)
            with open(f"/proc/{sibling.pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        assert worker._sibling_alive(sibling.pid)  # a zombie passes kill(pid, 0): trusted a moment
        clock[0] += balanced.ZOMBIE_CHECK_S
        assert not worker._sibling_alive(sibling.pid) and len(reads) == 2
    finally:
        sibling.kill()
        sibling.wait()
    assert not worker._sibling_alive(sibling.pid) and len(reads) == 2  # reaped: the signal says so



def test_a_waiting_worker_polls_while_things_change_and_sleeps_on_the_listener_once_quiet() -> None:
    """The decisions of a worker that is not accepting, on a real listener, poller and table.

    It looks again after RECHECK_S while the counts change or a connection waits in the
    backlog (its sibling has not taken it yet), not watching the listener, which may stay
    readable. Once a look finds neither, it sleeps as long as the loop asks, woken by the
    listener (a new connection). Without the backlog check, a burst of connections that
    arrived before both workers stopped would wait for gthread's 1 s timeout.
    """
    import selectors
    import socket

    from image_repo.web import balanced

    asked: list[float] = []

    class Spy(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
        def select(self, timeout=None):  # records what the loop asked, and never sleeps
            asked.append(timeout)
            return super().select(0)

    words = balanced._WORDS
    saved = [words[i] for i in range(4)]
    words[0], words[2], words[3] = max(1, saved[0]), os.getpid() + 1, 0  # a sibling in slot 1, holding 0
    listener = socket.create_server(("127.0.0.1", 0))
    clients: list[socket.socket] = []
    worker = balanced.BalancedThreadWorker.__new__(balanced.BalancedThreadWorker)
    worker.sockets, worker.poller, worker.alive = [listener], Spy(), True
    worker._pid, worker._accepting, worker._watching, worker._seen = os.getpid(), False, False, b""
    worker._backlog = balanced.select.poll()
    worker._backlog.register(listener.fileno(), balanced.select.POLLIN)

    def look() -> tuple[float, bool]:
        """(the timeout the loop's turn asked for, whether the listener would wake the worker)."""
        worker.wait_for_and_dispatch_events(1.0)
        try:
            watched = worker.poller.get_key(listener).data == worker._arrived
        except KeyError:
            watched = False
        return asked[-1], watched

    try:
        assert look() == (balanced.RECHECK_S, False)  # the first look: the table is new to it
        assert look() == (1.0, True)  # nothing changed, nothing waits: asleep
        words[3] = 1  # the sibling took a connection
        assert look() == (balanced.RECHECK_S, False)
        assert look() == (1.0, True)
        clients.append(socket.create_connection(listener.getsockname()))  # arrives, and waits
        assert look() == (balanced.RECHECK_S, False)
        assert look() == (balanced.RECHECK_S, False)  # for as long as it waits
        listener.accept()[0].close()  # the sibling takes it
        assert look() == (1.0, True)
        worker.set_accept_enabled(True)  # its turn: gthread's own registration, to accept
        assert worker.poller.get_key(listener).data == worker.accept and not worker._watching
    finally:
        for i, value in enumerate(saved):
            words[i] = value
        for c in clients:
            c.close()
        listener.close()
        worker.poller.close()

def _switches(pid: int) -> int:
    """Times the main thread of ``pid`` went to sleep and was woken since it started."""
    with open(f"/proc/{pid}/task/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("voluntary_ctxt_switches"))


def test_a_worker_holding_more_sleeps_until_a_connection_arrives(tmp_path: Path) -> None:
    """The worker that stopped accepting is not woken by a timer once nothing changes: only
    a new connection wakes it, and that connection goes to the worker holding fewer.

    Polling every 5 ms woke it ~200 times a second for as long as an idle client kept one
    more connection on it than on its sibling; gthread's own loop wakes once a second.
    """
    import time

    with running_server({"data_dir": str(tmp_path / "data")}, tmp_path / "server", workers=2) as server:
        port = int(server.url.rsplit(":", 1)[1])
        workers = _workers(server.process.pid)
        held: list[http.client.HTTPConnection] = []
        by_worker: Counter[int] = Counter()
        try:
            time.sleep(0.5)  # the readiness probe's connection is gone from either count
            while len(by_worker) < 2 or len(held) % 2 == 0:  # an odd number, on both workers
                assert len(held) < 200, f"one worker took every connection: {dict(by_worker)}"
                conn, client_port = _open(port)
                held.append(conn)
                owner = _holder(port, client_port, workers)
                assert owner in workers
                by_worker[owner] += 1
            (more, most), (fewer, _) = by_worker.most_common()
            assert most - by_worker[fewer] == 1, f"connections per worker: {dict(by_worker)}"
            before = _switches(more)
            time.sleep(1.0)
            woken = _switches(more) - before
            assert woken <= 10, f"the worker holding more woke {woken} times in 1 s while nothing arrived"
            conn, client_port = _open(port)
            held.append(conn)
            assert _holder(port, client_port, workers) == fewer
        finally:
            for conn in held:
                conn.close()
