"""Gunicorn's access hook: every answered request is counted here, and logged as text or JSON.

Gunicorn calls ``Logger.access`` once per request, after the last byte was sent, with the
status, the bytes sent and the time taken: the one place that sees the fast path's answers,
Flask's and streamed zips alike, at no extra cost per request beyond the counting itself.
The route comes from the WSGI environ, where the app or the fast path named it
(``image_repo.metrics.ROUTE``). Request figures therefore need Gunicorn (``image_repo serve``
or ``gunicorn -c docker/gunicorn.conf.py``); everything else is counted under any server.
"""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from ..metrics import ROUTE

CACHE_HEADER = "x-image-repo-cache"


def _status(resp: Any) -> int:
    code = getattr(resp, "status_code", None)
    if isinstance(code, int):
        return code
    try:
        return int(str(resp.status).split(None, 1)[0])
    except (ValueError, IndexError):
        return 0


class AccessLogger(Logger):
    """Gunicorn's logger, counting each request into the Prometheus figures before logging it as usual."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        # Imported here, in the worker: the master (which makes this logger too) must not create metrics.
        from ..metrics import figures

        try:
            figures.request(environ.get(ROUTE), environ.get("REQUEST_METHOD", ""), _status(resp),
                            getattr(resp, "sent", 0) or 0, request_time.total_seconds())
        except Exception:  # noqa: BLE001 - a figure must never break an answer or its log line
            self.exception("counting a request failed")
        # Gunicorn builds the line's fields whenever a logging config is given, even when its
        # access logger drops INFO (``serve -q``): ~20 us a request, for nothing.
        if self.access_log_enabled and self.access_log.isEnabledFor(logging.INFO):
            self.log_access(resp, req, environ, request_time)

    def log_access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        """The access line: Gunicorn's text format."""
        super().access(resp, req, environ, request_time)


class JsonAccessLogger(AccessLogger):
    """Access lines as one JSON object each, for log pipelines (the ``access_log_json`` setting)."""

    def log_access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        try:
            self.access_log.info("%s", json.dumps(access_record(resp, environ, request_time), ensure_ascii=False))
        except Exception:  # noqa: BLE001
            self.exception("writing the access line failed")


def access_record(resp: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
    """The fields of one JSON access line."""
    now = time.time()
    cache = next((v for k, v in getattr(resp, "headers", None) or () if k.lower() == CACHE_HEADER), None)
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
        "remote": environ.get("REMOTE_ADDR"),
        "method": environ.get("REQUEST_METHOD"),
        "uri": environ.get("RAW_URI") or environ.get("PATH_INFO"),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "route": environ.get(ROUTE),
        "status": _status(resp),
        "bytes": getattr(resp, "sent", None),
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "cache": cache,
        "referer": environ.get("HTTP_REFERER"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "pid": os.getpid(),
    }
