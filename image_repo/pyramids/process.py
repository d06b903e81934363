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


def die_with_parent(parent: int) -> None:
    """In the build process: be killed when ``parent`` goes (a killed server leaves no build running)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it went before we asked
        os._exit(1)


def run_build(args: list[str], *, tmpdir: str, pass_fds: tuple[int, ...] = (),
              keep_going: Callable[[], bool] | None = None, check_every: float = 20.0) -> Outcome:
    """``python -m image_repo.pyramids.build ARGS``; ``keep_going()`` is asked every ``check_every``
    seconds while it runs, and a False kills it (the lease was lost)."""
    env = {**os.environ, "TMPDIR": tmpdir}  # libvips's temporary files (reduced levels past its threshold) go here
    env.setdefault("VIPS_DISC_THRESHOLD", "100m")
    child = subprocess.Popen([sys.executable, "-m", "image_repo.pyramids.build", *args, "--parent", str(os.getpid())],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=pass_fds)
    try:  # from here, not in the child before exec: a forked copy of a threaded server must run no Python
        os.setpriority(os.PRIO_PROCESS, child.pid, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
    except OSError:
        pass
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
