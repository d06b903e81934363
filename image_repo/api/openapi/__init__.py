"""The OpenAPI 3.1 document of the server, served at ``/openapi.json``, built from the app's own routes.

Every route says what it does where it is defined: its view carries ``@describe(OPERATION)``,
with the operation (parameters, bodies, answers) in this package's module named for its
blueprint (``openapi/images.py`` for ``api/images.py``), made with the helpers of
``parts.py``. ``document(app)`` walks ``app.url_map``, so the paths, their methods and path
parameters come from the routes themselves (and the configured ``repository_base_pathname``),
and a route without a description is left out and named by ``undocumented(app)``, a
description of no route by ``stale(app)``: tests/api/test_openapi.py fails on either. A
route Flask itself adds (``static``) is described with ``describe_endpoint``.

Adding a route: write its operation in ``openapi/<blueprint>.py`` and put ``@describe(...)``
under the route decorator.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify
from werkzeug.routing import FloatConverter, IntegerConverter, Rule

from ... import __version__
from . import parts
from .health import OPENAPI, STATIC

F = TypeVar("F", bound=Callable[..., Any])
Operation = dict[str, Any]

ATTRIBUTE = "openapi_operations"
EXTENSION = "image_repo_openapi"
IMPLIED_METHODS = frozenset({"HEAD", "OPTIONS"})
"""Methods Werkzeug adds to every GET (HEAD) and every route (OPTIONS): not described one by one."""
_ARGUMENT = re.compile(r"<(?:[^<>:]+(?:\([^<>]*\))?:)?([^<>:]+)>")

bp = Blueprint("openapi", __name__)

_DESCRIBED: list[Callable[..., Any]] = []
"""Every view ``describe`` marked, so ``stale`` can name one that no route serves."""


def describe(operation: Operation | None = None, **by_method: Operation) -> Callable[[F], F]:
    """Attach the OpenAPI operation of a view (for each of its methods, or ``get=...`` per method)."""

    def mark(view: F) -> F:
        ops = dict(getattr(view, ATTRIBUTE, {}))
        if operation is not None:
            ops["*"] = operation
        ops.update({method.lower(): op for method, op in by_method.items()})
        setattr(view, ATTRIBUTE, ops)
        _DESCRIBED.append(view)
        return view

    return mark


def describe_endpoint(app: Flask, endpoint: str, operation: Operation) -> None:
    """Describe a route whose view is not ours to decorate (Flask's ``static``)."""
    app.extensions.setdefault(EXTENSION, {}).setdefault("endpoints", {})[endpoint] = {"*": operation}


def openapi_path(rule: Rule) -> str:
    """``/images/<path:path>`` -> ``/images/{path}``."""
    return _ARGUMENT.sub(lambda m: "{" + m.group(1) + "}", rule.rule)


def described_methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - IMPLIED_METHODS)


def _operations(app: Flask, rule: Rule) -> dict[str, Operation]:
    described = app.extensions.get(EXTENSION, {}).get("endpoints", {})
    if rule.endpoint in described:
        ops: dict[str, Operation] = described[rule.endpoint]
        return ops
    return getattr(app.view_functions.get(rule.endpoint), ATTRIBUTE, {})


def _path_parameters(rule: Rule, op: Operation) -> list[dict[str, Any]]:
    given = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
    out = []
    for name in sorted(rule.arguments - given):
        converter = rule._converters.get(name)  # Werkzeug keeps the converters private; their type decides
        schema = {"type": "integer" if isinstance(converter, IntegerConverter)
                  else "number" if isinstance(converter, FloatConverter) else "string"}
        out.append(parts.path_param(name, schema))
    return out


def undocumented(app: Flask) -> list[str]:
    """``METHOD /path`` of every route of ``app`` that has no description."""
    missing = []
    for rule in app.url_map.iter_rules():
        ops = _operations(app, rule)
        for method in described_methods(rule):
            if method.lower() not in ops and "*" not in ops:
                missing.append(f"{method} {rule.rule} (endpoint {rule.endpoint})")
    return missing


def stale(app: Flask) -> list[str]:
    """Descriptions of no route of ``app``: a method the view's routes lack, an endpoint that is
    gone, a described view of this package that no route serves."""
    found = []
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(m.lower() for m in described_methods(rule))
    for endpoint, view in app.view_functions.items():
        for method in set(getattr(view, ATTRIBUTE, {})) - {"*"} - methods.get(endpoint, set()):
            found.append(f"{method.upper()} of endpoint {endpoint}: no such route")
    for endpoint in app.extensions.get(EXTENSION, {}).get("endpoints", {}):
        if endpoint not in methods:
            found.append(f"endpoint {endpoint}: no such route")
    served = set(app.view_functions.values())
    for view in _DESCRIBED:
        if view.__module__.startswith("image_repo.") and view not in served:
            found.append(f"{view.__module__}.{view.__qualname__}: described, but no route serves it")
    return found


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every described route of ``app``."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        ops = _operations(app, rule)
        for method in described_methods(rule):
            op = ops.get(method.lower(), ops.get("*"))
            if op is None:
                continue
            entry = copy.deepcopy(op)
            entry["parameters"] = _path_parameters(rule, entry) + entry.get("parameters", [])
            if not entry["parameters"]:
                del entry["parameters"]
            entry.setdefault("operationId", f"{rule.endpoint}.{method.lower()}")
            paths.setdefault(openapi_path(rule), {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "image_repo",
            "version": __version__,
            "description": parts.API_DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": parts.components(),
    }


@bp.get("/openapi.json")
@describe(OPENAPI)
def openapi_json() -> Response:
    cached = current_app.extensions.setdefault(EXTENSION, {})
    if "document" not in cached:  # routes do not change once the app serves
        cached["document"] = document(current_app)
    response = jsonify(cached["document"])
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def register(app: Flask) -> None:
    """Serve ``/openapi.json`` and describe the routes Flask adds itself."""
    app.register_blueprint(bp)
    if "static" in app.view_functions:
        describe_endpoint(app, "static", STATIC)


__all__ = ["bp", "describe", "describe_endpoint", "document", "openapi_path", "register", "stale", "undocumented"]
