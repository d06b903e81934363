"""No served image carries EXIF, GPS, XMP, IPTC, comments or text, from any input kind, by any route.

Checked on the output bytes: single images, zip members and signed URLs, for every output kind.
meta=true never shows GPS unless expose_gps.
"""
from __future__ import annotations

import io
import zipfile
from urllib.parse import urlsplit

import pytest

from tests.fixtures.images import make_jpeg, make_png, make_tagged_jpeg, make_tiff, make_webp, metadata_markers

FORBIDDEN = {"exif", "gps", "xmp", "iptc", "comment", "text"}
INPUTS = {
    "jpg": lambda: make_tagged_jpeg(200, 150),
    "png": lambda: make_png(200, 150, text=True, exif=True),
    "tif": lambda: make_tiff(200, 150, exif=True),
    "webp": lambda: make_webp(200, 150, exif=True, xmp=True),
}
KINDS = ["jpg", "png", "tif", "bmp", "gif", "webp", "avif", "jp2"]


@pytest.mark.parametrize("source", sorted(INPUTS))
def test_every_output_kind_from_every_tagged_input_is_clean(client, source):
    data = INPUTS[source]()
    assert metadata_markers(data) & FORBIDDEN, "the input must carry metadata for the test to mean anything"
    assert client.put("/images/tagged", data=data).status_code == 201
    for kind in KINDS:
        for query in (f"kind={kind}", f"kind={kind}&xsize=80", f"kind={kind}&thumbnail=true"):
            r = client.get(f"/images/tagged?{query}")
            assert r.status_code == 200, (query, r.get_data()[:200])
            assert not metadata_markers(r.data) & FORBIDDEN, (source, query, metadata_markers(r.data))
            assert b"Secret Photographer" not in r.data and b"GPS" not in r.data


def test_zip_members_and_signed_urls_are_clean(client):
    client.put("/images/z/a", data=make_tagged_jpeg(200, 150))
    client.put("/images/z/b", data=make_png(200, 150, text=True, exif=True))
    for kind in KINDS:
        r = client.get(f"/images/z/?kind={kind}&xsize=90")
        assert r.status_code == 200
        with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
            for member in archive.namelist():
                assert not metadata_markers(archive.read(member)) & FORBIDDEN, (kind, member)
        url = client.get(f"/images/z/a?url=true&kind={kind}").get_json()["url"]
        parts = urlsplit(url)
        signed = client.get(f"{parts.path}?{parts.query}")
        assert signed.status_code == 200 and not metadata_markers(signed.data) & FORBIDDEN


def test_meta_never_shows_gps_unless_allowed(client):
    client.put("/images/g/a", data=make_jpeg(64, 48, gps=True))
    client.put("/images/g/b", data=make_tiff(64, 48, exif=True))
    for path in ("/images/g/a?meta=true", "/images/g/b?meta=true"):
        body = client.get(path).get_data(as_text=True)
        assert "gps" not in body.lower() and "latitude" not in body.lower()
    listing = client.get("/images/g/?meta=true").get_data(as_text=True)
    assert "gps" not in listing.lower()


def flip_last(sig: str) -> str:
    """``sig`` with its last hex digit changed (never the same string)."""
    return sig[:-1] + ("1" if sig[-1] == "0" else "0")


def test_a_signed_url_reaches_nothing_else(client):
    from urllib.parse import parse_qs, urlencode

    client.put("/images/s/a", data=make_jpeg(100, 80))
    client.put("/images/s/b", data=make_jpeg(100, 80))
    url = urlsplit(client.get("/images/s/a?url=true&xsize=40").get_json()["url"])
    other = urlsplit(client.get("/images/s/b?url=true&xsize=40").get_json()["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert client.get(f"{url.path}?{url.query}").status_code == 200
    later = {**query, "temp_url_expires": str(int(query["temp_url_expires"]) + 3600)}
    refused = [
        f"{other.path}?{url.query}",  # another object with this signature
        f"{url.path}?{urlencode(later)}",  # a later expiry
        f"{url.path}?{urlencode({**query, 'temp_url_expires': '99999999999'})}",
        f"{url.path}?{urlencode({**query, 'temp_url_sig': flip_last(query['temp_url_sig'])})}",
        f"{url.path}x?{url.query}",
        f"{url.path}/../b?{url.query}",
        f"{url.path}?temp_url_sig={query['temp_url_sig']}",
        f"{url.path}?{urlencode({**query, 'temp_url_expires': '1e20'})}",
        f"{url.path}?{urlencode({**query, 'temp_url_expires': '-1'})}",
    ]
    for path in refused:
        r = client.get(path)
        assert r.status_code in (403, 404), (path, r.status_code)
    for method in ("post", "put", "delete"):
        assert getattr(client, method)(f"{url.path}?{url.query}").status_code in (403, 405)
