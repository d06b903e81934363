"""The directory where every Gunicorn worker keeps its figures (prometheus_client's multiprocess mode).

prometheus_client decides once, when it is first imported, whether metrics live in memory
(one process) or in mmapped files under ``PROMETHEUS_MULTIPROC_DIR`` (many processes, summed
by whoever answers ``/metrics``). So the master sets the variable before any worker exists
and before anything imports prometheus_client; workers inherit it with the fork.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "image_repo-metrics-"
OWNER = "master.pid"
"""In a directory ``prepare`` made: the pid of the master that made it."""


def prepare(directory: str = "") -> tuple[str, bool]:
    """Point prometheus_client at ``directory`` emptied of old figures (a new private one if empty).

    Returns (the directory, whether we made it and so remove it at exit). Only ``*.db`` files
    are removed from a configured directory: it may hold other things.
    """
    made = not directory
    if made:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _reap(shm or tempfile.gettempdir())
        directory = tempfile.mkdtemp(prefix=PREFIX, dir=shm)  # tmpfs: the files are mmapped on every count
        with open(os.path.join(directory, OWNER), "w") as fh:
            fh.write(str(os.getpid()))
    else:
        directory = os.path.abspath(directory)
        os.makedirs(directory, exist_ok=True)
        for old in glob.glob(os.path.join(directory, "*.db")):
            # The figures of a previous run: its worker pids may be reused by this run's.
            os.unlink(old)
    os.environ[ENV] = directory
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not getattr(getattr(values, "ValueClass", None), "_multiprocess", False):
        # Imported before the variable was set (by some import of this process): switch it now,
        # before the fork, or every worker would count in its own memory and /metrics would sum nothing.
        setattr(values, "ValueClass", getattr(values, "MultiProcessValue")())  # noqa: B009, B010 - a module mypy sees as untyped
    return directory, made


def _reap(parent: str) -> None:
    """Remove the directories of masters that are gone without cleaning up (killed with SIGKILL)."""
    for path in glob.glob(os.path.join(parent, PREFIX + "*")):
        try:
            with open(os.path.join(path, OWNER)) as fh:
                os.kill(int(fh.read().strip()), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):
            pass  # not ours to judge: being made, another user's, or no owner recorded


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay: totals never go back)."""
    from prometheus_client import multiprocess

    if os.environ.get(ENV):
        multiprocess.mark_process_dead(pid)


def remove(directory: str) -> None:
    """Remove a directory ``prepare`` made."""
    shutil.rmtree(directory, ignore_errors=True)
