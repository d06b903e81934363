"""The /images routes: parse the request once, call the service, shape the answer."""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import time
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from werkzeug.datastructures import MultiDict

from .. import testpoints
from ..errors import InvalidRequest, PayloadTooLarge, Unauthorized
from ..imaging.formats import KINDS
from ..imaging.spec import FALSE_WORDS, DerivationSpec, QueryOptions, parse_bool, parse_query
from ..service.images import ImageService, Original
from . import guard, signing
from .negotiation import negotiated_kind
from .openapi import describe
from .openapi import images as doc
from .ranges import ranged
from .zipstream import stream_zip

bp = Blueprint("images", __name__)
signed_bp = Blueprint("signed", __name__)

SIGNED_PREFIX = "/_signed/"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
DEFAULT_PAGE = 1000
"""Names per page of ``GET /images`` when a marker is given without a limit."""
MAX_PAGE = 10_000
"""Most names one page of ``GET /images`` holds (Swift's own listing limit)."""
MAX_MARKER = 4096


def service() -> ImageService:
    svc: ImageService = current_app.extensions["image_repo"]
    return svc


@bp.before_request
def check_token() -> None:
    """Bearer tokens, when configured: write tokens for writes; read (or write) tokens for reads."""
    if request.method == "OPTIONS":
        return  # says only which methods a route has (and answers CORS preflights, which carry no token)
    settings = service().settings
    # original=true serves the stored bytes with their EXIF/GPS intact: an uploader's check, so a writer's right.
    writing = request.method in WRITE_METHODS or request.args.get("original", "false") not in FALSE_WORDS
    allowed = settings.write_tokens if writing else settings.read_tokens
    if not allowed:
        return
    if not writing:
        allowed = [*allowed, *settings.write_tokens]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("this request needs 'Authorization: Bearer <token>'")
    if not signing.matches_any(given.strip(), allowed):
        raise Unauthorized("the bearer token is not valid for this request")


@bp.before_request
def check_body() -> None:
    """After the token check: a write's body arrives whole or is refused (see guard.py)."""
    if request.method in WRITE_METHODS:
        guard.guard_body(service().settings.max_upload_bytes)


def query_args(args: MultiDict[str, str]) -> dict[str, str]:
    """First value of each parameter; a parameter repeated with different values is refused."""
    out: dict[str, str] = {}
    for key in args:
        values = args.getlist(key)
        if len(set(values)) > 1:
            raise InvalidRequest(f"{key}: given more than once with different values")
        out[key] = values[0]
    return out


def parse_options(path_kind: str | None = None) -> QueryOptions:
    settings = service().settings
    box = settings.thumbnail_default_size
    return parse_query(
        query_args(request.args),
        default_kind=settings.default_kind,
        path_kind=path_kind,
        thumbnail_box=(int(box[0]), int(box[1])),
    )


def image_location(name: str) -> str:
    base = current_app.config["IMAGE_REPO_BASE"]
    return f"/{base}/{quote(name)}"


@bp.get("")
@describe(doc.LIST)
def list_images() -> Response:
    args = query_args(request.args)
    regex = args.get("regex")
    if regex == "":
        raise InvalidRequest("regex: an empty pattern matches nothing; leave it out instead")
    if "limit" not in args and "marker" not in args:
        return jsonify(service().list_names(regex))
    limit = parse_limit(args.get("limit"))
    marker = args.get("marker", "")
    if len(marker) > MAX_MARKER:
        raise InvalidRequest(f"marker: longer than {MAX_MARKER} characters")
    page, more = service().list_page(regex, marker, limit)
    response = jsonify(page)
    if more:
        # The query as given with the marker moved on: relative to this URL (RFC 8288).
        following = {**args, "limit": str(limit), "marker": page[-1]}
        response.headers["Link"] = f'<{image_location("").rstrip("/")}?{urlencode(following)}>; rel="next"'
    return response


def parse_limit(raw: str | None) -> int:
    """``limit=``: names per page, 1..MAX_PAGE; a marker alone means pages of DEFAULT_PAGE."""
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(f"limit: expected a whole number from 1 to {MAX_PAGE}")
    return int(raw)


@bp.get("/")
@describe(doc.GET_ROOT)
def get_root() -> Response:
    return get_images("")


@bp.get("/<path:path>")
@describe(doc.GET_IMAGE)
def get_images(path: str) -> Response:
    svc = service()
    options = parse_options()
    if options.regex is not None or path == "" or path.endswith("/"):
        selected = svc.select(path, options.regex)
        if len(selected) > 1:
            return several(selected, options)
        return one(svc.get_original(selected[0]), options, negotiable="kind" not in request.args)
    original, path_kind = svc.resolve_path(path)
    if path_kind is not None and "kind" not in request.args:
        options = dataclasses.replace(options, spec=dataclasses.replace(options.spec, kind=path_kind.name))
    return one(original, options, negotiable="kind" not in request.args and path_kind is None)


def one(original: Original, options: QueryOptions, *, negotiable: bool = False) -> Response:
    """One image's answer; ``negotiable``: the request named no kind (format_negotiation may choose)."""
    svc = service()
    if parse_bool("original", request.args.get("original", "false")):
        # The stored bytes unchanged (metadata intact), so a client can check what it uploaded.
        headers = {"ETag": f'"{original.version}"', "X-Checksum-Sha256": original.info.sha256 or ""}
        if request.if_none_match and request.if_none_match.contains_weak(original.version):
            return Response(status=304, headers=headers)
        data = svc.original_bytes(original)
        content_type = original.info.content_type or original.ref.kind.content_type
        response = Response(data, content_type=content_type, headers={**headers, "Cache-Control": "private, no-cache"})
        return ranged(response, len(data))
    if options.meta:
        return jsonify(svc.metadata(original))
    spec, vary = svc.renderings.spec_for(original, options.spec, options.rendering), None
    if options.url:
        url, expires = svc.temp_url(original, spec, sign_own_url)
        return jsonify(url=url, expires=expires)
    if negotiable and svc.settings.format_negotiation:
        # Its own kind, so its own derived key and ETag; caches keep one copy per Accept.
        spec = dataclasses.replace(spec, kind=negotiated_kind(request.headers.get("Accept"), spec.kind))
        vary = {"Vary": "Accept"}
    etag = svc.etag(original, spec)
    headers = {"ETag": f'"{etag}"', "Cache-Control": svc.settings.cache_control, **(vary or {})}
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    rendered = svc.render(original, spec)
    headers["X-Image-Repo-Cache"] = "hit" if rendered.cached else "miss"
    return ranged(Response(rendered.data, content_type=rendered.content_type, headers=headers), len(rendered.data))


def several(selected: list[str], options: QueryOptions) -> Response:
    svc = service()
    limit = svc.settings.max_zip_images
    if len(selected) > limit:
        raise PayloadTooLarge(f"{len(selected)} images match; at most {limit} are answered at once (max_zip_images)")
    if options.meta:
        return jsonify([svc.metadata(svc.get_original(name)) for name in selected])
    if options.url:
        answers: list[dict[str, Any]] = []
        for name in selected:
            url, expires = svc.temp_url(svc.get_original(name), options.spec, sign_own_url)
            answers.append({"name": name, "url": url, "expires": expires})
        return jsonify(answers)
    spec = options.spec

    def member(name: str, index: int) -> tuple[str, Any]:
        def make() -> bytes:
            if index:
                testpoints.reach("zip-stream")  # a test stops here: part of the zip is sent
            return svc.render(svc.get_original(name), spec).data

        return f"{name}.{spec.kind}", make

    body = stream_zip((member(name, i) for i, name in enumerate(selected)),
                      on_error=lambda n, e: f"{n}: {getattr(e, 'message', 'failed')}")
    return Response(
        stream_with_context(body),
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="images.zip"', "Cache-Control": "no-store"},
    )


def sign_own_url(key: str) -> tuple[str, int]:
    """A URL to ``key`` on this server's signed route, for stores without temporary URLs."""
    settings = service().settings
    expires = int(time.time()) + settings.url_lifetime
    path = SIGNED_PREFIX + key
    signature = signing.sign(settings.signing_key() or "", "GET", path, expires)
    query = urlencode({"temp_url_sig": signature, "temp_url_expires": expires})
    return f"{request.host_url.rstrip('/')}{SIGNED_PREFIX}{quote(key)}?{query}", expires


@signed_bp.get(SIGNED_PREFIX + "<path:key>")
@describe(doc.GET_SIGNED)
def get_signed(key: str) -> Response:
    svc = service()
    if not svc.settings.url_keys():
        raise Unauthorized("signed URLs are not enabled on this server")
    signing.verify(
        svc.settings.url_keys(),
        "GET",
        SIGNED_PREFIX + key,
        request.args.get("temp_url_expires"),
        request.args.get("temp_url_sig"),
    )
    # The key names one derivative of one version of the original: its ETag never changes.
    etag = hashlib.sha256(key.encode()).hexdigest()[:32]
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    data, content_type = svc.get_derived(key)
    response = Response(data, content_type=content_type, headers={"Cache-Control": "private, max-age=60",
                                                                  "ETag": f'"{etag}"'})
    return ranged(response, len(data))


_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_DIGEST_ITEM = re.compile(r"\s*([A-Za-z0-9-]+)\s*=\s*:([A-Za-z0-9+/=]*):\s*")


def expected_sha256() -> str | None:
    """The SHA-256 the client says the upload has (hex), from ``X-Checksum-Sha256`` or ``Content-Digest``.

    On a multipart POST both describe the file, not the envelope around it.
    """
    found: list[str] = []
    given = request.headers.get("X-Checksum-Sha256")
    if given is not None:
        if not _SHA256_HEX.fullmatch(given.strip()):
            raise InvalidRequest("X-Checksum-Sha256: expected 64 hex digits")
        found.append(given.strip().lower())
    for item in filter(str.strip, request.headers.get("Content-Digest", "").split(",")):
        m = _DIGEST_ITEM.fullmatch(item)
        if m is None:
            raise InvalidRequest("Content-Digest: expected sha-256=:<base64>:")
        if m.group(1).lower() == "sha-256":
            try:
                raw = base64.b64decode(m.group(2), validate=True)
            except binascii.Error:
                raw = b""
            if len(raw) != 32:
                raise InvalidRequest("Content-Digest: sha-256 must be 32 bytes in base64")
            found.append(raw.hex())
    if len(set(found)) > 1:
        raise InvalidRequest("X-Checksum-Sha256 and Content-Digest disagree")
    return found[0] if found else None


def upload_response(name: str, sha256: str, status: int) -> Response:
    response = jsonify(name)
    response.status_code = status
    response.headers["Location"] = image_location(name)
    response.headers["X-Checksum-Sha256"] = sha256
    return response


@bp.post("/")
@describe(doc.POST_ROOT)
def post_root() -> Response:
    return post_image("")


@bp.post("/<path:path>")
@describe(doc.POST_IMAGE)
def post_image(path: str) -> Response:
    upload = request.files.get("file")
    if upload is None:
        raise InvalidRequest("file: a multipart/form-data field named 'file' is required")
    data = upload.read(service().settings.max_upload_bytes + 1)
    if len(data) > service().settings.max_upload_bytes:
        raise PayloadTooLarge("file: larger than max_upload_bytes")
    stored = service().upload(path, data, upload.filename, expected_sha256=expected_sha256())
    return upload_response(stored.name, stored.sha256, 200)


@bp.put("/<path:path>")
@describe(doc.PUT_IMAGE)
def put_image(path: str) -> Response:
    if "renderings" in request.args:
        return put_rendering(path, request.args["renderings"])
    data = request.get_data(cache=False)
    if len(data) > service().settings.max_upload_bytes:
        raise PayloadTooLarge("body: larger than max_upload_bytes")
    stored = service().upload(path, data, None, replace=True, expected_sha256=expected_sha256())
    return upload_response(stored.name, stored.sha256, 201 if stored.created else 200)


@bp.delete("/<path:path>")
@describe(doc.DELETE_IMAGE)
def delete_image(path: str) -> Response:
    svc = service()
    name = svc.validate_name(path)
    if "renderings" in request.args:
        svc.renderings.delete(svc.resolve_path(path)[0], request.args["renderings"])
        return Response(status=204)
    svc.delete(name)
    return Response(status=204)


def put_rendering(path: str, rname: str) -> Response:
    """``PUT /images/<name>?renderings=<rname>``: a named rendering of a multichannel image, as JSON."""
    svc = service()
    original, _ = svc.resolve_path(path)
    existed = rname in svc.renderings.saved(original.name)
    saved = svc.renderings.save(original, rname, request.get_data(cache=False))
    response = jsonify(saved)
    response.status_code = 200 if existed else 201
    return response


__all__ = ["bp", "signed_bp", "DerivationSpec", "KINDS"]
