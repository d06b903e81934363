"""The HTTP contract (DESIGN.md section 4) through Flask's test client, on the file store."""
from __future__ import annotations

import io
import time
import zipfile
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image

from image_repo.web.app import create_app
from tests.fixtures.images import assert_scene, make_jpeg, make_png, make_tagged_jpeg, metadata_markers


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.fixture
def photo() -> bytes:
    return make_jpeg(400, 300)


# -- listing and upload --------------------------------------------------------------------
def test_empty_listing(client):
    r = client.get("/images")
    assert r.status_code == 200 and r.get_json() == []


def test_upload_stores_bytes_unchanged(client, upload, app, photo):
    r = upload("site1/photo.jpg", photo, "x.jpg")
    assert r.status_code == 200
    assert r.get_json() == "site1/photo"
    assert r.headers["Location"] == "/images/site1/photo"
    svc = app.extensions["image_repo"]
    original = svc.get_original("site1/photo")
    assert svc.store.get(original.ref.key) == photo
    assert client.get("/images").get_json() == ["site1/photo"]


def test_upload_trailing_slash_takes_filename(client, upload, photo):
    r = upload("site2/", photo, "../../evil/name.jpg")
    assert r.status_code == 200
    assert r.get_json() == "site2/name"


def test_upload_existing_name_conflicts_and_changes_nothing(client, upload, app, photo):
    assert upload("a", photo, "a.jpg").status_code == 200
    other = make_png(10, 10)
    r = upload("a", other, "a.png")
    assert r.status_code == 409 and "message" in r.get_json()
    svc = app.extensions["image_repo"]
    assert svc.store.get(svc.get_original("a").ref.key) == photo


@pytest.mark.parametrize("body", [b"hello, not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.4\n"])
def test_upload_not_an_image_is_415(upload, client, body):
    r = upload("bad.jpg", body, "bad.jpg")
    assert r.status_code == 415 and r.get_json()["message"]
    assert client.get("/images").get_json() == []


def test_upload_empty_is_415(upload):
    assert upload("empty", b"", "e.jpg").status_code == 415


def test_upload_missing_file_field_is_400(client):
    r = client.post("/images/x", data={"other": "1"}, content_type="multipart/form-data")
    assert r.status_code == 400 and "file" in r.get_json()["message"]


def test_put_creates_then_replaces_and_old_derivative_is_never_served(client, photo):
    r = client.put("/images/p", data=photo, content_type="image/jpeg")
    assert r.status_code == 201 and r.get_json() == "p"
    first = client.get("/images/p?xsize=100")
    assert first.status_code == 200
    replacement = make_jpeg(300, 400)
    r = client.put("/images/p", data=replacement, content_type="image/jpeg")
    assert r.status_code == 200
    second = client.get("/images/p?xsize=100")
    assert second.headers["ETag"] != first.headers["ETag"]
    assert decode(second.data).size == (100, 133)


# -- one image -----------------------------------------------------------------------------
def test_default_output_is_jpeg_with_headers(client, upload, photo):
    upload("p", photo, "p.jpg")
    r = client.get("/images/p")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/jpeg"
    assert int(r.headers["Content-Length"]) == len(r.data)
    assert r.headers["ETag"].startswith('"') and r.headers["Cache-Control"]
    assert decode(r.data).format == "JPEG"


@pytest.mark.parametrize(
    "kind,fmt,ctype",
    [
        ("jpg", "JPEG", "image/jpeg"),
        ("JPEG", "JPEG", "image/jpeg"),
        ("png", "PNG", "image/png"),
        ("tif", "TIFF", "image/tiff"),
        ("TIFF", "TIFF", "image/tiff"),
        ("bmp", "BMP", "image/bmp"),
        ("gif", "GIF", "image/gif"),
        ("webp", "WEBP", "image/webp"),
    ],
)
def test_kinds(client, upload, photo, kind, fmt, ctype):
    upload("p", photo, "p.jpg")
    r = client.get(f"/images/p?kind={kind}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype
    assert decode(r.data).format == fmt


@pytest.mark.parametrize("kind", ["jpg", "png", "tif", "bmp", "gif", "webp"])
def test_served_images_are_oriented_and_carry_no_metadata(client, upload, kind):
    upload("cam", make_tagged_jpeg(400, 300, orientation=6), "cam.jpg")
    for query in (f"kind={kind}", f"kind={kind}&xsize=200", f"kind={kind}&thumbnail=1"):
        r = client.get(f"/images/cam?{query}")
        assert r.status_code == 200
        assert not (metadata_markers(r.data) & {"exif", "gps", "xmp", "iptc", "comment", "text"}), query
        im = decode(r.data)
        assert im.width > im.height, "EXIF orientation 6 must be applied"
        assert_scene(im)


def test_kind_spellings_share_one_etag(client, upload, photo):
    upload("p", photo, "p.jpg")
    tags = {client.get(f"/images/p?kind={k}").headers["ETag"] for k in ("jpg", "JPG", "jpeg", "Jpeg")}
    assert len(tags) == 1


def test_extension_in_path_selects_kind(client, upload, photo):
    upload("p", photo, "p.jpg")
    r = client.get("/images/p.png")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    r = client.get("/images/p.png?kind=bmp")
    assert r.headers["Content-Type"] == "image/bmp"


def test_fit_within_box_never_upscaled(client, upload, photo):
    upload("p", photo, "p.jpg")
    assert decode(client.get("/images/p?xsize=100").data).size == (100, 75)
    assert decode(client.get("/images/p?ysize=30").data).size == (40, 30)
    assert decode(client.get("/images/p?xsize=100&ysize=300").data).size == (100, 75)
    assert decode(client.get("/images/p?xsize=4000&ysize=4000").data).size == (400, 300)


def test_thumbnail_default_box(client, upload, photo):
    upload("p", photo, "p.jpg")
    im = decode(client.get("/images/p?thumbnail=true").data)
    assert max(im.size) == 50 and im.size == (50, 37)
    im = decode(client.get("/images/p?thumbnail=T&ysize=60").data)
    assert im.size == (80, 60)


@pytest.mark.parametrize(
    "query,param",
    [
        ("xsize=0", "xsize"),
        ("xsize=-1", "xsize"),
        ("xsize=10000", "xsize"),
        ("xsize=1.5", "xsize"),
        ("xsize=abc", "xsize"),
        ("xsize=", "xsize"),
        ("ysize=1e3", "ysize"),
        ("ysize=%D9%A1", "ysize"),
        ("kind=bpg", "kind"),
        ("kind=", "kind"),
        ("thumbnail=yes", "thumbnail"),
        ("thumbnail=tRUE", "thumbnail"),
        ("meta=2", "meta"),
        ("url=", "url"),
        ("xsize=10&xsize=20", "xsize"),
    ],
)
def test_invalid_parameters_are_400_naming_the_parameter(client, upload, photo, query, param):
    upload("p", photo, "p.jpg")
    r = client.get(f"/images/p?{query}")
    assert r.status_code == 400
    assert param in r.get_json()["message"]


def test_unknown_parameters_are_ignored(client, upload, photo):
    upload("p", photo, "p.jpg")
    assert client.get("/images/p?URL=True&foo=bar").status_code == 200


@pytest.mark.parametrize("word", ["t", "T", "true", "True", "TRUE", "1"])
def test_boolean_grammar_true(client, upload, photo, word):
    upload("p", photo, "p.jpg")
    assert max(decode(client.get(f"/images/p?thumbnail={word}").data).size) == 50


def test_missing_image_is_404(client):
    r = client.get("/images/nothing")
    assert r.status_code == 404 and r.get_json()["message"] == "Image 'nothing' not found"


def test_etag_and_304_and_head(client, upload, photo):
    upload("p", photo, "p.jpg")
    r = client.get("/images/p?xsize=50")
    etag = r.headers["ETag"]
    again = client.get("/images/p?xsize=50", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get("/images/p?xsize=51", headers={"If-None-Match": etag}).status_code == 200
    head = client.head("/images/p?xsize=50")
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == etag


def test_second_request_is_a_cache_hit(client, upload, photo, app):
    upload("p", photo, "p.jpg")
    assert client.get("/images/p?xsize=64").headers["X-Image-Repo-Cache"] == "miss"
    assert client.get("/images/p?xsize=64").headers["X-Image-Repo-Cache"] == "hit"
    assert app.extensions["image_repo"].counters()["derivations"] == 1


def test_caches_survive_a_restart(settings, photo):
    first = create_app(settings).test_client()
    first.put("/images/p", data=photo)
    body = first.get("/images/p?xsize=64").data
    second = create_app(settings).test_client()
    r = second.get("/images/p?xsize=64")
    assert r.headers["X-Image-Repo-Cache"] == "hit" and r.data == body


# -- several images --------------------------------------------------------------------------
def test_directory_answers_a_zip(client, upload):
    for n in ("d/a", "d/b", "d/sub/c", "e/x"):
        upload(n, make_jpeg(60, 40), "f.jpg")
    r = client.get("/images/d/?kind=png&xsize=30")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert sorted(z.namelist()) == ["d/a.png", "d/b.png", "d/sub/c.png"]
        assert decode(z.read("d/a.png")).size == (30, 20)


def test_regex_selects_full_names(client, upload):
    for n in ("d/a1", "d/a2", "d/b1"):
        upload(n, make_jpeg(20, 20), "f.jpg")
    assert client.get("/images?regex=d/a.*").get_json() == ["d/a1", "d/a2"]
    assert client.get("/images?regex=a.*").get_json() == []
    r = client.get("/images/?regex=d/a.*")
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert sorted(z.namelist()) == ["d/a1.jpg", "d/a2.jpg"]
    single = client.get("/images/d?regex=d/b1")
    assert single.headers["Content-Type"] == "image/jpeg"


def test_bad_regex_is_400(client):
    r = client.get("/images?regex=(unclosed")
    assert r.status_code == 400 and "regex" in r.get_json()["message"]


def test_no_match_is_404(client, upload):
    upload("d/a", make_jpeg(20, 20), "f.jpg")
    assert client.get("/images/zz/").get_json()["message"] == "No images found in 'zz/'"
    assert client.get("/images/?regex=q.*").status_code == 404


def test_zip_over_the_cap_is_413(settings, upload):
    settings.max_zip_images = 2
    client = create_app(settings).test_client()
    for n in ("d/a", "d/b", "d/c"):
        client.put(f"/images/{n}", data=make_jpeg(20, 20))
    assert client.get("/images/d/").status_code == 413


# -- meta and url ----------------------------------------------------------------------------
def test_meta_has_fields_and_no_gps_by_default(client, upload):
    data = make_jpeg(64, 48, exif_orientation=6, gps=True)
    upload("m", data, "m.jpg")
    meta = client.get("/images/m?meta=true").get_json()
    assert meta["name"] == "m" and meta["bytes"] == len(data) and len(meta["sha256"]) == 64
    assert meta["content_type"] == "image/jpeg"
    assert "gps" not in meta


def test_meta_gps_when_allowed(settings):
    settings.expose_gps = True
    client = create_app(settings).test_client()
    client.put("/images/m", data=make_jpeg(64, 48, gps=True))
    assert "gps" in client.get("/images/m?meta=true").get_json()


def test_url_needs_url_key(settings, photo):
    settings.url_key = None
    client = create_app(settings).test_client()
    client.put("/images/p", data=photo)
    r = client.get("/images/p?url=true")
    assert r.status_code == 400 and "url_key" in r.get_json()["message"]


def test_signed_url_works_and_refuses_tampering(client, upload, photo, settings, request):
    upload("dir/my photo", photo, "p.jpg")
    r = client.get("/images/dir/my%20photo?url=true&xsize=40")
    body = r.get_json()
    assert body["expires"] > time.time()
    url = body["url"]
    query = dict(parse_qsl(urlsplit(url).query))
    if settings.store.startswith(("swift://", "s3://")):
        # The store's own temporary URL: the store verifies it, so fetch it straight from the store.
        import requests

        if settings.store.startswith("swift://"):
            server = request.getfixturevalue("swift_server")
            server.connection().post_account({"X-Account-Meta-Temp-URL-Key": settings.url_key})
            sig_param, expiry_param, refused = "temp_url_sig", "temp_url_expires", 401
        else:
            sig_param, expiry_param, refused = "X-Amz-Signature", "X-Amz-Expires", 403

        def fetch(url: str, method: str = "GET"):
            return requests.request(method, url, timeout=10)

        def body_of(r) -> bytes:
            return r.content
    else:
        sig_param, expiry_param, refused = "temp_url_sig", "temp_url_expires", 403

        def fetch(url: str, method: str = "GET"):
            return client.open(url, method=method)

        def body_of(r) -> bytes:
            return r.data

    got = fetch(url)
    assert got.status_code == 200
    assert decode(body_of(got)).size == (40, 30)
    sig, expiry = query[sig_param], query[expiry_param]
    tampered = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert fetch(tampered).status_code == refused
    later = url.replace(f"{expiry_param}={expiry}", f"{expiry_param}={int(expiry) + 1000}")
    assert fetch(later).status_code == refused
    other = url.replace("/dir/", "/other/")
    assert fetch(other).status_code in (refused, 404)
    assert fetch(url, "PUT").status_code in (refused, 405)


# -- delete -------------------------------------------------------------------------------------
def test_delete_removes_original_and_derivatives(client, upload, photo, app):
    upload("p", photo, "p.jpg")
    client.get("/images/p?xsize=20")
    assert client.delete("/images/p").status_code == 204
    assert client.get("/images/p").status_code == 404
    assert client.get("/images").get_json() == []
    from image_repo.service.images import bottom_level

    assert list(bottom_level(app.extensions["image_repo"].cache).list("p/")) == []
    assert client.delete("/images/p").status_code == 404


# -- names and errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["a/../b", "..", "a//b", "a/./b", "%2e%2e/x", "a%00b", "a%0Ab", ".hidden", "a\\b"])
def test_hostile_names_are_400(client, photo, path):
    r = client.put(f"/images/{path}", data=photo)
    assert r.status_code == 400, path
    assert r.get_json()["message"]


def test_unicode_and_space_names_round_trip(client, upload, photo):
    r = upload("photos/été 2024/小猫", photo, "x.jpg")
    assert r.status_code == 200 and r.get_json() == "photos/été 2024/小猫"
    assert client.get("/images/photos/%C3%A9t%C3%A9%202024/%E5%B0%8F%E7%8C%AB").status_code == 200
    assert client.get("/images").get_json() == ["photos/été 2024/小猫"]


def test_unknown_route_and_method_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.is_json
    r = client.patch("/images/x")
    assert r.status_code == 405 and r.is_json


def test_a_slash_redirect_is_json_and_keeps_the_upload(client, photo):
    r = client.post("/images", data={"file": (io.BytesIO(photo), "x.jpg")}, content_type="multipart/form-data")
    assert r.status_code == 308 and r.is_json and r.headers["Location"] == "http://localhost/images/"
    assert "/images/" in r.get_json()["message"]
    followed = client.post("/images", data={"file": (io.BytesIO(photo), "x.jpg")}, content_type="multipart/form-data",
                           follow_redirects=True)
    assert followed.status_code == 200 and followed.get_json() == "x"  # stored, under its file name


def test_health_and_ready(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["status"] == "ok"
