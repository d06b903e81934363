"""The browse page and its assets over HTTP (no browser): negotiation, headers, hashed names."""
from __future__ import annotations

import gzip
import hashlib
import html
import json
import re

import pytest

from image_repo.config.settings import Settings
from image_repo.storage.memory import MemoryStore
from image_repo.ui import pages
from image_repo.ui.assets import OPENSEADRAGON, Assets
from image_repo.web.app import create_app

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def make(tmp_path, **changes):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    for key, value in changes.items():
        setattr(settings, key, value)
    return create_app(settings, store=MemoryStore(), cache_store=MemoryStore())


@pytest.fixture
def client(tmp_path):
    return make(tmp_path, url_key="k").test_client()


def config_of(response) -> dict:
    match = re.search(r'<body data-config="([^"]*)"', response.get_data(as_text=True))
    assert match, "no data-config on <body>"
    return json.loads(html.unescape(match.group(1)))


def test_a_browser_gets_the_page_and_api_clients_keep_their_json_404(client):
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.content_type == "text/html; charset=utf-8"
    assert "Accept" in page.headers["Vary"]
    for accept in (None, "*/*", "application/json", "application/json, text/html;q=0.5"):
        answer = client.get("/", headers={"Accept": accept} if accept else {})
        assert answer.status_code == 404 and answer.is_json and "message" in answer.get_json(), accept
    assert client.get("/images").get_json() == []  # the API is as it was


def test_the_page_is_locked_down(client):
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    csp = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["img-src"] == "'self' blob:" and csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-cache"
    assert "Set-Cookie" not in page.headers
    body = page.get_data(as_text=True)
    assert "<script>" not in body and "<style" not in body and " style=" not in body and " on" not in body.split("<body")[1][:40]
    assert all(src.startswith("/_ui/") for src in re.findall(r'<script defer src="([^"]+)"', body))


def test_assets_have_hashed_names_and_are_cached_for_a_year(client):
    body = client.get("/", headers={"Accept": BROWSER_ACCEPT}).get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="(/_ui/[^"]+)"', body)
    assert len(urls) >= 6
    for url in urls:
        answer = client.get(url, headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200, url
        digest = url.rsplit(".", 2)[-2]
        assert hashlib.sha256(answer.data).hexdigest().startswith(digest), url
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        again = client.get(url, headers={"If-None-Match": answer.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
    script = next(u for u in urls if "/main." in u)
    assert client.get(script).content_type == "text/javascript; charset=utf-8"
    zipped = client.get(next(u for u in urls if u.endswith(".css")), headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.data).startswith(b"/*")


@pytest.mark.parametrize("path", ["/_ui/main.js", "/_ui/main.0000000000000000.js", "/_ui/../pages.py", "/_ui/"])
def test_unhashed_or_unknown_asset_names_are_404(client, path):
    assert client.get(path).status_code == 404


def test_the_page_says_what_the_server_offers_but_never_a_token(tmp_path):
    app = make(tmp_path, read_tokens=["read-secret"], write_tokens=["write-secret"], url_key="url-secret",
               max_upload_bytes=1234)
    page = app.test_client().get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200  # the shell holds no data, so it needs no token
    config = config_of(page)
    assert config["readTokens"] is True and config["writeTokens"] is True and config["direct"] is True
    assert config["maxUpload"] == 1234 and config["images"] == "/images" and "jpg" in config["extensions"]
    for secret in ("read-secret", "write-secret", "url-secret"):
        assert secret not in page.get_data(as_text=True)


def test_deep_zoom_needs_openseadragon_and_iiif_and_says_which_is_missing(tmp_path):
    app = make(tmp_path)
    with app.test_request_context("/"):
        has_osd = pages.assets().has(OPENSEADRAGON)
        config = pages.page_config(Assets(vendor=tmp_path / "no-vendor"))
        assert config["deepZoom"] is False and "OpenSeadragon is not installed" in config["noDeepZoom"]
        config = pages.page_config(pages.assets())
        if has_osd and pages.has_iiif():
            assert config["deepZoom"] is True and config["noDeepZoom"] == ""
        elif has_osd:
            assert config["deepZoom"] is False and config["noDeepZoom"] == pages.NO_IIIF
    off = make(tmp_path, browse_deep_zoom=False)
    config = config_of(off.test_client().get("/", headers={"Accept": BROWSER_ACCEPT}))
    assert config["deepZoom"] is False and "browse_deep_zoom" in config["noDeepZoom"]
    body = off.test_client().get("/", headers={"Accept": BROWSER_ACCEPT}).get_data(as_text=True)
    assert "openseadragon" not in body  # not sent when it will not be used


def test_a_base_path_of_its_own_is_followed(tmp_path):
    config = config_of(make(tmp_path, repository_base_pathname="/pictures/").test_client().get(
        "/", headers={"Accept": BROWSER_ACCEPT}))
    assert config["images"] == "/pictures"


def test_on_swift_the_csp_lets_the_page_send_direct_uploads_to_the_store(swift_server, tmp_path):
    from urllib.parse import urlsplit

    from tests.fixtures.swift import swift_settings_for

    settings = swift_settings_for(swift_server)
    settings.data_dir = str(tmp_path)
    settings.store = "swift://browse-csp"  # nothing is written: the origin comes from a signature
    app = create_app(settings, cache_store=MemoryStore())
    page = app.test_client().get("/", headers={"Accept": BROWSER_ACCEPT})
    storage = urlsplit(swift_server.storage_url)
    connect = next(p for p in page.headers["Content-Security-Policy"].split("; ") if p.startswith("connect-src"))
    assert connect == f"connect-src 'self' {storage.scheme}://{storage.netloc}"
    assert config_of(page)["direct"] is True
