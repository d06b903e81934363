"""The browse page: ``/`` for a browser, its hashed assets under ``/_ui/``, and the headers that keep it safe.

The page is one HTML shell with no data in it: the scripts read the JSON API with the
visitor's token (a navigation cannot carry an ``Authorization`` header, and the page sets no
cookies), so the shell itself needs no token and names reach the page only as JSON, shown
as text. API clients asking ``/`` for anything but HTML get the JSON 404 they always got.
"""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..api.openapi import describe
from ..api.openapi import ui as doc
from ..errors import ImageRepoError
from ..imaging.formats import INPUT_KINDS, KINDS
from ..ingest.imports import ImportService
from ..service.images import ImageService
from ..storage.base import SupportsTempUrl
from .assets import IMMUTABLE, OPENSEADRAGON, PREFIX, Assets, load

log = logging.getLogger("image_repo.ui")

bp = Blueprint("ui", __name__, template_folder="templates")

IIIF_BASE = "/iiif/3"
IIIF_PROBE = IIIF_BASE + "/probe/info.json"
"""A path the IIIF routes answer when they are installed (routing only: nothing is read)."""
NO_OPENSEADRAGON = ("OpenSeadragon is not installed on this server: node and npm were missing when it was "
                    "set up (./run serve and the Docker build run npm ci when they are there)")
NO_IIIF = "this server has no IIIF routes, which deep zoom reads"


def register(app: Flask) -> None:
    """Add the browse page and its assets to ``app``."""
    app.extensions["image_repo_ui"] = {"assets": load(), "connect": None}
    app.register_blueprint(bp)


def _state() -> dict[str, Any]:
    state: dict[str, Any] = current_app.extensions["image_repo_ui"]
    return state


def assets() -> Assets:
    found: Assets = _state()["assets"]
    return found


def wants_html() -> bool:
    """A browser's navigation (text/html preferred to JSON); curl's ``*/*`` and API clients get JSON."""
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "text/html" and accept["text/html"] > 0


@bp.get("/")
@describe(doc.INDEX)
def index() -> Response:
    if not wants_html():
        abort(404)
    found = assets()
    config = page_config(found)
    html = render_template("index.html", asset=found.url, config=json.dumps(config, separators=(",", ":")),
                           deep_zoom=config["deepZoom"])
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers.update(page_headers(connect_sources()))
    response.headers["Cache-Control"] = "no-cache"  # the shell names the current asset hashes
    response.vary.add("Accept")
    return response


@bp.get(PREFIX + "<path:hashed>")
@describe(doc.ASSET)
def asset(hashed: str) -> Response:
    found = assets().by_url.get(PREFIX + hashed)
    if found is None:
        abort(404)
    headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{found.etag}"', "X-Content-Type-Options": "nosniff",
               "Vary": "Accept-Encoding"}
    if request.if_none_match and request.if_none_match.contains(found.etag):
        return Response(status=304, headers=headers)
    body = found.data
    zipped = assets().gzipped(found) if "gzip" in request.accept_encodings else None
    if zipped is not None:
        body, headers["Content-Encoding"] = zipped, "gzip"
    return Response(body, content_type=found.content_type, headers=headers)


def page_config(found: Assets) -> dict[str, Any]:
    """What the scripts need to know of this server (no secrets: whether tokens are needed, not which)."""
    service: ImageService = current_app.extensions["image_repo"]
    settings = service.settings
    imports: ImportService | None = current_app.extensions.get("image_repo_imports")
    deep_zoom, why = True, ""
    if not settings.browse_deep_zoom:
        deep_zoom, why = False, "this server is set up to show plain images (browse_deep_zoom is false)"
    elif not found.has(OPENSEADRAGON):
        deep_zoom, why = False, NO_OPENSEADRAGON
    elif not has_iiif():
        deep_zoom, why = False, NO_IIIF
    return {
        "images": "/" + current_app.config["IMAGE_REPO_BASE"],
        "iiif": IIIF_BASE,
        "deepZoom": deep_zoom,
        "noDeepZoom": why,
        "readTokens": bool(settings.read_tokens),
        "writeTokens": bool(settings.write_tokens),
        "direct": imports is not None and imports.direct_upload() is not None,
        "urls": bool(settings.url_key),
        "maxUpload": settings.max_upload_bytes,
        "maxImport": settings.max_import_bytes,
        "kinds": list(KINDS),
        "extensions": sorted(ext for kind in INPUT_KINDS.values() for ext in kind.extensions),
    }


def has_iiif() -> bool:
    """Whether the app routes IIIF info.json requests (the IIIF blueprint is installed)."""
    cached = _state().get("iiif")
    if cached is None:
        adapter = current_app.url_map.bind("localhost")
        try:
            adapter.match(IIIF_PROBE, method="GET")
            cached = True
        except (NotFound, MethodNotAllowed):
            cached = False
        except Exception:  # noqa: BLE001 - a redirect or a converter refusing the probe: a route is there
            cached = True
        _state()["iiif"] = cached
    return bool(cached)


def connect_sources() -> list[str]:
    """Origins besides our own the page's scripts may send to: the store's, when uploads go straight to it."""
    state = _state()
    if state["connect"] is None:
        imports: ImportService | None = current_app.extensions.get("image_repo_imports")
        origins: list[str] = []
        if imports is not None and imports.direct_upload() == "temp_url" and isinstance(imports.store, SupportsTempUrl):
            try:
                url, _ = imports.store.temp_url(".imports/origin.data", "PUT", 60)  # signed here (Swift may authenticate)
            except ImageRepoError as exc:
                log.warning("browse page: no direct-upload origin for its CSP (%s); asking again later", exc.message)
                return []
            parts = urlsplit(url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        state["connect"] = origins
    return list(state["connect"])


def page_headers(connect: list[str]) -> dict[str, str]:
    """A strict CSP (no inline script or style, nothing from elsewhere) and its companions."""
    csp = "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src " + " ".join(["'self'", *connect]),
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
