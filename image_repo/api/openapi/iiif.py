"""Descriptions of api/iiif.py's route: the IIIF Image API 3 and 2 over one path pattern."""
from __future__ import annotations

from .parts import OPTIONAL_TOKEN, errors, header, json_answer, path_param

IIIF = {
    "summary": "IIIF Image API 3 (/iiif/3) and 2 (/iiif/2)",
    "description": "`{rest}` is `<identifier>/info.json` (the image information, JSON-LD), "
                   "`<identifier>/<region>/<size>/<rotation>/<quality>.<format>` (an image request) or "
                   "`<identifier>` (a 303 to its info.json). The identifier is the image name, with `/` "
                   "escaped as `%2F`. Answers carry `Access-Control-Allow-Origin: *`.",
    "tags": ["iiif"],
    "security": OPTIONAL_TOKEN,
    "parameters": [
        path_param("version", {"type": "string", "enum": ["3", "2"]}, "The IIIF Image API version."),
        path_param("rest", description="What is asked of which image.", example="site1%2Fphoto/info.json"),
    ],
    "responses": {
        "200": {"description": "The image, or its information.", "headers": {"ETag": header("Strong.")},
                "content": {"image/*": {"schema": {"type": "string", "format": "binary"}},
                            "application/ld+json": {"schema": {"type": "object"}},
                            "application/json": {"schema": {"type": "object"}}}},
        "303": {"description": "The base URI: see its info.json.", "headers": {"Location": header("The info.json.")}},
        "304": {"description": "Not modified (If-None-Match matched)."},
        **errors(400, 401, 404, 413, 415, 422, 503),
    },
}
