"""The IIIF Image API routes: ``/iiif/3/...`` (3.0) and ``/iiif/2/...`` (2.1), compliance level 2.

``{identifier}/info.json``, ``{identifier}/{region}/{size}/{rotation}/{quality}.{format}``,
and the base URI ``{identifier}``, which redirects to its info.json. The identifier is the
image name with ``/`` escaped as ``%2F``. WSGI servers decode ``%2F`` in PATH_INFO, so
the raw request target (Gunicorn's ``RAW_URI``, else ``REQUEST_URI``) tells ``a%2Fb`` (the
image ``a/b``) from ``a/b`` (a 404: an unescaped slash). Every answer carries CORS ``*``;
read tokens are checked as for /images.
"""
from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, unquote

from flask import Blueprint, Response, current_app, redirect, request

from ..errors import ImageRepoError, NotFound
from ..iiif import CONTEXT, PROFILE, info_json, parse_request
from ..service.images import ImageService, Original
from . import images
from .openapi import describe
from .openapi import iiif as doc

bp = Blueprint("iiif", __name__)
VERSIONS = {"3": 3, "2": 2}
UNESCAPED = "identifier: not found; a '/' in an identifier is escaped as %2F"


def service() -> ImageService:
    svc: ImageService = current_app.extensions["image_repo"]
    return svc


@bp.before_request
def check_token() -> None:
    if request.method != "OPTIONS":  # a CORS preflight carries no credentials
        images.check_token()


@bp.after_request
def cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, If-None-Match"
        response.headers["Access-Control-Max-Age"] = "86400"
    else:
        response.headers["Access-Control-Expose-Headers"] = "ETag, Link"
    return response


IMAGE_RULE = "/<any('3', '2'):version>/<path:rest>"
"""The rule of every IIIF answer; under the blueprint's /iiif, the route /metrics counts them by."""


@bp.route(IMAGE_RULE, methods=["GET", "HEAD"])
@describe(doc.IIIF)
def iiif(version: str, rest: str) -> Response:
    v = VERSIONS[version]
    what, identifier, raw_identifier, params = split(rest)
    original = find(identifier)
    base = f"{request.url_root.rstrip('/')}/iiif/{version}/{raw_identifier}"
    if what == "base":
        return redirect(f"{base}/info.json", 303)  # type: ignore[return-value]
    if what == "info":
        return info(v, original, base)
    return image(v, original, base, params)


def split(rest: str) -> tuple[str, str, str, list[str]]:
    """(``base``/``info``/``image``, identifier, the identifier as the client escaped it, the image parameters)."""
    raw = raw_path()
    if raw is None:  # a server that keeps no raw path: read the decoded one as best we can
        segments = rest.split("/")
        if rest.endswith("/info.json"):
            return "info", rest[: -len("/info.json")], quote(rest[: -len("/info.json")], safe=""), []
        if len(segments) >= 5 and "." in segments[-1]:
            name = "/".join(segments[:-4])
            return "image", name, quote(name, safe=""), segments[-4:]
        return "base", rest, quote(rest, safe=""), []
    segments = raw.split("/")
    counts = (2,) if segments[-1] == "info.json" else (5, 1)
    for count in counts:
        tail = segments[-count:]
        if len(segments) > count and _unquote("/".join(tail)) == rest:
            params = [_unquote(part) for part in tail[1:]]
            identifier = _unquote(tail[0])
            what = "info" if count == 2 else "image" if count == 5 else "base"
            return what, identifier, tail[0], params
    raise NotFound(UNESCAPED)


def raw_path() -> str | None:
    """The request's path as the client sent it (still percent-escaped), or None."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return None
    raw = raw.split("?", 1)[0].split("#", 1)[0]
    if not raw.startswith("/"):  # the absolute form, http://host/path
        raw = "/" + raw.partition("://")[2].partition("/")[2]
    try:
        return str(raw.encode("latin-1").decode("utf-8"))  # WSGI strings carry bytes as latin-1
    except UnicodeError:
        return str(raw)


def _unquote(text: str) -> str:
    # As Werkzeug decodes the path: bytes that are not UTF-8 become U+FFFD, which no name or parameter holds.
    return unquote(text, errors="replace")


def find(identifier: str) -> Original:
    svc = service()
    try:
        name = svc.validate_name(identifier)
    except ImageRepoError as e:
        raise NotFound(f"identifier: {e.message}") from None
    original = svc.find(name)
    if original is None:
        raise NotFound(f"identifier: no image named '{name}'")
    return original


def info(version: int, original: Original, image_id: str) -> Response:
    svc = service()
    source = svc.iiif.source(original)
    doc = info_json(version, source.info, image_id, max_area=svc.settings.max_output_pixels,
                    extra_qualities=svc.iiif.extra_qualities(original, source))
    body = json.dumps(doc).encode()
    etag = hashlib.sha256(body).hexdigest()[:32]
    ld = wants_json_ld()
    content_type = f'application/ld+json;profile="{CONTEXT[version]}"' if ld else "application/json"
    links = [f'<{PROFILE[version]}>;rel="profile"']
    if not ld:  # how a JSON-LD processor finds the context of a document served as plain JSON
        links.append(f'<{CONTEXT[version]}>;rel="http://www.w3.org/ns/json-ld#context";type="application/ld+json"')
    headers = {"ETag": f'"{etag}"', "Cache-Control": svc.settings.cache_control, "Vary": "Accept",
               "Link": ", ".join(links)}
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    return Response(body, content_type=content_type, headers=headers)


def wants_json_ld() -> bool:
    """Whether the Accept header prefers JSON-LD to JSON; its media types may carry parameters
    (``application/ld+json;profile="..."``), which Werkzeug's best_match would not match."""
    ld = plain = 0.0
    for value, quality in request.accept_mimetypes:
        media = value.split(";", 1)[0].strip().lower()
        if media == "application/ld+json":
            ld = max(ld, quality)
        elif media in ("application/json", "application/*", "*/*"):
            plain = max(plain, quality)
    return ld > 0 and ld >= plain


def image(version: int, original: Original, image_id: str, params: list[str]) -> Response:
    svc = service()
    parsed = parse_request(version, *params)
    source = svc.iiif.source(original)
    resolved = svc.iiif.resolve(original, source, parsed)
    etag = svc.iiif.etag(original, resolved)
    canonical = f"{image_id}/{resolved.canonical(version, svc.settings.max_output_pixels)}"
    headers = {"ETag": f'"{etag}"', "Cache-Control": svc.settings.cache_control,
               "Link": f'<{PROFILE[version]}>;rel="profile", <{canonical}>;rel="canonical"'}
    if request.if_none_match and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    rendered = svc.iiif.image(original, source, resolved)
    headers["X-Image-Repo-Cache"] = "hit" if rendered.cached else "miss"
    return Response(rendered.data, content_type=rendered.content_type, headers=headers)
