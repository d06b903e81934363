"""One handler renders every error as JSON ``{"message": ...}`` with its status."""
from __future__ import annotations

import logging

from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from ..errors import ImageRepoError

log = logging.getLogger("image_repo.api")


def _json_error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(message=message)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class JsonRedirect(RequestRedirect):
    """Werkzeug's slash redirect (``POST /images`` to ``/images/``, 308: method and body kept) with a JSON body."""

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        response = _json_error(f"this resource is at {self.new_url}", self.code)
        response.headers["Location"] = self.new_url
        return response


def _json_redirects() -> None:
    # Flask sends routing redirects past the error handlers: the only answer that would be HTML.
    if isinstance(request.routing_exception, RequestRedirect) and not isinstance(request.routing_exception, JsonRedirect):
        request.routing_exception = JsonRedirect(request.routing_exception.new_url)


def register(app: Flask) -> None:
    app.before_request(_json_redirects)

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
