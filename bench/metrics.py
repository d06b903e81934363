"""image_repo's /metrics, per worker: each Gunicorn worker answers with its own counters.

To add them up we must know which worker answered. If the JSON carries ``pid`` we use it;
otherwise we keep the connection open after the answer and ask the kernel which worker
process holds the server end of it (/proc/net/tcp inode -> /proc/<pid>/fd). That works
while the worker keeps the connection alive (gthread); with sync workers it cannot.
"""
from __future__ import annotations

import http.client
import json
import os
from typing import Any


def _hex_addr(port: int) -> str:
    return f"0100007F:{port:04X}"  # 127.0.0.1 as /proc/net/tcp prints it (little-endian)


def socket_owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The pid among ``pids`` holding the server end of the loopback connection from ``client_port``."""
    local, remote = _hex_addr(server_port), _hex_addr(client_port)
    inode = None
    try:
        with open("/proc/net/tcp") as fh:
            next(fh)
            for line in fh:
                f = line.split()
                if f[1] == local and f[2] == remote and f[9] != "0":
                    inode = f[9]
                    break
    except OSError:
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def ask(port: int, workers: list[int]) -> tuple[int | None, dict[str, Any]]:
    """One GET /metrics: (the worker that answered, or None if unknowable; the JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Accept": "application/json"})  # HTTP/1.1 keep-alive: the worker keeps the socket a while
        resp = conn.getresponse()
        body = json.loads(resp.read())
        pid = body.get("pid") if isinstance(body, dict) else None
        if not isinstance(pid, int) and conn.sock is not None:
            pid = socket_owner(port, conn.sock.getsockname()[1], workers)
        return (pid if isinstance(pid, int) else None), body
    finally:
        conn.close()


def per_worker(port: int, workers: list[int], tries: int = 200) -> tuple[dict[int, dict[str, Any]], str]:
    """/metrics of every worker (asked until each has answered, at most ``tries`` times) and how pids were known."""
    seen: dict[int, dict[str, Any]] = {}
    how = "pid field"
    for _ in range(tries):
        pid, body = ask(port, workers)
        if "pid" not in body:
            how = "socket owner (/proc), /metrics has no pid field"
        if pid is None:
            return seen, "unknown: /metrics has no pid field and the worker closed the connection"
        seen[pid] = body
        if all(w in seen for w in workers):
            break
    return seen, how


def derivations(body: dict[str, Any]) -> int:
    counters = body.get("counters", {}) if isinstance(body, dict) else {}
    return int(counters.get("derivations", 0))
