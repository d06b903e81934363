"""Descriptions of api/images.py's routes: the /images API of 2016, and the signed-URL route."""
from __future__ import annotations

from .parts import (
    BOOLEAN,
    IMAGE_TYPES,
    OPTIONAL_TOKEN,
    OUTPUT_KIND_WORDS,
    SHA256_HEX,
    SIDE,
    errors,
    header,
    json_answer,
    path_param,
    query,
    ref,
    request_header,
)

EXAMPLE_IMAGE = "P3\n2 2\n255\n255 0 0  0 255 0\n0 0 255  255 255 0\n"
"""A 2x2 plain PPM: an image made of text, so the examples below can upload it."""

NAME = path_param(
    "path", description="An image name: a UTF-8 path (`site1/été/photo`); `..`, `.`, empty segments, "
    "segments starting with `.`, backslashes and control characters are refused. On a GET a known image "
    "extension (`photo.png`) names the image `photo` and, with no `kind`, the output format.",
    example="site1/photo",
)
UPLOAD_NAME = {**NAME, "example": "site1/new"}

_IMAGE_CONTENT = {"image/*": {"schema": {"type": "string", "format": "binary"}},
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_ANSWER_HEADERS = {
    "ETag": header("Strong: changes with the original's bytes and with what was asked."),
    "Cache-Control": header("cache_control for derived images; `private, no-cache` for original=true."),
    "Accept-Ranges": header("`bytes`"),
    "Vary": header("`Accept` when format_negotiation chose the kind; `Origin` when cors_origins lists origins."),
}
_ONE_OR_SEVERAL = {
    "anyOf": [ref("Metadata"), ref("TempUrl"), {"type": "array", "items": ref("Metadata")},
              {"type": "array", "items": ref("NamedTempUrl")}],
}

GET_PARAMETERS = [
    query("xsize", SIDE, "Fit within this width, aspect kept, never upscaled.", 200),
    query("ysize", SIDE, "Fit within this height, aspect kept, never upscaled."),
    query("thumbnail", BOOLEAN, "A sharpened thumbnail, in thumbnail_default_size unless xsize/ysize say otherwise."),
    query("kind", {"type": "string", "enum": OUTPUT_KIND_WORDS},
          "Output format (case-insensitive). Unset: the path's extension, else default_kind, or with "
          "format_negotiation AVIF or WebP when the request's Accept prefers them.", "png"),
    query("meta", BOOLEAN, "JSON metadata of the original instead of the image."),
    query("url", BOOLEAN, "JSON with a temporary URL to the derived image in the store (needs url_key)."),
    query("original", BOOLEAN, "The stored bytes as uploaded, metadata intact (a writer's right when write_tokens are set)."),
    query("regex", {"type": "string", "minLength": 1},
          "Select every image under the path whose whole name matches (RE2); several are a zip."),
    query("channels", {"type": "string"},
          "A multichannel image composited inline: `index:RRGGBB:low:high[:gamma],...` (at most 16).",
          "0:0000FF:500:4000,3:FF0000:200:9000"),
    query("rendering", {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
          "A multichannel image composited by one of its saved renderings (`default`: made at build time)."),
    request_header("Range", {"type": "string"}, "One byte range (`bytes=0-1023`); any other Range is ignored."),
    request_header("If-Range", {"type": "string"}, "Honour Range only for this ETag."),
    request_header("If-None-Match", {"type": "string"}, "304 when the ETag matches, with nothing derived."),
]

_GET_RESPONSES = {
    "200": {
        "description": "The image; or JSON (meta=true, url=true); or a zip of several images "
                       "(members `<name>.<kind>`, at most max_zip_images).",
        "headers": _ANSWER_HEADERS,
        "content": {**_IMAGE_CONTENT, "application/json": {"schema": _ONE_OR_SEVERAL},
                    "application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    "206": {"description": "The byte range asked for.", "headers": {
        **_ANSWER_HEADERS, "Content-Range": header("`bytes <first>-<last>/<length>`")}, "content": _IMAGE_CONTENT},
    "304": {"description": "Not modified (If-None-Match matched).", "headers": _ANSWER_HEADERS},
    **errors(400, 401, 404, 413, 415, 416, 422, 503),
}

GET_IMAGE = {
    "summary": "An image, derived as asked",
    "description": "Metadata stripped, EXIF orientation applied, colour converted to sRGB. A path "
                   "ending in `/`, or `regex=`, selects several images: a zip (or JSON arrays with "
                   "meta/url); one match answers the image itself. Other image kinds: "
                   + ", ".join(IMAGE_TYPES) + " (original=true answers the stored type).",
    "tags": ["images"],
    "security": OPTIONAL_TOKEN,
    "parameters": [NAME, *GET_PARAMETERS],
    "responses": _GET_RESPONSES,
}
GET_ROOT = {**GET_IMAGE, "summary": "Every image, as a zip (or one image, if there is only one)",
            "parameters": GET_PARAMETERS}
LIST = {
    "summary": "Names of the images",
    "tags": ["images"],
    "security": OPTIONAL_TOKEN,
    "description": "Without `limit` and `marker`, every name. With either, one page in the same order: at most "
                   "`limit` names after `marker`, read from the marker on; while more follow, a `Link` header "
                   "`<...>; rel=\"next\"` gives the next page's URL.",
    "parameters": [query("regex", {"type": "string", "minLength": 1}, "Only names it matches whole (RE2 syntax).",
                         "site1/.*"),
                   query("limit", {"type": "integer", "minimum": 1, "maximum": 10000},
                         "Names per page (a marker alone: 1000).", 100),
                   query("marker", {"type": "string"}, "The page starts after this name (the last of the page before).",
                         "site1/photo")],
    "responses": {"200": json_answer("The names.", {"type": "array", "items": {"type": "string"}},
                                     {"Link": header('`<...&marker=<last>>; rel="next"` while more follow (paged only).')}),
                  **errors(400, 401, 503)},
}

_CHECKSUMS = [
    request_header("X-Checksum-Sha256", SHA256_HEX, "The SHA-256 of the image (hex); a mismatch stores nothing."),
    request_header("Content-Digest", {"type": "string"}, "`sha-256=:<base64>:` (RFC 9530), the same check."),
]
_STORED_HEADERS = {"Location": header("The image's URL."), "X-Checksum-Sha256": header("SHA-256 of the stored bytes.")}
_WRITE_ERRORS = errors(400, 401, 413, 415, 422, 503)

POST_IMAGE = {
    "summary": "Upload a new image (multipart)",
    "description": "Stored byte for byte. A path ending in `/` appends the upload's own filename; an "
                   "extension on the path is dropped from the name. The same bytes again succeed; other "
                   "bytes under a taken name are a 409.",
    "tags": ["images"],
    "security": OPTIONAL_TOKEN,
    "parameters": [UPLOAD_NAME, *_CHECKSUMS],
    "requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["file"],
                   "properties": {"file": {"type": "string", "format": "binary"}}},
        "example": {"file": EXAMPLE_IMAGE}}}},
    "responses": {"200": json_answer("Stored: the image's name.", {"type": "string"}, _STORED_HEADERS),
                  **errors(409), **_WRITE_ERRORS},
}
POST_ROOT = {**POST_IMAGE, "summary": "Upload a new image named by its filename",
             "parameters": _CHECKSUMS}
PUT_IMAGE = {
    "summary": "Create or replace an image (raw body)",
    "description": "A replaced original never serves an old derivative. With `renderings=`: a 404 when there is no such image.",
    "tags": ["images"],
    "security": OPTIONAL_TOKEN,
    "parameters": [UPLOAD_NAME, *_CHECKSUMS,
                   query("renderings", {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
                         "Instead of an image: save the JSON body `{\"channels\": [{\"index\", \"colour\", "
                         "\"low\", \"high\", \"gamma\"?}]}` as this multichannel image's rendering of that name "
                         "(an IIIF quality of its own).")],
    "requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}, "example": EXAMPLE_IMAGE},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "object"}}}},
    "responses": {"201": json_answer("Created.", {"type": "string"}, _STORED_HEADERS),
                  "200": json_answer("Replaced (or the same bytes again).", {"type": "string"}, _STORED_HEADERS),
                  **errors(404), **_WRITE_ERRORS},
}
DELETE_IMAGE = {
    "summary": "Remove an image and its derivatives",
    "tags": ["images"],
    "security": OPTIONAL_TOKEN,
    "parameters": [{**NAME, "example": "site1/old"},
                   query("renderings", {"type": "string"}, "Remove only this saved rendering of the image.")],
    "responses": {"204": {"description": "Removed."}, **errors(400, 401, 404, 503)},
}
GET_SIGNED = {
    "summary": "A derived image by a URL this server signed (url=true on a file store)",
    "tags": ["images"],
    "parameters": [
        path_param("key", description="The derived image's key in the cache store."),
        query("temp_url_sig", {"type": "string"}, "HMAC-SHA256 signature."),
        query("temp_url_expires", {"type": "string"}, "Unix time the URL expires."),
        request_header("Range", {"type": "string"}, "One byte range."),
        request_header("If-None-Match", {"type": "string"}, "304 when the ETag matches."),
    ],
    "responses": {
        "200": {"description": "The derived image.", "headers": _ANSWER_HEADERS, "content": _IMAGE_CONTENT},
        "206": {"description": "The byte range asked for.", "content": _IMAGE_CONTENT},
        "304": {"description": "Not modified."},
        **errors(401, 403, 404, 416, 503),
    },
}
