"""format_negotiation: AVIF or WebP when Accept prefers them, for a request that names no kind."""
from __future__ import annotations

import pytest

from image_repo.api.negotiation import negotiated_kind
from image_repo.config.settings import Settings
from tests.fixtures.images import make_jpeg, open_bytes

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_16 = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
OLD_FIREFOX = "image/webp,*/*"


@pytest.mark.parametrize(
    "accept, default, want",
    [
        (None, "jpg", "jpg"),
        ("", "jpg", "jpg"),
        (CHROME, "jpg", "avif"),
        (SAFARI_16, "jpg", "avif"),  # image/* at 0.8 gives jpg 0.8; webp and avif 1: a tie goes to AVIF
        (OLD_FIREFOX, "jpg", "webp"),
        ("*/*", "jpg", "jpg"),  # a wildcard alone never brings a modern kind
        ("image/*", "png", "png"),
        ("image/jpeg, image/webp;q=0.5", "jpg", "jpg"),
        ("image/webp;q=0.9, image/avif;q=0.5", "jpg", "webp"),
        ("image/avif;q=0", "jpg", "jpg"),
        ("image/AVIF", "jpg", "avif"),
        ("image/webp", "webp", "webp"),
        ("image/avif, image/webp", "webp", "avif"),
        ("text/html;;;q=abc,,,image/avif;q=2,\x00", "jpg", "jpg"),  # nonsense and a bad q: ignored
        ("image/webp;q=1.0.0", "jpg", "jpg"),
    ],
)
def test_negotiated_kind(accept, default, want):
    assert negotiated_kind(accept, default) == want


@pytest.fixture
def make_client(make_app):
    def make(negotiate: bool = True, **changes):
        client = make_app(format_negotiation=negotiate, **changes).test_client()
        assert client.put("/images/p", data=make_jpeg(400, 300)).status_code == 201
        return client

    return make


def test_off_by_default_the_2016_answer_stays(make_client):
    assert Settings().format_negotiation is False
    client = make_client(negotiate=False)
    r = client.get("/images/p?xsize=100", headers={"Accept": CHROME})
    assert r.headers["Content-Type"] == "image/jpeg" and "Vary" not in r.headers


def test_an_avif_browser_gets_avif_with_its_own_etag_and_vary(make_client):
    client = make_client()
    avif = client.get("/images/p?xsize=100", headers={"Accept": CHROME})
    jpeg = client.get("/images/p?xsize=100", headers={"Accept": "image/jpeg"})
    webp = client.get("/images/p?xsize=100", headers={"Accept": OLD_FIREFOX})
    assert (avif.headers["Content-Type"], jpeg.headers["Content-Type"], webp.headers["Content-Type"]) == (
        "image/avif", "image/jpeg", "image/webp")
    assert open_bytes(avif.data).format == "AVIF" and open_bytes(avif.data).size == (100, 75)
    assert len({avif.headers["ETag"], jpeg.headers["ETag"], webp.headers["ETag"]}) == 3
    for r in (avif, jpeg, webp):
        assert r.headers["Vary"] == "Accept"
    # The same bytes as asking for the kind: one derivative, one ETag (a second request is a hit).
    named = client.get("/images/p?xsize=100&kind=avif")
    assert named.headers["ETag"] == avif.headers["ETag"] and named.headers["X-Image-Repo-Cache"] == "hit"
    assert "Vary" not in named.headers
    not_modified = client.get("/images/p?xsize=100", headers={"Accept": CHROME, "If-None-Match": avif.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.headers["Vary"] == "Accept"
    # An ETag of the AVIF does not match what a JPEG client is sent.
    other = client.get("/images/p?xsize=100", headers={"Accept": "image/jpeg", "If-None-Match": avif.headers["ETag"]})
    assert other.status_code == 200 and other.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("path", ["/images/p?xsize=100&kind=png", "/images/p.png?xsize=100"])
def test_a_named_kind_is_never_negotiated(make_client, path):
    client = make_client()
    r = client.get(path, headers={"Accept": CHROME})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png" and "Vary" not in r.headers


def test_meta_and_url_answers_are_not_negotiated(make_client):
    client = make_client(url_key="k")
    meta = client.get("/images/p?meta=true", headers={"Accept": CHROME})
    assert meta.status_code == 200 and meta.is_json and "Vary" not in meta.headers
    url = client.get("/images/p?url=true", headers={"Accept": CHROME}).get_json()["url"]
    assert ".jpg" in url


@pytest.mark.parametrize("accept", ["\xff\xfe", ";;;", "image/avif;q=", "*/*;q=-1", "a" * 5000, "image/webp;q=0.5;q=0.9"])
def test_a_malformed_accept_is_never_an_error(make_client, accept):
    client = make_client()
    r = client.get("/images/p?xsize=50", headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["Vary"] == "Accept"
