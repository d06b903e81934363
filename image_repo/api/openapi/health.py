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
_PROMETHEUS_TEXT = {"schema": {"type": "string"}}
METRICS = {
    "summary": "Figures of every worker, summed",
    "description": ("The Prometheus text format (`application/openmetrics-text` when `Accept` asks for it) of "
                    "every Gunicorn worker's figures summed: requests by route and status with latency histograms, "
                    "derivations, cache hits per level, bytes served, store errors, import and pyramid states, the "
                    "derivation limiter's queue. With `Accept: application/json`: this worker's counters as JSON; "
                    "`pid` names the worker."),
    "tags": ["operations"],
    "responses": {"200": {
        "description": "The figures.",
        "content": {
            "text/plain": _PROMETHEUS_TEXT,
            "application/openmetrics-text": _PROMETHEUS_TEXT,
            "application/json": {"schema": {"type": "object", "required": ["pid", "counters"],
                                             "properties": {"pid": {"type": "integer"},
                                                            "counters": {"type": "object"},
                                                            "cache": {"type": "object"}}}},
        },
    }},
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
