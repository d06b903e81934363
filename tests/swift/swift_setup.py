"""Helpers for start-swift.sh, run by the Swift venv's python: build rings, wait for readiness.

    swift_setup.py rings ETC_DIR ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT
    swift_setup.py wait STATE_DIR PROXY_URL USER KEY TIMEOUT PORT...
    swift_setup.py seed-listing STATE_DIR ACCOUNT CONTAINER < names   (one object name a line)
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

# Part power 8 and one replica: the smallest ring that still places every partition.
PART_POWER, REPLICAS, MIN_PART_HOURS = 8, 1, 1


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def build_rings(etc: str, ports: dict[str, int]) -> None:
    """Write <kind>.ring.gz (and .builder) for one device; a ring is rebuilt only if its port changed."""
    from swift.common.ring import RingBuilder  # imported here: only this command needs Swift

    for kind, port in ports.items():
        stamp = os.path.join(etc, f"{kind}.ring.port")
        ring = os.path.join(etc, f"{kind}.ring.gz")
        if os.path.exists(ring) and os.path.exists(stamp) and _read(stamp) == str(port):
            continue
        builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
        builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                         "device": "d1", "weight": 1.0, "meta": ""})
        builder.rebalance()
        builder.save(os.path.join(etc, f"{kind}.builder"))
        builder.get_ring().save(ring)
        with open(stamp, "w") as f:
            f.write(f"{port}\n")


def _dead(state: str) -> list[str]:
    """Names of the services whose pid file points at a dead process (empty: all alive)."""
    dead = []
    run = os.path.join(state, "run")
    for name in sorted(os.listdir(run)):
        if name.endswith(".pid"):
            pid = _read(os.path.join(run, name))
            try:
                with open(f"/proc/{pid}/stat") as f:
                    zombie = f.read().split(") ", 1)[1].startswith("Z")
            except OSError:
                zombie = True
            if zombie:
                dead.append(name[:-4])
    return dead


def _get(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str], method: str = "GET"):
    req = urllib.request.Request(url, headers=headers, method=method)
    return opener.open(req, timeout=2)


def wait_ready(state: str, proxy: str, user: str, key: str, timeout: float, ports: list[int]) -> int:
    """0 when every backend, auth and an account HEAD answer; 1 if a server died; 2 on timeout."""
    # Ignore HTTP(S)_PROXY: a CI proxy must never see loopback requests (gotcha 13).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    pending = [f"http://127.0.0.1:{p}/healthcheck" for p in ports]
    last_error = "not tried"
    while time.monotonic() < deadline:
        dead = _dead(state)
        if dead:
            print(f"swift_setup: server died: {', '.join(dead)}", file=sys.stderr)
            return 1
        try:
            while pending:
                _get(opener, pending[0], {}).read()
                pending.pop(0)
            auth = _get(opener, proxy + "/auth/v1.0", {"X-Auth-User": user, "X-Auth-Key": key})
            storage_url, token = auth.headers["X-Storage-Url"], auth.headers["X-Auth-Token"]
            _get(opener, storage_url, {"X-Auth-Token": token}, method="HEAD").read()
            print(json.dumps({"storage_url": storage_url}))
            return 0
        except (OSError, urllib.error.URLError, KeyError) as e:
            last_error = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
    print(f"swift_setup: not ready after {timeout}s ({last_error})", file=sys.stderr)
    return 2


def seed_listing(state: str, account: str, container: str, names: list[str]) -> None:
    """Add listing rows (1-byte objects, no data) to an existing container's DB, in one transaction.

    For tests of listing >10,000 objects: 10,000 real PUTs take minutes on 2 cores, this a second.
    It writes what the object server's container update would, through Swift's own broker.
    """
    from hashlib import md5

    from swift.common.ring import Ring
    from swift.common.utils import Timestamp, hash_path, set_swift_dir, storage_directory
    from swift.container.backend import ContainerBroker

    etc = os.path.join(state, "etc")
    set_swift_dir(etc)
    part, nodes = Ring(etc, ring_name="container").get_nodes(account, container)
    digest = hash_path(account, container)
    db = os.path.join(state, "srv", "node", nodes[0]["device"], storage_directory("containers", part, digest),
                      digest + ".db")
    if not os.path.exists(db):
        raise SystemExit(f"swift_setup: no container DB for {account}/{container} (create the container first)")
    now = Timestamp.now().internal
    etag = md5(b"x").hexdigest()
    ContainerBroker(db, account=account, container=container).merge_items([
        {"name": n, "created_at": now, "size": 1, "content_type": "application/octet-stream", "etag": etag,
         "deleted": 0, "storage_policy_index": 0, "ctype_timestamp": now, "meta_timestamp": now}
        for n in names])


def main(argv: list[str]) -> int:
    if argv[:1] == ["rings"] and len(argv) == 5:
        etc, a, c, o = argv[1:]
        build_rings(etc, {"account": int(a), "container": int(c), "object": int(o)})
        return 0
    if argv[:1] == ["wait"] and len(argv) >= 6:
        state, proxy, user, key, timeout, *ports = argv[1:]
        return wait_ready(state, proxy, user, key, float(timeout), [int(p) for p in ports])
    if argv[:1] == ["seed-listing"] and len(argv) == 4:
        state, account, container = argv[1:]
        seed_listing(state, account, container, [n for n in sys.stdin.read().split("\n") if n])
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
