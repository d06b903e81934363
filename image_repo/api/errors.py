"""One handler renders every error as JSON ``{"message": ...}`` with its status."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import ImageRepoError

log = logging.getLogger("image_repo.api")


def _json_error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(message=message)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ImageRepoError)
    def repo_error(exc: ImageRepoError) -> Response:
        if exc.status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc.message)
        return _json_error(exc.message, exc.status, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after", "www-authenticate")}
        message = exc.description or exc.name
        if exc.code == 413:
            message = "the request body is larger than max_upload_bytes allows"
        return _json_error(message, exc.code or 500, headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return _json_error("internal error", 500)
