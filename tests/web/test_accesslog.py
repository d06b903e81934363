"""Gunicorn's access hook: every request counted, and the access line built only when it is written."""
from __future__ import annotations

import datetime
import json
import logging

import pytest
from gunicorn.config import Config

from image_repo.metrics import ROUTE
from image_repo.web.accesslog import AccessLogger, JsonAccessLogger
from image_repo.web.server import logging_config

ENVIRON = {"REQUEST_METHOD": "GET", "RAW_URI": "/images/a?xsize=8", "PATH_INFO": "/images/a", "QUERY_STRING": "xsize=8",
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", ROUTE: "/images/<path:path>"}


class Response:
    status = "200 OK"
    status_code = 200
    sent = 1234
    response_length = 1234
    headers = [("Content-Type", "image/jpeg"), ("X-Image-Repo-Cache", "hit")]


class Request:
    headers = [("HOST", "example"), ("USER-AGENT", "test")]
    method, uri, path, query, version, peer_addr = "GET", "/images/a?xsize=8", "/images/a", "xsize=8", (1, 1), ("127.0.0.1", 1)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def logger(cls: type[AccessLogger], access: bool) -> tuple[AccessLogger, Lines, list[int]]:
    built: list[int] = []

    class Counting(cls):  # type: ignore[valid-type, misc]
        def atoms(self, *args):  # what Gunicorn builds for a text line
            built.append(1)
            return super().atoms(*args)

    cfg = Config()
    cfg.set("logconfig_dict", logging_config("warning", None, access))
    log = Counting(cfg)
    lines = Lines()
    log.access_log.handlers = [lines]
    return log, lines, built


@pytest.mark.parametrize("cls", [AccessLogger, JsonAccessLogger])
def test_a_quiet_server_builds_no_access_line(cls, monkeypatch):
    from image_repo.metrics import figures

    counted = []
    monkeypatch.setattr(figures, "request", lambda *args: counted.append(args))
    log, lines, built = logger(cls, access=False)
    log.access(Response(), Request(), dict(ENVIRON), datetime.timedelta(milliseconds=3))
    assert counted == [("/images/<path:path>", "GET", 200, 1234, 0.003)], "the request is still counted"
    assert lines.lines == [] and built == []


def test_the_access_line_is_written_when_asked():
    log, lines, built = logger(AccessLogger, access=True)
    log.access(Response(), Request(), dict(ENVIRON), datetime.timedelta(milliseconds=3))
    assert len(lines.lines) == 1 and '"GET /images/a?xsize=8 HTTP/1.1" 200' in lines.lines[0] and built == [1]
    log, lines, _ = logger(JsonAccessLogger, access=True)
    log.access(Response(), Request(), dict(ENVIRON), datetime.timedelta(milliseconds=3))
    record = json.loads(lines.lines[0])
    assert record["uri"] == "/images/a?xsize=8" and record["status"] == 200 and record["cache"] == "hit"
