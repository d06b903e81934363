"""CORS: cors_origins for reads and writes, preflights before token checks, unknown origins ignored."""
from __future__ import annotations

import pytest
from flask import Blueprint, jsonify

from image_repo.config.loading import load_settings
from image_repo.errors import ConfigError
from image_repo.web import cors
from tests.fixtures.images import make_jpeg

VIEWER = "https://viewer.example.org"


def test_any_origin_by_default_on_every_answer(make_app):
    client = make_app().test_client()
    put = client.put("/images/p", data=make_jpeg(100, 80), headers={"Origin": VIEWER})
    assert put.headers["Access-Control-Allow-Origin"] == "*"
    expose = put.headers["Access-Control-Expose-Headers"]
    assert {"ETag", "Location", "X-Checksum-Sha256", "Content-Range"} <= {h.strip() for h in expose.split(",")}
    for path in ("/images/p?xsize=50", "/images/p?meta=true", "/images/nothing", "/healthz", "/images/p?xsize=0"):
        r = client.get(path)  # no Origin: the same answer, so one cached copy serves every site
        assert r.headers["Access-Control-Allow-Origin"] == "*", path
        assert "Origin" not in r.headers.get("Vary", ""), path


def test_a_preflight_is_answered_before_the_token_check(make_app):
    client = make_app(write_tokens=["w"], read_tokens=["r"]).test_client()
    r = client.options("/images/a/b", headers={
        "Origin": VIEWER, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type, x-checksum-sha256"})
    assert r.status_code == 204 and r.data == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "HEAD", "POST", "PUT", "DELETE"}
    allowed = {h.lower() for h in r.headers["Access-Control-Allow-Headers"].split(", ")}
    assert {"authorization", "content-type", "x-checksum-sha256", "content-digest", "range", "if-none-match"} <= allowed
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    # The request itself still needs its token.
    assert client.put("/images/a/b", data=b"x", headers={"Origin": VIEWER}).status_code == 401
    listing = client.options("/images", headers={"Origin": VIEWER, "Access-Control-Request-Method": "GET"})
    assert listing.headers["Access-Control-Allow-Methods"] == "GET, HEAD"


def test_listed_origins_only(make_app):
    other = "https://evil.example.com"
    client = make_app(cors_origins=[VIEWER, "http://localhost:8080"]).test_client()
    client.put("/images/p", data=make_jpeg(100, 80))
    ok = client.get("/images/p?xsize=40", headers={"Origin": VIEWER})
    assert ok.headers["Access-Control-Allow-Origin"] == VIEWER and ok.headers["Vary"] == "Origin"
    assert client.get("/images/p", headers={"Origin": "HTTP://LOCALHOST:8080"}).headers[
        "Access-Control-Allow-Origin"] == "HTTP://LOCALHOST:8080"
    refused = client.get("/images/p?xsize=40", headers={"Origin": other})
    assert refused.status_code == 200 and refused.data == ok.data  # not an error: the browser withholds it
    assert not [k for k, _ in refused.headers if k.startswith("Access-Control-")]
    assert refused.headers["Vary"] == "Origin"  # a cache must not hand this to the viewer
    pre = client.options("/images/p", headers={"Origin": other, "Access-Control-Request-Method": "DELETE"})
    assert pre.status_code == 200 and not [k for k, _ in pre.headers if k.startswith("Access-Control-")]
    good = client.options("/images/p", headers={"Origin": VIEWER, "Access-Control-Request-Method": "DELETE"})
    assert good.status_code == 204 and good.headers["Access-Control-Allow-Origin"] == VIEWER
    assert good.headers["Vary"] == "Origin"
    # Writes follow the same list.
    put = client.put("/images/q", data=make_jpeg(100, 80), headers={"Origin": VIEWER})
    assert put.status_code == 201 and put.headers["Access-Control-Allow-Origin"] == VIEWER
    assert "Access-Control-Allow-Origin" not in client.delete("/images/q", headers={"Origin": other}).headers


def test_no_origins_no_cors(make_app):
    client = make_app(cors_origins=[]).test_client()
    r = client.get("/healthz", headers={"Origin": VIEWER})
    pre = client.options("/images/p", headers={"Origin": VIEWER, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in r.headers and "Access-Control-Allow-Origin" not in pre.headers
    assert "Vary" not in r.headers


def test_a_preflight_to_no_route_is_a_404(make_app):
    r = make_app().test_client().options("/nowhere", headers={"Origin": VIEWER,
                                                                       "Access-Control-Request-Method": "GET"})
    assert r.status_code == 404 and r.is_json


def test_a_blueprint_can_answer_any_origin_whatever_the_setting(make_app):
    """What the IIIF routes use: public answers, whatever cors_origins says for the rest."""
    bp = Blueprint("public_test", __name__)

    @bp.get("/public")
    def public():
        return jsonify(ok=True)

    cors.any_origin(bp)
    app = make_app(cors_origins=[VIEWER])
    app.register_blueprint(bp)
    client = app.test_client()
    r = client.get("/public", headers={"Origin": "https://anyone.example.net"})
    assert r.headers["Access-Control-Allow-Origin"] == "*" and "Vary" not in r.headers
    pre = client.options("/public", headers={"Origin": "https://anyone.example.net",
                                             "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in client.get("/healthz", headers={"Origin": "https://anyone.example.net"}).headers


@pytest.mark.parametrize("value", ["example.org", "https://example.org/path", "https://", "*.example.org"])
def test_a_bad_origin_setting_names_the_key(tmp_path, value):
    path = tmp_path / "c.yml"
    path.write_text(f"cors_origins: ['{value}']\n")
    with pytest.raises(ConfigError, match=r"cors_origins\[0\]"):
        load_settings(str(path))
