"""The /imports routes (direct-to-store uploads) and this server's signed upload route for file:// stores."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ..errors import InvalidRequest, Unauthorized
from ..host.storegate import exempt_thread
from ..ingest.imports import ImportService
from ..service.images import ImageService
from . import signing
from .images import check_token
from .openapi import describe
from .openapi import imports as doc

bp = Blueprint("imports", __name__)
upload_bp = Blueprint("import_upload", __name__)
bp.before_request(check_token)  # the same tokens as /images: writes need a write token

UPLOAD_PREFIX = "/_imports/"
CHUNK = 1 << 20
CLEAN_EVERY = 3600.0


def imports() -> ImportService:
    service: ImportService = current_app.extensions["image_repo_imports"]
    return service


def register(app: Flask) -> None:
    """Add the import routes and their service to ``app``."""
    app.extensions["image_repo_imports"] = ImportService(app.extensions["image_repo"])
    app.extensions["image_repo_imports_cleaned"] = [0.0, threading.Lock()]
    app.register_blueprint(bp)
    app.register_blueprint(upload_bp)


@bp.before_request
def housekeeping() -> None:
    """Lazily, about once an hour per worker (and on its first import request, i.e. after a restart):
    expire forgotten imports and finish ones a stopped server left, in the background."""
    state: list[Any] = current_app.extensions["image_repo_imports_cleaned"]
    now = time.monotonic()
    with state[1]:
        if state[0] and now - state[0] < CLEAN_EVERY:
            return
        state[0] = now
    threading.Thread(target=_clean_quietly, args=(imports(),), daemon=True, name="imports-clean").start()


def _clean_quietly(service: ImportService) -> None:
    exempt_thread()  # housekeeping: one thread an hour, not a request's
    try:
        service.clean()
    except Exception:  # noqa: BLE001 - housekeeping must never take a worker down; the next round retries
        current_logger().exception("imports: housekeeping failed")


def current_logger() -> Any:
    import logging

    return logging.getLogger("image_repo.imports")


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("expected a JSON object")
    return body


def sign_upload(import_id: str, expires: int) -> str:
    """A URL on this server that takes a PUT of the import's bytes until ``expires``."""
    path = f"{UPLOAD_PREFIX}{import_id}"
    signature = signing.sign(imports().settings.signing_key() or "", "PUT", path, expires)
    query = urlencode({"temp_url_sig": signature, "temp_url_expires": expires})
    return f"{request.host_url.rstrip('/')}{path}?{query}"


@bp.get("/imports")
@describe(doc.OFFER)
def offer() -> Response:
    return jsonify(imports().offer())


@bp.post("/imports")
@describe(doc.CREATE)
def create() -> Response:
    body = json_body()
    name, sha, size = body.get("name"), body.get("sha256"), body.get("size")
    if not isinstance(name, str) or not isinstance(sha, str):
        raise InvalidRequest("name and sha256 must be strings")
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidRequest("size must be an integer number of bytes")
    rec = imports().create(name, sha, size, replace=bool(body.get("replace")), sign_own=sign_upload)
    response = jsonify(rec)
    response.status_code = 200 if rec["state"] == "done" else 201
    return response


@bp.get("/imports/<import_id>")
@describe(doc.STATUS)
def status(import_id: str) -> Response:
    return jsonify(imports().get(import_id))


@bp.put("/imports/<import_id>")
@describe(doc.COMPLETE)
def complete(import_id: str) -> Response:
    if json_body().get("complete") is not True:
        raise InvalidRequest('expected {"complete": true}')
    rec = imports().complete(import_id)
    response = jsonify(rec)
    response.status_code = 200 if rec["state"] in ("done", "failed") else 202
    return response


@bp.delete("/imports/<import_id>")
@describe(doc.CANCEL)
def cancel(import_id: str) -> Response:
    return jsonify(imports().cancel(import_id))


@upload_bp.put(UPLOAD_PREFIX + "<import_id>")
@describe(doc.RECEIVE)
def receive(import_id: str) -> Response:
    """The import's bytes, streamed to the staging object in chunks: never held whole in memory."""
    svc: ImageService = current_app.extensions["image_repo"]
    if not svc.settings.url_keys():
        raise Unauthorized("signed URLs are not enabled on this server")
    signing.verify(svc.settings.url_keys(), "PUT", UPLOAD_PREFIX + import_id, request.args.get("temp_url_expires"),
                   request.args.get("temp_url_sig"))
    request.max_content_length = svc.settings.max_import_bytes  # not max_upload_bytes: this body is streamed

    def chunks() -> Iterator[bytes]:
        stream = request.stream
        while chunk := stream.read(CHUNK):
            yield chunk

    imports().receive(import_id, chunks())
    return Response(status=201)
