"""Prometheus figures of the whole server, summed over Gunicorn's workers.

``figures`` holds the metrics every part counts into (import it only in a process that
serves or works: it creates the metrics, and with them each worker's files); ``multiproc``
prepares the directory the workers share and is all the Gunicorn master imports;
``exposition`` renders ``/metrics``. This module itself imports nothing, so the master can
reach ``multiproc`` without creating metrics of its own.
"""
from __future__ import annotations

ROUTE = "image_repo.route"
"""WSGI environ key where the app (or the fast path) names the route a request took, for the access hook."""
