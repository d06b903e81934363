"""Descriptions of api/health.py's routes, of /openapi.json itself and of Flask's static route."""
from __future__ import annotations

from .parts import errors, json_answer

HEALTHZ = {
    "summary": "The process answers",
    "tags": ["operations"],
    "responses": {"200": json_answer("Alive.", {"type": "object", "required": ["status"],
                                                "properties": {"status": {"const": "ok"}}})},
}
READYZ = {
    "summary": "Both stores answer",
    "tags": ["operations"],
    "responses": {
        "200": json_answer("Ready.", {"type": "object", "required": ["status", "store", "cache_store"],
                                      "properties": {"status": {"const": "ok"}, "store": {"const": "ok"},
                                                     "cache_store": {"const": "ok"}}}),
        **errors(503),
    },
}
METRICS = {
    "summary": "This worker's counters",
    "description": "Derivations, cache hits per level, uploads, intermediates, heap trims; `pid` names the worker.",
    "tags": ["operations"],
    "responses": {"200": json_answer("The counters.", {"type": "object", "required": ["pid", "counters"],
                                                       "properties": {"pid": {"type": "integer"},
                                                                      "counters": {"type": "object"},
                                                                      "cache": {"type": "object"}}})},
}
OPENAPI = {
    "summary": "This document",
    "tags": ["operations"],
    "responses": {"200": json_answer("The OpenAPI 3.1 description of every route.", {"type": "object"})},
}
STATIC = {
    "summary": "Flask's static files (of pages served here)",
    "tags": ["operations"],
    "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {"200": {"description": "The file.", "content": {"*/*": {"schema": {}}}}, **errors(404)},
}
