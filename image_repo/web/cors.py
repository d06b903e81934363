"""CORS: which other sites' scripts may use the API, for reads and writes alike (``cors_origins``).

``["*"]`` (the default) answers every origin with ``Access-Control-Allow-Origin: *`` on every
answer, whether the request named an origin or not, so a shared cache can keep one copy for
all. A list of origins answers only those, echoing the one that asked, and marks every answer
``Vary: Origin``. An origin not on the list gets no CORS headers at all, never an error: the
browser then keeps the answer from the script. An empty list sends no CORS headers.

No credentials mode (cookies): this server's only credential is a bearer token, which a
script sends itself as ``Authorization``, a header it may send with ``*`` too.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin is
answered 204 before any token check (a browser sends no ``Authorization`` with it). A
blueprint whose answers are public whatever ``cors_origins`` says (IIIF: viewers on any site)
calls ``any_origin(bp)``. The fast path adds ``CorsPolicy.headers`` itself.
"""
from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, Flask, Response, request
from flask.blueprints import BlueprintSetupState
from flask.globals import request_ctx

ALLOW_HEADERS = (
    "Authorization", "Content-Type", "Content-Digest", "X-Checksum-Sha256",
    "If-None-Match", "If-Match", "If-Modified-Since", "If-Range", "Range", "Accept",
)  # fmt: skip
"""Request headers a script may send: the token, upload checksums, conditional and ranged reads."""
EXPOSE_HEADERS = (
    "ETag", "Location", "X-Checksum-Sha256", "Content-Range", "Accept-Ranges", "Content-Disposition",
    "Retry-After", "WWW-Authenticate", "X-Image-Repo-Cache",
)  # fmt: skip
"""Answer headers a script may read beyond the safelisted ones (Content-Type, Content-Length...)."""
MAX_AGE = "7200"
"""Seconds a browser may keep a preflight's answer (Chromium's own cap)."""
EXTENSION = "image_repo_cors"


def normalise_origin(origin: str) -> str:
    """An origin as browsers send it: scheme and host lower case, no trailing slash."""
    return origin.strip().rstrip("/").lower()


class CorsPolicy:
    """The CORS headers for one list of origins."""

    def __init__(self, origins: Iterable[str]) -> None:
        listed = [normalise_origin(o) for o in origins]
        self.any = "*" in listed
        self.origins = frozenset(o for o in listed if o != "*")
        self.enabled = self.any or bool(self.origins)
        self.varies = not self.any and bool(self.origins)
        """Whether answers depend on the request's Origin (so carry ``Vary: Origin``)."""
        self._expose = ", ".join(EXPOSE_HEADERS)

    def allowed(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None: no CORS headers."""
        if self.any:
            return "*"
        if origin and normalise_origin(origin) in self.origins:
            return origin.strip()
        return None

    def headers(self, origin: str | None) -> list[tuple[str, str]]:
        """The CORS headers of an ordinary answer to a request from ``origin`` (``Vary`` aside)."""
        allow = self.allowed(origin)
        if allow is None:
            return []
        return [("Access-Control-Allow-Origin", allow), ("Access-Control-Expose-Headers", self._expose)]

    def preflight(self, origin: str | None, methods: Iterable[str]) -> list[tuple[str, str]] | None:
        """The headers of a preflight's answer, or None when ``origin`` is not allowed."""
        allow = self.allowed(origin)
        if allow is None or not origin:
            return None
        return [
            ("Access-Control-Allow-Origin", allow),
            ("Access-Control-Allow-Methods", ", ".join(sorted(set(methods) - {"OPTIONS"}))),
            ("Access-Control-Allow-Headers", ", ".join(ALLOW_HEADERS)),
            ("Access-Control-Max-Age", MAX_AGE),
        ]


class Cors:
    """The app's policy, and the blueprints that answer any origin."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.policy = CorsPolicy(origins)
        self.public = CorsPolicy(["*"])
        self.any_origin_blueprints: set[str] = set()

    def for_blueprint(self, name: str | None) -> CorsPolicy:
        return self.public if name in self.any_origin_blueprints else self.policy


def any_origin(bp: Blueprint) -> None:
    """Answer every origin on ``bp``'s routes with ``*``, whatever ``cors_origins`` says."""

    def record(state: BlueprintSetupState) -> None:
        state.app.extensions[EXTENSION].any_origin_blueprints.add(state.name)

    bp.record_once(record)


def install(app: Flask, origins: Iterable[str]) -> Cors:
    """Answer preflights and add CORS headers to every answer of ``app`` (before its blueprints)."""
    cors = app.extensions[EXTENSION] = Cors(origins)

    @app.before_request
    def preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        if request.url_rule is None:
            return None  # no such route: Flask's 404
        methods = request_ctx.url_adapter.allowed_methods() if request_ctx.url_adapter else []
        headers = cors.for_blueprint(request.blueprint).preflight(request.headers.get("Origin"), methods)
        if headers is None:
            return None  # not an allowed origin: an ordinary OPTIONS answer, without CORS headers
        response = Response(status=204, headers=headers)
        if cors.for_blueprint(request.blueprint).varies:
            response.vary.add("Origin")
        return response

    @app.after_request
    def add_headers(response: Response) -> Response:
        policy = cors.for_blueprint(request.blueprint)
        if not policy.enabled or "Access-Control-Allow-Origin" in response.headers:
            return response
        for name, value in policy.headers(request.headers.get("Origin")):
            response.headers[name] = value
        if policy.varies:
            response.vary.add("Origin")
        return response

    return cors
