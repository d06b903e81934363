"""Liveness, readiness and counters."""
from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify

from .openapi import describe
from .openapi import health as doc

bp = Blueprint("health", __name__)


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
    """This worker's counters: derivations made, cache hits, per-level cache figures.

    ``pid`` says which worker answered, so a client can add the figures up over workers.
    """
    return jsonify(pid=os.getpid(), **current_app.extensions["image_repo"].stats())
