"""/openapi.json: every route described, nothing described that is not a route, a valid document."""
from __future__ import annotations

import pytest
import schemathesis
from flask import Blueprint, jsonify
from werkzeug.routing import Map, Rule

from image_repo.api.openapi import (
    IMPLIED_METHODS,
    describe,
    describe_endpoint,
    document,
    openapi_path,
    stale,
    undocumented,
)


def routes(app) -> set[tuple[str, str]]:
    return {(openapi_path(rule), method.lower()) for rule in app.url_map.iter_rules()
            for method in rule.methods - IMPLIED_METHODS}


def described(doc) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item}


def test_every_route_is_described_and_every_description_is_a_route(make_app):
    app = make_app()
    assert undocumented(app) == [], "describe these routes: see image_repo/api/openapi/__init__.py"
    assert stale(app) == [], "these descriptions describe no route"
    doc = document(app)
    assert described(doc) == routes(app)


def test_an_undescribed_route_is_named(make_app):
    app = make_app()
    extra = Blueprint("extra", __name__)

    @extra.get("/extra/<int:n>")
    def plain(n: int):
        return jsonify(n)

    @extra.post("/extra/<int:n>")
    @describe({"summary": "described", "responses": {"200": {"description": "ok"}}})
    def posted(n: int):
        return jsonify(n)

    app.register_blueprint(extra)
    assert undocumented(app) == ["GET /extra/<int:n> (endpoint extra.plain)"]
    doc = document(app)
    assert ("/extra/{n}", "get") not in described(doc)
    assert doc["paths"]["/extra/{n}"]["post"]["parameters"] == [
        {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}}]


def test_a_route_described_per_method(make_app):
    app = make_app()

    @app.route("/both", methods=["GET", "POST"])
    @describe(get={"summary": "g", "responses": {"200": {"description": "ok"}}})
    def both():
        return "x"

    assert undocumented(app) == ["POST /both (endpoint both)"]


def test_a_description_of_no_route_is_named(make_app):
    app = make_app()

    @app.get("/only-get")
    @describe(post={"summary": "p", "responses": {"200": {"description": "ok"}}})
    def only_get():
        return "x"

    describe_endpoint(app, "gone", {"responses": {}})
    assert stale(app) == ["POST of endpoint only_get: no such route", "endpoint gone: no such route"]


def test_the_base_path_is_the_configured_one(make_app):
    doc = document(make_app(repository_base_pathname="pics"))
    assert "/pics/{path}" in doc["paths"] and not any(p.startswith("/images") for p in doc["paths"])


def test_served_and_valid(make_app):
    app = make_app()
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200 and r.is_json
    doc = r.get_json()
    assert doc["openapi"].startswith("3.1") and doc == document(app)
    operations = list(schemathesis.openapi.from_dict(doc).get_all_operations())
    assert len(operations) == len(routes(app))
    for result in operations:
        op = result.ok()  # raises when schemathesis cannot read an operation
        assert op.definition.raw["responses"], op.label
    refs = {value for value in _walk(doc) if isinstance(value, str) and value.startswith("#/")}
    for ref in refs:  # every $ref resolves
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]


def test_every_error_answer_is_the_message_object(make_app):
    doc = document(make_app())
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    assert answer == {"$ref": f"#/components/responses/Error{status}"}, (path, method, status)
    assert doc["components"]["schemas"]["Error"]["required"] == ["message"]


def test_path_templates():
    assert openapi_path(Rule("/images/<path:path>")) == "/images/{path}"
    assert openapi_path(Rule("/a/<any(x, y):kind>/<int(min=1):n>")) == "/a/{kind}/{n}"
    Map([Rule("/a/<any(x, y):kind>")])  # the rule itself is one Werkzeug takes


def _walk(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    else:
        yield node


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_image_operations_name_their_errors(make_app, method):
    op = document(make_app())["paths"]["/images/{path}"][method]
    assert {"400", "401", "503"} <= set(op["responses"])
