"""Who holds a record (an import, a pyramid build): ``host:pid``, and whether that process is gone."""
from __future__ import annotations

import os
import socket


def owner() -> str:
    """This process, as records name their owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_gone(who: str) -> bool:
    """True when ``who`` is a process of this host that no longer exists (of another host: unknown, False)."""
    host, _, pid = who.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
