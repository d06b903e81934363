"""create_app(settings) -> the Flask application. No import-time side effects."""
from __future__ import annotations

import atexit

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import PathConverter

from .. import ui
from ..api import errors, health, iiif, images, imports, openapi
from ..cache.tiered import build_cache
from ..config.settings import Settings
from ..metrics import ROUTE
from ..service.images import ImageService
from ..storage.base import ObjectStore
from ..storage.filesystem import FileStore
from ..storage.registry import open_store
from . import cors
from .fastpath import FastPath
from .tilepath import TilePath

FORM_OVERHEAD = 64 * 1024
"""Room for the multipart envelope around an upload of max_upload_bytes."""


class AnyPathConverter(PathConverter):
    """A path that may hold any character, so a name with a newline gets a 400 saying why, not a 404."""

    regex = r"(?s:[^/].*?)"


def _name_route() -> None:
    """Name the request's route (its rule, or None if none matched) for the access hook's figures."""
    rule = request.url_rule
    request.environ[ROUTE] = rule.rule if rule is not None else None


def create_app(
    settings: Settings | None = None, *, store: ObjectStore | None = None, cache_store: ObjectStore | None = None,
    start_builders: bool = False,
) -> Flask:
    """The application for ``settings``; ``store``/``cache_store`` replace the configured ones (tests).

    ``start_builders``: run pyramid builds in the background of this process: what a serving
    process does (web/server.py, web/wsgi.py); an app made for a test or a command builds only when asked."""
    settings = settings or Settings()
    app = Flask("image_repo")
    app.url_map.converters["path"] = AnyPathConverter
    app.url_map.merge_slashes = False  # empty path segments are refused, not silently merged
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + FORM_OVERHEAD
    app.config["IMAGE_REPO_BASE"] = settings.repository_base_pathname.strip("/")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    originals = store or open_store(settings.store_url(), settings)
    if cache_store is None:
        cache_store = open_store(settings.cache_store_url(), settings)
        if isinstance(cache_store, FileStore):
            # Derived images can be made again: no fsync (~0.6 ms CPU, ~5 ms wall per write) for
            # them; tmp+rename still keeps every file whole.
            cache_store.fsync = False
    cache = build_cache(settings, cache_store)
    service = app.extensions["image_repo"] = ImageService(settings, originals, cache)
    atexit.register(cache.close)  # finish writing derivatives behind answers before a worker exits
    if start_builders:
        service.pyramids.start()  # background builds: queued ones, and any a stopped server left
        atexit.register(service.pyramids.close)

    app.before_request(_name_route)
    errors.register(app)
    # First: preflights are answered before any token check.
    allowed = cors.install(app, settings.cors_origins)
    # Memory-cache hits and 304s are answered in front of Flask, and so are the stored tiles of
    # ready pyramids (IIIF); all else goes through it.
    app.wsgi_app = FastPath(TilePath(app.wsgi_app, service), service, allowed.policy)  # type: ignore[method-assign]
    if settings.trust_forwarded_headers:
        # Behind a proxy: absolute URLs (IIIF ids, signed URLs) as the client sees them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1, x_host=1, x_port=1, x_prefix=1)  # type: ignore[method-assign]
    app.register_blueprint(health.bp)
    app.register_blueprint(images.signed_bp)
    app.register_blueprint(images.bp, url_prefix="/" + app.config["IMAGE_REPO_BASE"])
    app.register_blueprint(iiif.bp, url_prefix="/iiif")
    imports.register(app)  # /imports: direct-to-store uploads
    ui.register(app)  # / for a browser: the browse page, its assets under /_ui/
    openapi.register(app)  # /openapi.json, from the routes above and their descriptions
    return app
