"""Pieces the descriptions are made of: parameters, bodies, answers, and the shared components.

Every error of the server is the JSON ``{"message": ...}`` of api/errors.py; ``errors(...)``
names which statuses an operation may answer with it.
"""
from __future__ import annotations

from typing import Any

from ...imaging.formats import INPUT_KINDS, KINDS
from ...imaging.spec import FALSE_WORDS, MAX_SIDE, TRUE_WORDS

Json = dict[str, Any]

API_DESCRIPTION = (
    "A stateless image repository: originals kept byte for byte in an object store, derived "
    "images (scaled, thumbnails, other formats, metadata stripped, EXIF orientation applied) made "
    "on request and cached. Every error is a JSON object with a `message` saying what was wrong. "
    "When the server has `write_tokens` (or `read_tokens`), writes (or reads) need "
    "`Authorization: Bearer <token>`."
)

BOOLEAN_WORDS = sorted(TRUE_WORDS) + sorted(FALSE_WORDS)
OUTPUT_KIND_WORDS = sorted({ext for kind in KINDS.values() for ext in kind.extensions})
IMAGE_TYPES = sorted({kind.content_type for kind in INPUT_KINDS.values()})

_STATUS_TEXT = {
    400: "Invalid request: the message names the parameter or header and what is wrong with it.",
    401: "A bearer token is needed (or the one given is not valid for this request).",
    403: "A signed URL whose signature does not match, or that has expired.",
    404: "No such image, import or object.",
    409: "The name is taken (use PUT to replace), or the import is in a state that does not allow it.",
    413: "Too large: the body (max_upload_bytes), the image (max_pixels), the result (max_output_pixels) or the zip (max_zip_images).",
    415: "Not an image of a kind this server reads.",
    416: "The byte range starts beyond the end; Content-Range says the length.",
    422: "An image of a supported kind that cannot be used: corrupt, truncated, or an empty size.",
    503: "A store is unreachable, or too many derivations are waiting; retry after Retry-After seconds.",
}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    416: {"Content-Range": {"schema": {"type": "string"}, "description": "bytes */<length>"}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}},
}


def errors(*statuses: int) -> dict[str, Json]:
    """The error answers (JSON ``{"message"}``) an operation may give, by status."""
    return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in statuses}


def json_answer(description: str, schema: Json, headers: Json | None = None) -> Json:
    answer: Json = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def header(description: str, schema: Json | None = None) -> Json:
    return {"description": description, "schema": schema or {"type": "string"}}


def path_param(name: str, schema: Json | None = None, description: str = "", example: str | None = None) -> Json:
    param: Json = {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}
    if description:
        param["description"] = description
    if example is not None:
        param["example"] = example
    return param


def query(name: str, schema: Json, description: str, example: Any = None) -> Json:
    param: Json = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    if example is not None:
        param["example"] = example
    return param


def request_header(name: str, schema: Json, description: str) -> Json:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


BOOLEAN: Json = {"type": "string", "enum": BOOLEAN_WORDS}
SIDE: Json = {"type": "integer", "minimum": 1, "maximum": MAX_SIDE}
SHA256_HEX: Json = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}

_METADATA: Json = {
    "type": "object",
    "required": ["name", "key", "bytes", "sha256", "content_type", "format", "mode", "width", "height",
                 "orientation", "display_width", "display_height", "frames"],
    "properties": {
        "name": {"type": "string"},
        "key": {"type": "string", "description": "The original's object key in the store."},
        "bytes": {"type": "integer", "minimum": 0},
        "sha256": {"type": "string"},
        "content_type": {"type": "string"},
        "format": {"type": "string", "enum": sorted(INPUT_KINDS)},
        "mode": {"type": "string", "description": "Pillow's mode of the stored pixels (RGB, L, CMYK...)."},
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "orientation": {"type": "integer", "minimum": 1, "maximum": 8},
        "display_width": {"type": "integer"}, "display_height": {"type": "integer"},
        "frames": {"type": "integer", "minimum": 1},
        "make": {"type": "string"}, "model": {"type": "string"}, "lens": {"type": "string"},
        "exposure_time": {"type": "string"}, "f_number": {"type": "number"}, "iso": {"type": "integer"},
        "focal_length": {"type": "number"}, "datetime_original": {"type": "string"},
        "software": {"type": "string"},
        "gps": {"type": "object", "description": "Only when the server has expose_gps."},
    },
}
_TEMP_URL: Json = {
    "type": "object",
    "required": ["url", "expires"],
    "properties": {"url": {"type": "string"}, "expires": {"type": "integer", "description": "Unix time."}},
}
_IMPORT: Json = {
    "type": "object",
    "required": ["name", "sha256", "size", "state"],
    "properties": {
        "id": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "sha256": {"type": "string"},
        "size": {"type": "integer"},
        "state": {"type": "string", "enum": ["created", "uploaded", "processing", "done", "failed"]},
        "reason": {"type": ["string", "null"], "description": "Why an import failed."},
        "expires": {"type": "integer"},
        "upload_url": {"type": "string", "description": "Where to PUT the bytes (a new import only)."},
        "upload_method": {"type": "string", "enum": ["PUT"]},
        "upload_headers": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def components() -> Json:
    """The shared schemas, error answers and the bearer scheme."""
    responses = {
        f"Error{status}": json_answer(text, ref("Error"), _ERROR_HEADERS.get(status))
        for status, text in _STATUS_TEXT.items()
    }
    return {
        "schemas": {
            "Error": {"type": "object", "required": ["message"], "additionalProperties": False,
                      "properties": {"message": {"type": "string"}}},
            "Metadata": _METADATA,
            "TempUrl": _TEMP_URL,
            "NamedTempUrl": {**_TEMP_URL, "required": ["name", "url", "expires"],
                             "properties": {**_TEMP_URL["properties"], "name": {"type": "string"}}},
            "Import": _IMPORT,
        },
        "responses": responses,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "One of the server's write_tokens or read_tokens."}},
    }


OPTIONAL_TOKEN: list[Json] = [{}, {"bearer": []}]
"""Security of a route: open unless the server is configured with tokens."""
