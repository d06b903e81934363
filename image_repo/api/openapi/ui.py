"""Descriptions of ui/pages.py's routes: the browse page and its hashed assets."""
from __future__ import annotations

from .parts import errors, path_param

INDEX = {
    "summary": "The browse page, for a browser",
    "description": "Answers HTML to a request that prefers `text/html` (a browser's navigation); to any "
                   "other (API clients, `*/*`) the JSON 404 this path always gave.",
    "tags": ["browse page"],
    "responses": {"200": {"description": "The page (no data in it: its scripts read the JSON API).",
                          "content": {"text/html": {"schema": {"type": "string"}}}},
                  **errors(404)},
}
ASSET = {
    "summary": "A script, style or icon of the browse page, by its content-hashed name",
    "tags": ["browse page"],
    "parameters": [path_param("hashed", description="`<name>.<hash>.<ext>` as the page names it.",
                              example="main.0123456789abcdef.js")],
    "responses": {"200": {"description": "The file, cached for a year (`immutable`).",
                          "content": {"*/*": {"schema": {}}}},
                  "304": {"description": "Not modified (`If-None-Match`)."},
                  **errors(404)},
}
