"""Descriptions of api/imports.py's routes: direct-to-store imports of large originals."""
from __future__ import annotations

from .images import EXAMPLE_IMAGE
from .parts import OPTIONAL_TOKEN, errors, json_answer, path_param, query, ref

IMPORT_ID = path_param("import_id", {"type": "string"}, "The import's id (32 hex digits).")

OFFER = {
    "summary": "Whether direct imports are offered, and their limits",
    "tags": ["imports"],
    "security": OPTIONAL_TOKEN,
    "responses": {"200": json_answer("The offer.", {
        "type": "object", "required": ["direct", "max_import_bytes", "lifetime"],
        "properties": {"direct": {"type": "boolean"}, "max_import_bytes": {"type": "integer"},
                       "lifetime": {"type": "integer"}}}), **errors(401, 503)},
}
CREATE = {
    "summary": "Start an import: where to PUT the bytes",
    "description": "201 with an upload URL (a Swift TempURL, an S3 presigned PUT, or this server's signed "
                   "route); 200 and state `done` when the same bytes are already stored under the name. "
                   "Needs url_key (else 400).",
    "tags": ["imports"],
    "security": OPTIONAL_TOKEN,
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["name", "sha256", "size"],
                   "properties": {"name": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                  "size": {"type": "integer", "minimum": 1}, "replace": {"type": "boolean"}}},
        "example": {"name": "site1/imported", "size": len(EXAMPLE_IMAGE),
                    "sha256": "0" * 64}}}},
    "responses": {"201": json_answer("Created.", ref("Import")), "200": json_answer("Already there.", ref("Import")),
                  **errors(400, 401, 409, 413, 503)},
}
STATUS = {
    "summary": "An import's state",
    "tags": ["imports"],
    "security": OPTIONAL_TOKEN,
    "parameters": [IMPORT_ID],
    "responses": {"200": json_answer("Its record.", ref("Import")), **errors(401, 404, 503)},
}
COMPLETE = {
    "summary": "The bytes are sent: verify and place them",
    "tags": ["imports"],
    "security": OPTIONAL_TOKEN,
    "parameters": [IMPORT_ID],
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["complete"], "properties": {"complete": {"const": True}}}}}},
    "responses": {"200": json_answer("Done or failed (see reason).", ref("Import")),
                  "202": json_answer("Still being processed: ask again.", ref("Import")),
                  **errors(400, 401, 404, 409, 503)},
}
CANCEL = {
    "summary": "Cancel an import and remove what was sent",
    "tags": ["imports"],
    "security": OPTIONAL_TOKEN,
    "parameters": [IMPORT_ID],
    "responses": {"200": json_answer("Its record.", ref("Import")), **errors(401, 404, 409, 503)},
}
RECEIVE = {
    "summary": "The import's bytes, on this server's signed upload URL (file stores)",
    "tags": ["imports"],
    "parameters": [IMPORT_ID, query("temp_url_sig", {"type": "string"}, "HMAC-SHA256 signature."),
                   query("temp_url_expires", {"type": "string"}, "Unix time the URL expires.")],
    "requestBody": {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}},
    "responses": {"201": {"description": "Received."}, **errors(400, 401, 403, 404, 409, 413, 503)},
}
