"""A WSGI fast path in front of Flask for IIIF image requests a pyramid answers as stored.

A viewer's traffic is tiles: ``/iiif/{3,2}/{id}/{x,y,w,h}/{w,h}/0/default.jpg`` on the tile
grid of info.json, each the bytes of one stored JPEG tile (service/iiif.py ``stored_tile``).
Through Flask such a tile costs more in the framework (request context, routing, Response,
after-request hooks) than in the work (an index lookup and a pread). This middleware answers
it itself when the image has a ready pyramid in this worker (``Pyramids.source``) and the
request is one stored tile, a memory-cache hit, or a 304, with the headers api/iiif.py sends
(a test compares them). Everything else goes, unchanged, to Flask: info.json, renders,
images without a ready pyramid, anything malformed (Flask makes the 400 or 404), tokens
configured, a ``Range`` header, a server that keeps no raw request path (RAW_URI or
REQUEST_URI, which tells ``a%2Fb`` from ``a/b``), any error.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.http import parse_etags
from werkzeug.wsgi import get_current_url

from .. import names
from ..errors import ImageRepoError
from ..api.iiif import IMAGE_RULE
from ..iiif import PROFILE, ImageRequest, parse_request
from ..metrics import ROUTE
from ..service import tiles
from ..service.images import ImageService

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

VERSIONS = {"3": 3, "2": 2}
ROUTE_NAME = "/iiif" + IMAGE_RULE
"""The route /metrics counts these answers under, as Flask names it."""
PARSED_MAX = 8192
"""Request paths whose parsing is remembered (a viewer asks each tile once per worker or so)."""
OK = "200 OK"
NOT_MODIFIED = "304 NOT MODIFIED"  # as Werkzeug spells it, so both paths send the same status line
CORS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "ETag, Link")]
"""api/iiif.py's CORS headers: IIIF answers are public whatever ``cors_origins`` says."""


class Parsed:
    """What a raw IIIF image path means, store aside: computed once per path."""

    __slots__ = ("version", "escaped", "name", "request")

    def __init__(self, version: int, escaped: str, name: str, request: ImageRequest) -> None:
        self.version = version
        self.escaped = escaped  # the identifier as the client escaped it, for the canonical Link
        self.name = name
        self.request = request


class TilePath:
    """WSGI middleware: stored tiles, memory hits and 304s of IIIF images with a pyramid; all else to ``app``."""

    def __init__(self, app: WSGIApp, service: ImageService) -> None:
        self.app = app
        self.service = service
        self.cache_control = service.settings.cache_control
        self.max_area = service.settings.max_output_pixels
        # With read tokens every read needs api/images.py's Authorization check.
        self.enabled = not service.settings.read_tokens
        self._parsed: dict[str, Parsed | None] = {}
        self._names: dict[str, str] = {}
        self._roots: dict[tuple[Any, ...], str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if (self.enabled and (method == "GET" or method == "HEAD") and "HTTP_RANGE" not in environ
                and environ.get("PATH_INFO", "").startswith("/iiif/")):
            answer = self._answer(environ)
            if answer is not None:
                status, headers, body = answer
                environ[ROUTE] = ROUTE_NAME
                start_response(status, headers)
                return [body] if body and method == "GET" else []
        return self.app(environ, start_response)

    def _answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not raw or environ.get("SCRIPT_NAME"):
            return None
        try:
            parsed = self._parsed[raw]
        except KeyError:
            parsed = self._parse(raw, environ.get("PATH_INFO", ""))
        if parsed is None:
            return None
        svc = self.service
        try:
            original = svc.find(parsed.name)
            if original is None:
                return None
            source = svc.pyramids.source(original)
            if source is None:
                return None  # no ready pyramid: the whole-image source, or a 503, through Flask
            resolved = svc.iiif.resolve(original, source, parsed.request)
            etag = svc.iiif.etag(original, resolved)
            root = self._root(environ)
            canonical = f"{root}/iiif/{parsed.version}/{parsed.escaped}/{resolved.canonical(parsed.version, self.max_area)}"
            headers = [("ETag", f'"{etag}"'), ("Cache-Control", self.cache_control),
                       ("Link", f'<{PROFILE[parsed.version]}>;rel="profile", <{canonical}>;rel="canonical"')]
            if_none_match = environ.get("HTTP_IF_NONE_MATCH")
            if if_none_match and parse_etags(if_none_match).contains_weak(etag):
                return NOT_MODIFIED, headers + CORS, b""
            rendered = None
            tile = tiles.stored_tile_at(source.info, resolved)
            if tile is not None:
                rendered = svc.iiif.stored_tile(original, source, resolved, tile, etag)
            else:
                key = names.derived_key(original.name, original.version, resolved)
                rendered = svc.iiif.memory_hit(resolved, key, etag)
                if rendered is not None:
                    svc.count("fast_hits")
        except ImageRepoError:
            return None  # Flask makes the error answer
        if rendered is None:
            return None
        headers += [("X-Image-Repo-Cache", "hit" if rendered.cached else "miss"),
                    ("Content-Type", rendered.content_type), ("Content-Length", str(len(rendered.data))), *CORS]
        return OK, headers, rendered.data

    def _root(self, environ: dict[str, Any]) -> str:
        """``request.url_root`` less its slash, as Flask computes it: remembered per scheme and Host."""
        memo = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
                environ.get("SERVER_PORT"))
        root = self._roots.get(memo)
        if root is None:
            if len(self._roots) >= 64:
                self._roots.clear()
            root = self._roots[memo] = get_current_url(environ, root_only=True).rstrip("/")
        return root

    def _name(self, identifier: str) -> str:
        """The image name an identifier gives, validated once per worker (every tile of an image names it)."""
        name = self._names.get(identifier)
        if name is None:
            name = self.service.validate_name(identifier)
            if len(self._names) >= PARSED_MAX:
                self._names.clear()
            self._names[identifier] = name
        return name

    def _parse(self, raw: str, path_info: str) -> Parsed | None:
        """The Parsed of a raw IIIF image path, or None for anything left to Flask."""
        parsed = None
        target = raw.split("?", 1)[0].split("#", 1)[0]
        segments = target.split("/")
        # "", "iiif", version, identifier, region, size, rotation, quality.format
        if len(segments) == 8 and segments[0] == "" and segments[2] in VERSIONS:
            try:
                decoded = [unquote(part, errors="strict") for part in segments]
                # The path Flask routes must be this one (WSGI strings carry bytes as latin-1).
                if "/".join(decoded) == path_info.encode("latin-1").decode("utf-8"):
                    version = VERSIONS[segments[2]]
                    request = parse_request(version, *decoded[4:])
                    parsed = Parsed(version, segments[3], self._name(decoded[3]), request)
            except (ImageRepoError, UnicodeError):
                parsed = None
        if len(self._parsed) >= PARSED_MAX:
            self._parsed.clear()
        self._parsed[raw] = parsed
        return parsed
