"""Running one build in a child process: low priority, dies with its parent, its peak memory measured."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

NICE = 10
"""Added to the child's nice value: serving threads keep the CPU when a build wants it too."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Outcome:
    status: int
    """The child's exit status; negative: killed by that signal."""
    result: dict
    """What it printed (the build's result, or ``reason``)."""
    peak_rss: int
    """The child's peak resident memory, in bytes."""


def _in_child(extra_nice: int) -> Callable[[], None]:
    def setup() -> None:
        os.nice(extra_nice)
        try:  # die with the parent: a killed server leaves no build running on its own
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    return setup


def run_build(args: list[str], *, tmpdir: str, pass_fds: tuple[int, ...] = (),
              keep_going: Callable[[], bool] | None = None, check_every: float = 20.0) -> Outcome:
    """``python -m image_repo.pyramids.build ARGS``; ``keep_going()`` is asked every ``check_every``
    seconds while it runs, and a False kills it (the lease was lost)."""
    env = {**os.environ, "TMPDIR": tmpdir, "VIPS_DISC_THRESHOLD": os.environ.get("VIPS_DISC_THRESHOLD", "100m")}
    child = subprocess.Popen([sys.executable, "-m", "image_repo.pyramids.build", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, pass_fds=pass_fds, preexec_fn=_in_child(NICE))
    output: dict[str, bytes] = {}

    def drain() -> None:
        out, err = child.communicate()
        output["out"], output["err"] = out, err

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    while True:
        reader.join(check_every)
        if not reader.is_alive():
            break
        if keep_going is not None and not keep_going():
            child.kill()
    reader.join()
    # communicate() reaps the child, so its peak memory comes from the child itself (build.main prints it).
    try:
        result = json.loads(output.get("out", b"").decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = output.get("err", b"").decode(errors="replace").strip().splitlines()
        result = {"reason": err[-1][:300] if err else f"build process ended with status {child.returncode}"}
    return Outcome(child.returncode, result, int(result.get("peak_rss", 0)))
