"""A gthread worker that accepts a connection only while it holds no more connections than its siblings.

Gunicorn's workers share one listening socket and race for each new connection. Under
keep-alive the race decides for good who serves what: a client (or a proxy with upstream
``keepalive N``) that opens a few connections at once often sees one worker take nearly
all of them while the others idle, and the server then runs on one core (bench: cache hits
at half the bare app's rate, one worker at 0 CPU). SO_REUSEPORT per worker spreads
connections by a hash instead, which still puts 6 of 8 on one worker in ~30% of draws.

Here each worker publishes how many connections it holds in a table the master maps
before forking (shared anonymous memory, a few bytes per worker). A worker stops taking
new connections while it holds more than the least loaded live sibling; the race then
only ever goes to the least loaded, and no two workers' counts drift apart by more than
one. For a new connection per request the least loaded is also the idlest, so the cold
path spreads too. A sibling that is booting, stopping or dead is not waited for.

A worker that stops accepting must look again when a sibling's count rises past its own,
which happens in the sibling, so it looks again every RECHECK_S. Once a look finds no
connection waiting to be accepted and no count changed since the look before, it sleeps
instead, watching the listeners: the next connection wakes it. So a busy server polls
(200 wake-ups a second at most, less than one per connection at a high rate of new
connections), and a quiet one sleeps: polling all the time cost 2% of a core per waiting
worker for as long as one idle client kept a connection open.
"""
from __future__ import annotations

import mmap
import os
import select
import selectors
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from ..host.owners import pid_alive as _alive

SLOTS = 256
"""Most workers one server can have at once (Gunicorn's TTIN can add workers past ``workers``)."""

RECHECK_S = 0.005
"""How soon a worker that is not accepting (a sibling holds fewer) looks at the counts again,
while they change or a connection waits to be accepted."""

ZOMBIE_CHECK_S = 0.1
"""How long a sibling /proc showed running is taken at ``kill(pid, 0)``'s word, which passes a
zombie: the loop asks every turn while a sibling holds fewer, and /proc costs ~15 us to read."""

_FREE, _RESERVED = 0, -1
"""A slot's pid when free, and while the master has given it to a worker not yet accepting."""

# Slot 0 holds how many slots were ever handed out; slot i >= 1 holds (pid, connections) of
# an accepting worker. MAP_SHARED anonymous memory, made in the master at import (the arbiter
# imports the worker class before forking) and so shared with every worker it forks.
_TABLE = mmap.mmap(-1, (SLOTS + 1) * 16, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
_WORDS = memoryview(_TABLE).cast("q")


def _take_slot() -> int:
    """A free slot (or one a dead worker left), taken in the master, which makes workers one at a time."""
    for slot in range(1, SLOTS + 1):
        pid = _WORDS[2 * slot]
        if pid == _FREE or (pid > 0 and not _alive(pid)):
            _WORDS[2 * slot], _WORDS[2 * slot + 1] = _RESERVED, 0
            _WORDS[0] = max(_WORDS[0], slot)
            return slot
    return 0  # more workers than slots: this one races for connections without a say


class BalancedThreadWorker(ThreadWorker):
    """gthread, with new connections going to the worker that holds the fewest (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slot = _take_slot()  # in the master, before the fork
        self._conns = 0
        self._pid = 0  # set when this worker publishes its count (0: it does not)
        self._cap = 0
        self._running: dict[int, float] = {}  # sibling pid -> when /proc last showed it running
        self._backlog: Any = None  # a poll of the listeners: is a connection waiting to be accepted?
        self._watching = False  # whether the loop's poller holds the listeners to wake us, not to accept
        self._seen = b""  # the table as this worker last looked at it, while not accepting
        super().__init__(*args, **kwargs)

    # gthread counts the connections it holds (busy, kept alive, awaiting a first byte) in
    # nr_conns: every change is published.
    @property
    def nr_conns(self) -> int:
        return self._conns

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        self._conns = value
        if self._pid:
            _WORDS[2 * self._slot + 1] = value

    # gthread's loop accepts while ``nr_conns < worker_connections`` (checked every turn):
    # while a sibling holds fewer, the bound it sees is what this worker already holds.
    @property
    def worker_connections(self) -> int:
        if self._pid and not self._fewest():
            return self._conns
        return self._cap

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._cap = value

    def _fewest(self) -> bool:
        """Whether no live accepting sibling holds fewer connections than this worker."""
        mine, words = self._conns, _WORDS
        for slot in range(1, words[0] + 1):
            pid = words[2 * slot]
            if pid > 0 and words[2 * slot + 1] < mine and pid != self._pid:
                if self._sibling_alive(pid):
                    return False
                words[2 * slot] = _FREE  # died, and its master has not made a replacement yet
        return True

    def _sibling_alive(self, pid: int) -> bool:
        """Whether sibling ``pid`` still runs: a reaped one is seen at once, a zombie within ZOMBIE_CHECK_S."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # exited and reaped
            return False
        except PermissionError:
            return True
        now = time.monotonic()
        if now - self._running.get(pid, float("-inf")) < ZOMBIE_CHECK_S:
            return True
        if not _alive(pid):
            self._running.pop(pid, None)
            return False
        if len(self._running) >= SLOTS:
            self._running.clear()
        self._running[pid] = now
        return True

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled:
            self._watch(False)  # gthread registers the listeners again, to accept
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # A worker that stopped for a sibling holding fewer would sleep until its own
        # connections stir, up to 1 s. If that sibling meanwhile takes enough to hold more,
        # it stops too and nobody accepts (seen behind nginx, whose upstream connections come
        # and go, and when a client opens many at once).
        if self._pid and not self._accepting and self.alive:
            table = _TABLE[16:16 * (_WORDS[0] + 1)]
            quiet = table == self._seen and not self._backlog.poll(0)
            self._seen = table
            # Not while one waits: a listener that stays readable would wake us at once, every turn.
            self._watch(quiet)
            if not quiet:
                timeout = min(timeout, RECHECK_S)
        else:
            self._watch(False)  # accepting, or on the way out (its drain must not wake for arrivals)
        super().wait_for_and_dispatch_events(timeout)

    def _watch(self, on: bool) -> None:
        """Have the loop's poller wake this (non-accepting) worker when a connection arrives, or not."""
        if on == self._watching:
            return
        for listener in self.sockets:
            if on:
                self.poller.register(listener, selectors.EVENT_READ, self._arrived)
            else:
                self.poller.unregister(listener)
        self._watching = on

    def _arrived(self, listener: Any) -> None:
        """A connection waits: the loop's next turn decides whether this worker takes it."""

    def run(self) -> None:
        # Published only once the app is loaded and the loop is about to accept: a booting
        # worker holding 0 connections must not make the others wait for it.
        if self._slot:
            self._pid = os.getpid()
            _WORDS[2 * self._slot + 1] = self._conns
            _WORDS[2 * self._slot] = self._pid
            self._backlog = select.poll()
            for listener in self.sockets:
                self._backlog.register(listener.fileno(), select.POLLIN)
        super().run()

    def notify(self) -> None:
        # Called by the loop every turn, and while draining: a worker on its way out
        # (max_requests, SIGTERM) accepts no more and must not hold its siblings back.
        if not self.alive:
            self._leave()
        super().notify()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._leave()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig: int, frame: Any) -> None:
        self._leave()
        super().handle_quit(sig, frame)

    def _leave(self) -> None:
        if self._pid:
            self._pid = 0
            _WORDS[2 * self._slot] = _FREE
