"""Servers on the real Swift with the fault proxy between them, and what the faults tests check after."""
from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from swiftclient.client import ClientException

from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.server import Server
from tests.fixtures.swift import SwiftServer, delete_container


def swift_via(proxy: FaultProxy, server: SwiftServer, originals: str, cache: str, data_dir: Path,
              **extra: Any) -> dict[str, Any]:
    """A server config whose Swift traffic all goes through ``proxy``: auth too, so tempauth's
    storage URL (made from the Host header) names the proxy."""
    config: dict[str, Any] = {
        "data_dir": str(data_dir),
        "store": f"swift://{originals}",
        "cache_store": f"swift://{cache}",
        "url_key": "k",
        "swift": {"auth_url": f"http://{proxy.address}/auth/v1.0", "user": server.user, "key": server.key,
                  "auth_version": "1", "retries": 0, "timeout": 2.0},
        "log_level": "warning",
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def u() -> str:
    """A prefix of this test's own for the names it writes: a module's server outlives its tests
    (and a test run again, as by --count, must find none of its names taken)."""
    return "t" + uuid.uuid4().hex[:8]


def new_containers(swift: SwiftServer) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    conn = swift.connection()
    names = (f"orig-{suffix}", f"cache-{suffix}")
    for name in names:
        conn.put_container(name)
    conn.close()
    return names


@pytest.fixture(scope="module")
def containers(swift_server: SwiftServer) -> Iterator[tuple[str, str]]:
    """An originals and a cache container of this module's own on the session's Swift."""
    names = new_containers(swift_server)
    yield names
    conn = swift_server.connection()
    for name in names:
        delete_container(conn, name)


def swift_objects(swift: SwiftServer, container: str, prefix: str = "") -> dict[str, dict[str, str]]:
    """What Swift itself lists in ``container`` (name -> listing row), asked directly, not through the proxy."""
    conn = swift.connection()
    try:
        _, rows = conn.get_container(container, prefix=prefix, full_listing=True)
    except ClientException as e:
        if e.http_status == 404:
            return {}
        raise
    finally:
        conn.close()
    return {row["name"]: row for row in rows}


def swift_bytes(swift: SwiftServer, container: str, name: str) -> bytes | None:
    """The bytes Swift holds under ``name`` (asked directly), or None."""
    conn = swift.connection()
    try:
        return conn.get_object(container, name)[1]
    except ClientException as e:
        if e.http_status == 404:
            return None
        raise
    finally:
        conn.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_503_retry_after(r: requests.Response) -> None:
    """The answer to a store fault: 503 with Retry-After and a JSON message, never a traceback."""
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["message"] and "Traceback" not in r.text


def worker_pids(server: Server) -> set[int]:
    """The Gunicorn master's children now."""
    pids: set[int] = set()
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        pids |= {int(p) for p in (task / "children").read_text().split()}
    return pids


def no_tracebacks(server: Server) -> None:
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "internal error" not in log, server.log_tail()


def noisy_jpeg(w: int, h: int, seed: int = 0) -> bytes:
    """The reference scene under heavy noise: hundreds of KB for a few hundred pixels (a body long
    enough to cut in the middle), and still the scene (``assert_scene``) when scaled down."""
    import numpy as np
    from PIL import Image

    from tests.fixtures.images import scene

    base = np.asarray(scene(w, h), dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-60, 61, (h, w, 3), dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()
