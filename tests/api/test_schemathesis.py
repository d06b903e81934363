"""schemathesis against real Gunicorn: every answer is documented, conforms to its schema, is never a 5xx.

Writes are open, so the run uploads (the document's example bodies are a real image, a
text PPM), replaces, deletes and starts imports. Format negotiation and a listed CORS origin
are on, with a browser's Accept and an Origin on every request, so those paths are fuzzed
too. Bounded by examples per operation and a fixed seed (about a minute on 2 cores).
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from tests.fixtures.images import make_jpeg
from tests.fixtures.server import running_server

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
EXAMPLES = 25
SEED = 15


def test_schemathesis_finds_nothing(tmp_path):
    config = {
        "data_dir": str(tmp_path / "data"),
        "url_key": "schemathesis-key",
        "format_negotiation": True,
        "cors_origins": ["https://viewer.example.org"],
    }
    with running_server(config, tmp_path / "server") as server:
        for name in ("site1/photo", "site1/old", "site1/other"):  # what the examples name
            assert requests.put(f"{server.url}/images/{name}", data=make_jpeg(640, 480), timeout=30).ok
        run = subprocess.run(  # noqa: PLW1510 - its exit code is asserted below, with its output
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
             "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1",
             "--request-timeout", "60", "--no-color",
             "-H", "Accept: image/avif,image/webp,image/*,*/*;q=0.8",
             "-H", "Origin: https://viewer.example.org"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900,
        )
        summary = run.stdout[-6000:]
        assert run.returncode == 0, f"schemathesis found problems:\n{summary}\n{run.stderr[-2000:]}\n{server.log_tail()}"
        counted = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
        assert counted is not None and counted.group(1) == counted.group(2) and int(counted.group(1)) > 500, summary
        log = server.log.read_text(errors="replace")
        assert '" 201 ' in log, "the run never uploaded an image"
        assert '" 500 ' not in log and "Traceback" not in log
