"""Liveness, readiness and figures."""
from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify, request

from ..metrics import exposition

from .openapi import describe
from .openapi import health as doc

bp = Blueprint("health", __name__)

JSON = "application/json"
_OFFERED = ["text/plain", "application/openmetrics-text", JSON]
"""Prometheus text first: a client that names no preference (``*/*``, no Accept) gets it."""


@bp.get("/healthz")
@describe(doc.HEALTHZ)
def healthz() -> Response:
    """The process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
@describe(doc.READYZ)
def readyz() -> Response:
    """Both stores answer (503 naming the one that does not)."""
    return jsonify(status="ok", **current_app.extensions["image_repo"].ready())


@bp.get("/metrics")
@describe(doc.METRICS)
def metrics() -> Response:
    """Every worker's figures summed, in the Prometheus text format; JSON when ``Accept`` prefers it.

    The JSON is this worker's own counters (derivations, cache hits, per-level cache figures)
    as before, with ``pid`` saying which worker answered, so a client can add them up over workers.
    """
    if request.accept_mimetypes.best_match(_OFFERED, default="text/plain") == JSON:
        response = jsonify(pid=os.getpid(), **current_app.extensions["image_repo"].stats())
    else:
        body, content_type = exposition.render(request.headers.get("Accept"))
        response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("Accept")
    return response
