"""What only a real Gunicorn server shows: bodies cut short, broken chunking, 413 before reading, huge headers.

Raw sockets, because an HTTP client library will not send a body that lies about its length.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.fixtures.images import make_png
from tests.fixtures.server import Server, running_server
from tests.fixtures.waiting import HANG

PNG = make_png(300, 200)
MAX_UPLOAD = 1_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("hostile-server")
    config = {"data_dir": str(root / "data"), "url_key": "k", "max_upload_bytes": MAX_UPLOAD}
    with running_server(config, root / "server") as srv:
        yield srv


def connect(server: Server, timeout: float = 10) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def status_of(sock: socket.socket) -> int:
    """The status code of the first response on ``sock``."""
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1])


def originals(server: Server) -> list[str]:
    """Every file under the originals directory: nothing may be left by a failed upload."""
    root = Path(server.log).parent.parent / "data" / "originals"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def listing(server: Server) -> list[str]:
    return requests.get(server.url + "/images", timeout=10).json()  # type: ignore[no-any-return]


def no_5xx_in_log(server: Server) -> None:
    log = server.log.read_text(errors="replace")
    assert '" 5' not in log and "Traceback" not in log, server.log_tail()


def multipart(name: str, data: bytes) -> tuple[bytes, bytes]:
    body = (
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name.encode() + b"\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--B--\r\n"
    )
    return b"multipart/form-data; boundary=B", body


def test_put_cut_short_by_a_disconnect_stores_nothing(server):
    # The part sent is a whole PNG: only the Content-Length shows the body was cut short.
    sent = PNG
    with connect(server) as s:
        s.sendall(b"PUT /images/cut HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (len(sent) + 5000) + sent)
        s.shutdown(socket.SHUT_WR)
        assert status_of(s) == 400
    assert "cut" not in listing(server) and originals(server) == []


def test_post_cut_short_inside_the_envelope_stores_nothing(server):
    content_type, body = multipart("cut.png", PNG)
    for keep in (len(body) - 4, len(body) - 12, len(body) // 2):
        with connect(server) as s:
            s.sendall(
                b"POST /images/postcut HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type
                + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:keep]
            )
            # The client stops sending mid-body. Its answer says the server has handled the
            # request before anything is looked at (a sleep here only hoped so).
            s.shutdown(socket.SHUT_WR)
            assert status_of(s) == 400
    assert "postcut" not in listing(server) and originals(server) == []


@pytest.mark.parametrize(
    "chunks",
    [
        b"%x\r\n" % len(PNG) + PNG[:1000],  # cut inside a chunk
        b"%x\r\n" % len(PNG) + PNG + b"\r\n",  # no last chunk
        b"%x\r\n" % len(PNG) + PNG + b"XX0\r\n\r\n",  # bad terminator
        b"zz\r\n" + PNG,  # bad chunk size
    ],
)
def test_broken_chunked_upload_is_400_and_stores_nothing(server, chunks):
    with connect(server) as s:
        s.sendall(b"PUT /images/chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        s.shutdown(socket.SHUT_WR)
        assert status_of(s) == 400
    assert "chunky" not in listing(server) and originals(server) == []
    no_5xx_in_log(server)


@pytest.mark.parametrize("method, path", [("PUT", "/images/huge"), ("POST", "/images/huge")])
def test_declared_huge_body_is_413_before_it_is_sent(server, method, path):
    """The answer comes while the client has sent only its headers: nothing is read or buffered."""
    with connect(server, timeout=5) as s:
        s.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            f"Content-Length: {50 * MAX_UPLOAD}\r\n\r\n".encode()
        )
        assert status_of(s) == 413


def test_streamed_body_over_the_limit_is_413(server):
    with connect(server) as s:
        s.sendall(b"PUT /images/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(4 * MAX_UPLOAD // 65536):
                s.sendall(b"10000\r\n" + bytes(65536) + b"\r\n")
        except OSError:
            pass  # the server may answer and close before the client is done
        assert status_of(s) == 413
    assert originals(server) == []


def test_a_stalled_body_does_not_block_other_clients(server):
    """Fewer stalled bodies than threads: the others are served at once (each stall ends after BODY_TIMEOUT)."""
    stalled = [connect(server) for _ in range(3)]
    for s in stalled:
        s.sendall(b"PUT /images/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + PNG[:100])
    try:
        for _ in range(4):
            r = requests.get(server.url + "/images", timeout=HANG)
            assert r.status_code == 200
        for s in stalled:  # the stalled clients give up: each body ends short, and is refused
            s.shutdown(socket.SHUT_WR)
            assert status_of(s) == 400
    finally:
        for s in stalled:
            s.close()
    assert "stall" not in listing(server) and originals(server) == []


@pytest.mark.parametrize(
    "request_bytes, statuses",
    [
        (b"GET /images/a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", (431, 400)),
        (b"GET /images/a HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
         (431, 400)),
        (b"GET /images/" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (414, 400)),
        (b"GET /images/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", (400, 404)),
        (b"GET /images/a?xsize=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", (400,)),
        (b"GET /images/a%00b HTTP/1.1\r\nHost: x\r\n\r\n", (400,)),
        (b"GET /images/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", (400,)),
        (b"BREW /images/a HTTP/1.1\r\nHost: x\r\n\r\n", (405, 400)),
        (b"PUT /images/a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", (400,)),
        (b"PUT /images/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde", (400,)),
        (b"PUT /images/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         (400, 415)),
        (b"GET /images/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n", (400, 404)),
    ],
)
def test_malformed_requests_are_4xx(server, request_bytes, statuses):
    with connect(server) as s:
        s.sendall(request_bytes)
        assert status_of(s) in statuses
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_no_5xx_and_nothing_stored_after_all_of_the_above(server):
    no_5xx_in_log(server)
    assert originals(server) == []
