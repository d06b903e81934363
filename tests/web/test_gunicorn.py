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
    # Two workers: ask enough times that both have answered; only the first is a miss.
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
