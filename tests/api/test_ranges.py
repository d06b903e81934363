"""Byte ranges on image answers: 206, If-Range, Accept-Ranges, 416 past the end; a bad Range ignored."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.fixtures.images import make_jpeg

ORIGINAL = make_jpeg(640, 480)


@pytest.fixture
def client(make_app):
    client = make_app(url_key="k").test_client()
    assert client.put("/images/p", data=ORIGINAL).status_code == 201
    return client


@pytest.mark.parametrize("spec, start, end", [("0-99", 0, 100), ("100-", 100, None), ("-50", -50, None),
                                               ("10-10", 10, 11), ("0-999999999", 0, None)])
def test_one_range_of_the_original(client, spec, start, end):
    whole = client.get("/images/p?original=true")
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.data == ORIGINAL
    r = client.get("/images/p?original=true", headers={"Range": f"bytes={spec}"})
    want = ORIGINAL[start:end]
    assert r.status_code == 206 and r.data == want
    assert r.headers["Content-Length"] == str(len(want))
    first = start if start >= 0 else len(ORIGINAL) + start
    assert r.headers["Content-Range"] == f"bytes {first}-{first + len(want) - 1}/{len(ORIGINAL)}"
    assert r.headers["ETag"] == whole.headers["ETag"] and "Date" not in r.headers


def test_ranges_of_a_derived_image_and_a_signed_url(client):
    whole = client.get("/images/p?xsize=200")
    part = client.get("/images/p?xsize=200", headers={"Range": "bytes=0-9"})
    assert whole.headers["Accept-Ranges"] == "bytes" and part.status_code == 206 and part.data == whole.data[:10]
    url = urlsplit(client.get("/images/p?url=true&xsize=200").get_json()["url"])
    signed = client.get(f"{url.path}?{url.query}", headers={"Range": "bytes=-4"})
    assert signed.status_code == 206 and signed.data == whole.data[-4:]
    again = client.get(f"{url.path}?{url.query}", headers={"If-None-Match": signed.headers["ETag"]})
    assert again.status_code == 304


def test_if_range(client):
    etag = client.get("/images/p?original=true").headers["ETag"]
    same = client.get("/images/p?original=true", headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206 and same.data == ORIGINAL[:10]
    for stale in ('"other"', "W/" + etag, "Wed, 21 Oct 2015 07:28:00 GMT"):
        r = client.get("/images/p?original=true", headers={"Range": "bytes=0-9", "If-Range": stale})
        assert r.status_code == 200 and r.data == ORIGINAL, stale
    # A stale If-Range with a range past the end: the whole image, not a 416.
    r = client.get("/images/p?original=true", headers={"Range": f"bytes={len(ORIGINAL) + 5}-", "If-Range": '"x"'})
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/images/p?original=true", "/images/p?xsize=100"])
def test_a_range_past_the_end_is_416(client, path):
    length = len(client.get(path).data)
    r = client.get(path, headers={"Range": f"bytes={length}-"})
    assert r.status_code == 416 and r.is_json and "beyond the end" in r.get_json()["message"]
    assert r.headers["Content-Range"] == f"bytes */{length}"


@pytest.mark.parametrize("value", ["bytes=0-9,20-29", "lines=0-9", "bytes=9-0", "bytes=", "bytes=abc", "\xff",
                                   "bytes=-", "bytes 0-9", "bytes=0-9;x"])
def test_any_other_range_is_ignored(client, value):
    r = client.get("/images/p?original=true", headers={"Range": value})
    assert r.status_code == 200 and r.data == ORIGINAL


def test_a_304_comes_before_a_range(client):
    etag = client.get("/images/p?xsize=100").headers["ETag"]
    r = client.get("/images/p?xsize=100", headers={"If-None-Match": etag, "Range": "bytes=0-9"})
    assert r.status_code == 304 and r.data == b""


def test_head_with_a_range(client):
    r = client.head("/images/p?original=true", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.data == b"" and r.headers["Content-Length"] == "100"
