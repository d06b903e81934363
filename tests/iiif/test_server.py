"""IIIF under real Gunicorn: the official validator (iiif-validator) at level 2 for 3.0 and 2.0, escaped slashes, proxies."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.fixtures.server import running_server

validator = pytest.importorskip("iiif_validator.validator", reason="pip install iiif-validator (the test extras)")

IDENTIFIER = "67352ccc-d1b0-11e1-89ae-279075081939"


def grid_png() -> bytes:
    """The validator's test image: 10x10 squares of 100 px, colours from its own table (column x, row y)."""
    colours = validator.ValidationInfo().colorInfo
    im = Image.new("RGB", (1000, 1000))
    for x in range(10):
        for y in range(10):
            im.paste(tuple(colours[x][y]), (x * 100, y * 100, x * 100 + 100, y * 100 + 100))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def iiif_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("iiif-validator")
    with running_server({"data_dir": str(workdir / "data")}, workdir / "server") as server:
        answer = requests.put(f"{server.url}/images/{IDENTIFIER}", data=grid_png(), timeout=30)
        assert answer.status_code in (200, 201), answer.text
        assert requests.put(f"{server.url}/images/site/été photo", data=grid_png(), timeout=30).status_code == 201
        yield server


def run_validator(server_url: str, version: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "iiif-validate.py"
    host = server_url.removeprefix("http://")
    return subprocess.run(
        [sys.executable, str(script), "-s", host, "-p", f"iiif/{version[0]}", "-i", IDENTIFIER,
         f"--version={version}", "--level=2"],
        capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.mark.parametrize("version, tests", [("3.0", 33), ("2.0", 30)])
def test_validator_passes_level_2(iiif_server, version, tests):
    done = run_validator(iiif_server.url, version)
    output = done.stdout + done.stderr
    summary = re.search(r"Done \((\d+) tests, (\d+) failures\)", output)
    assert summary is not None, output[-3000:]
    failures = [line for line in output.splitlines() if "FAIL" in line]
    assert done.returncode == 0 and summary.group(2) == "0", "\n".join(failures) + "\n" + output[-4000:]
    assert int(summary.group(1)) == tests, output[-2000:]


def test_an_escaped_slash_names_the_image_and_an_unescaped_one_is_404(iiif_server):
    """Gunicorn decodes %2F in PATH_INFO: the raw request line tells the two apart."""
    url = iiif_server.url + "/iiif/3"
    escaped = requests.get(f"{url}/site%2F%C3%A9t%C3%A9%20photo/info.json", timeout=30)
    assert escaped.status_code == 200
    assert escaped.json()["id"] == f"{url}/site%2F%C3%A9t%C3%A9%20photo"
    tile = requests.get(f"{url}/site%2F%C3%A9t%C3%A9%20photo/0,0,512,512/256,/0/default.jpg", timeout=30)
    assert tile.status_code == 200 and Image.open(io.BytesIO(tile.content)).size == (256, 256)
    for path in ("site/%C3%A9t%C3%A9%20photo/info.json", "site/%C3%A9t%C3%A9%20photo/full/max/0/default.jpg"):
        unescaped = requests.get(f"{url}/{path}", timeout=30)
        assert unescaped.status_code == 404 and unescaped.json()["message"].startswith("identifier:")


def test_gunicorn_does_not_trust_forwarded_headers_by_itself(iiif_server):
    """trust_forwarded_headers is off: X-Forwarded-Proto from loopback changes nothing."""
    r = requests.get(f"{iiif_server.url}/iiif/3/{IDENTIFIER}/info.json", timeout=30,
                     headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
    assert r.json()["id"] == f"{iiif_server.url}/iiif/3/{IDENTIFIER}"
