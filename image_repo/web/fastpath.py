"""A WSGI fast path in front of Flask for the two answers that are pure lookups: hits and 304s.

A cache hit costs ~0.2 ms CPU through Flask against ~0.12 ms for a bare WSGI app
(perf.md section 5): Flask's request context, routing and Response object are most of
what a hit costs. This middleware answers ``GET``/``HEAD /<base>/<name>?xsize&ysize&kind&thumbnail``
itself when the answer is a 304 or a derived image the worker's memory cache holds, and
hands every other request, unchanged, to the Flask app.

It answers only after what the service would do first: the same name resolution and the
same check of the original (``Originals.find``: what the worker learned within
``original_stat_ttl``, forgotten at once after a write through any worker of the host), so
a replaced original is not answered from an old entry, whichever worker sees the request.
Keys, ETags and parsing are the service's and spec.py's own; the headers are those
``api/images.one`` sends (a test compares them).
It negotiates the kind (``format_negotiation``) with api/negotiation.py and adds the CORS
headers of web/cors.py, as the Flask app does. Anything unusual (other parameters, repeated
ones, a ``Range``, bad names, tokens configured, a memory miss, any error) falls through to
Flask, which then answers exactly as before.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.http import parse_etags

from .. import names
from ..api.negotiation import negotiated_kind
from ..cache.memory import MemoryCache
from ..errors import ImageRepoError, NotFound
from ..imaging.formats import KINDS, Kind, split_extension
from ..imaging.spec import DerivationSpec, parse_query
from ..metrics import ROUTE
from ..metrics.figures import cache_counters
from ..service.images import ImageService, Original
from .cors import CorsPolicy

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

SIZE_PARAMS = frozenset({"xsize", "ysize", "kind", "thumbnail"})
"""The only query parameters the fast path answers; any other sends the request to Flask."""
OK = "200 OK"
NOT_MODIFIED = "304 NOT MODIFIED"  # as Werkzeug spells it, so both paths send the same status line
PARSED_MAX = 4096
"""Request targets whose parsing is remembered (validating a name is most of a hit's own cost)."""


class Target:
    """What a request's path and query mean, independent of the store: computed once per URL."""

    __slots__ = ("exact", "stem", "stem_kind", "spec", "stem_spec", "kind_given", "memo")

    def __init__(self, exact: str | None, stem: str | None, stem_kind: Kind | None, spec: DerivationSpec,
                 kind_given: bool) -> None:
        self.exact = exact  # the whole path as a valid name, or None
        self.stem = stem  # the path less a known extension, as a valid name, or None
        self.stem_kind = stem_kind
        self.spec = spec
        self.stem_spec = spec if kind_given or stem_kind is None else dataclasses.replace(spec, kind=stem_kind.name)
        self.kind_given = kind_given
        self.memo: tuple[Original, DerivationSpec, str, str] | None = None
        """(the Original and spec last answered for, its ETag, its derived key): hashes worth keeping."""


class FastPath:
    """WSGI middleware: memory-cache hits and 304s of image GETs here, everything else to ``app``."""

    def __init__(self, app: WSGIApp, service: ImageService, cors: CorsPolicy | None = None) -> None:
        self.app = app
        self.service = service
        settings = service.settings
        self.prefix = "/" + settings.repository_base_pathname.strip("/") + "/"
        self.route = self.prefix + "<path:path>"  # the rule of api/images.one, as Flask would name it
        self._memory_hits = cache_counters("memory", ("hits",))["hits"]
        levels = getattr(service.cache, "levels", [service.cache])
        self.memory: MemoryCache | None = levels[0] if isinstance(levels[0], MemoryCache) else None
        self.cache_control = settings.cache_control
        self.default_kind = settings.default_kind
        self.negotiate = settings.format_negotiation
        self.cors = cors or CorsPolicy([])
        box = settings.thumbnail_default_size
        self.thumbnail_box = (int(box[0]), int(box[1]))
        # With read tokens every read needs the Authorization check in api/images.py.
        self.enabled = not settings.read_tokens
        self._parsed: dict[tuple[str, str], Target | None] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if self.enabled and (method == "GET" or method == "HEAD"):
            path = environ.get("PATH_INFO", "")
            if path.startswith(self.prefix):
                answer = self._answer(environ, path[len(self.prefix):])
                if answer is not None:
                    status, headers, body = answer
                    environ[ROUTE] = self.route
                    start_response(status, headers)
                    return [body] if body and method == "GET" else []
        return self.app(environ, start_response)

    def _answer(self, environ: dict[str, Any], raw_path: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(status, headers, body) for a hit or a 304, or None: Flask answers."""
        if "HTTP_RANGE" in environ:
            return None  # api/ranges.py
        query = environ.get("QUERY_STRING", "")
        try:
            target = self._parsed[(raw_path, query)]
        except KeyError:
            target = self._parse(raw_path, query)
        if target is None:
            return None
        # As Originals.resolve_path: the exact name first, else the name less its extension.
        try:
            original = self.service.find(target.exact) if target.exact is not None else None
            spec, negotiable = target.spec, not target.kind_given
            if original is None and target.stem is not None:
                original, spec, negotiable = self.service.find(target.stem), target.stem_spec, False
        except ImageRepoError:
            return None  # Flask makes the error answer
        if original is None:
            return None
        vary = []
        if negotiable and self.negotiate:
            kind = negotiated_kind(environ.get("HTTP_ACCEPT"), spec.kind)
            spec = spec if kind == spec.kind else dataclasses.replace(spec, kind=kind)
            vary.append("Accept")
        memo = target.memo
        # Originals.find returns the same object while nothing changed.
        if memo is not None and memo[0] is original and memo[1] == spec:
            _, _, etag, key = memo
        else:
            etag, key = self.service.etag(original, spec), names.derived_key(original.name, original.version, spec)
            target.memo = (original, spec, etag, key)
        headers = [("ETag", f'"{etag}"'), ("Cache-Control", self.cache_control)]
        headers += self.cors.headers(environ.get("HTTP_ORIGIN"))
        if self.cors.varies:
            vary.append("Origin")
        if vary:
            headers.append(("Vary", ", ".join(vary)))
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match and parse_etags(if_none_match).contains_weak(etag):
            return NOT_MODIFIED, headers, b""
        if self.memory is None:
            return None
        try:
            data, _ = self.memory.get_with_info(key)
        except NotFound:
            return None
        self.service.count("cache_hits", "fast_hits")
        self._memory_hits.inc()  # the level's own hit (TieredStore, which counts the others, is not asked)
        headers += [
            ("X-Image-Repo-Cache", "hit"),
            ("Content-Type", KINDS[spec.kind].content_type),
            ("Content-Length", str(len(data))),
            ("Accept-Ranges", "bytes"),
        ]
        return OK, headers, data

    def _parse(self, raw_path: str, query: str) -> Target | None:
        """The Target of a path and query string, or None for anything the fast path leaves to Flask."""
        target = None
        args = simple_args(query)
        if raw_path and not raw_path.endswith("/") and args is not None:  # a trailing "/": a zip, Flask's
            try:
                path = raw_path.encode("latin-1").decode("utf-8")  # WSGI's str -> the UTF-8 the client sent
                spec = parse_query(args, default_kind=self.default_kind, thumbnail_box=self.thumbnail_box).spec
            except (ImageRepoError, UnicodeError):
                path, spec = "", None
            if spec is not None:
                exact = _valid(self.service, path)
                stem, kind = split_extension(path)
                stem_name = _valid(self.service, stem) if kind is not None and kind.name in KINDS else None
                if exact is not None or stem_name is not None:
                    target = Target(exact, stem_name, kind, spec, "kind" in args)
        if len(self._parsed) >= PARSED_MAX:
            self._parsed.clear()
        self._parsed[(raw_path, query)] = target
        return target


def _valid(service: ImageService, name: str) -> str | None:
    try:
        return service.validate_name(name)
    except ImageRepoError:
        return None


def simple_args(query: str) -> dict[str, str] | None:
    """The query's size parameters, or None when it holds anything else or a parameter twice."""
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except (UnicodeError, ValueError):
        return None
    args: dict[str, str] = {}
    for key, value in pairs:
        if key not in SIZE_PARAMS or key in args:
            return None
        args[key] = value
    return args
