"""The real server under Gunicorn, over HTTP: upload, derive, cache hit, 304, delete."""
from __future__ import annotations

import io

import requests
from PIL import Image

from tests.fixtures.images import make_jpeg


def test_round_trip_over_http(file_server):
    base = file_server.url + "/images"
    photo = make_jpeg(640, 480)
    r = requests.post(f"{base}/trip/photo.jpg", files={"file": ("photo.jpg", photo, "image/jpeg")})
    assert r.status_code == 200 and r.json() == "trip/photo"
    assert requests.get(base).json() == ["trip/photo"]

    first = requests.get(f"{base}/trip/photo?xsize=100&kind=png")
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(first.content)).size == (100, 75)
    # Whichever of the two workers answers (both share the cache store), only the first was a miss.
    answers = [requests.get(f"{base}/trip/photo?xsize=100&kind=png") for _ in range(6)]
    assert all(a.content == first.content for a in answers)
    assert all(a.headers["X-Image-Repo-Cache"] == "hit" for a in answers)

    etag = first.headers["ETag"]
    not_modified = requests.get(f"{base}/trip/photo?xsize=100&kind=png", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""

    assert requests.delete(f"{base}/trip/photo").status_code == 204
    gone = requests.get(f"{base}/trip/photo?xsize=100&kind=png")
    assert gone.status_code == 404 and gone.json()["message"]
    assert requests.get(base).json() == []


def test_ranges_cors_and_negotiation_over_http(tmp_path):
    """Through Gunicorn: one Date header on a 206 (Werkzeug's is dropped), a preflight, an AVIF."""
    from tests.fixtures.server import running_server

    config = {"data_dir": str(tmp_path / "data"), "format_negotiation": True,
              "cors_origins": ["https://viewer.example.org"]}
    with running_server(config, tmp_path / "server") as server:
        base = server.url + "/images"
        photo = make_jpeg(640, 480)
        assert requests.put(f"{base}/p", data=photo).status_code == 201
        part = requests.get(f"{base}/p?original=true", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == photo[100:200]
        assert len(part.raw.headers.getlist("Date")) == 1
        past = requests.get(f"{base}/p?original=true", headers={"Range": f"bytes={len(photo)}-"})
        assert past.status_code == 416 and past.json()["message"]
        pre = requests.options(f"{base}/p", headers={"Origin": "https://viewer.example.org",
                                                     "Access-Control-Request-Method": "PUT",
                                                     "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "https://viewer.example.org"
        for _ in range(4):  # both workers, the fast path among them
            avif = requests.get(f"{base}/p?xsize=80", headers={"Accept": "image/avif,*/*",
                                                               "Origin": "https://viewer.example.org"})
            assert avif.headers["Content-Type"] == "image/avif" and avif.headers["Vary"] == "Accept, Origin"
            assert avif.headers["Access-Control-Allow-Origin"] == "https://viewer.example.org"
        stranger = requests.get(f"{base}/p?xsize=80", headers={"Origin": "https://elsewhere.example.org"})
        assert stranger.status_code == 200 and "Access-Control-Allow-Origin" not in stranger.headers
