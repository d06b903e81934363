"""Named points where a test can stop a worker mid-request; off, and free, unless a test turns them on.

A test that must SIGKILL a worker *while* it derives, writes its disk cache or streams a zip
cannot hit that moment with a timer. With ``IMAGE_REPO_TEST_POINTS=<dir>`` in the server's
environment (read in config/settings.py), ``reach("derive")`` looks for ``<dir>/derive.arm``;
if it is there, the worker takes it (renamed ``derive.taken-<pid>``: one request stops per
arming), writes its pid to ``<dir>/derive.reached`` and waits until ``<dir>/derive.go-<pid>``
appears, or until it is killed, which is the point. Without the variable ``reach`` is a
function that returns at once.

Points: ``derive`` (the source read, original or intermediate, about to decode: the host's
derivation lock and a limiter slot held),
``disk-cache-write`` (a disk cache entry half written to its temp file), ``disk-cache-admit``
(the disk cache's lock held, the entry about to be renamed in), ``zip-stream`` (a zip answer
partly sent, its next member about to be made).
"""
from __future__ import annotations

import os
import time

from .config.loading import test_points_dir

GUARD = 600.0
"""Seconds a stopped worker waits before it goes on by itself (a test that forgot it)."""

_DIR = test_points_dir()


def _off(point: str) -> None:
    """Test points are off: nothing to do."""


def _reach(point: str) -> None:
    """Stop here if a test armed ``point``, until it says go (or kills this process)."""
    base, pid = os.path.join(_DIR or "", point), os.getpid()
    taken, go = f"{base}.taken-{pid}", f"{base}.go-{pid}"
    try:
        os.rename(base + ".arm", taken)  # atomic: one request per arming
    except OSError:
        return
    with open(f"{base}.reached-{pid}", "w") as f:
        f.write(str(pid))
    os.replace(f"{base}.reached-{pid}", base + ".reached")
    end = time.monotonic() + GUARD
    while not os.path.exists(go) and time.monotonic() < end:
        time.sleep(0.01)
    for name in (taken, go):
        try:
            os.unlink(name)
        except OSError:
            pass


reach = _reach if _DIR else _off
