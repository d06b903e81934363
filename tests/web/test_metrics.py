"""/metrics under real Gunicorn with 2 workers: Prometheus figures summed over both, JSON per worker."""
from __future__ import annotations

import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.images import make_jpeg
from tests.fixtures.server import Server, running_server

IMAGES = "/images/<path:path>"
JSON = {"Accept": "application/json", "Connection": "close"}


def samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the Prometheus text answer, by (name, labels)."""
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(figures: dict, name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


def settled(server: Server, expected: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict:
    """The figures once they show ``expected``: the other worker writes its counts at most a second late
    (metrics/pending.py), so a scrape is repeated until it has (bounded), then compared."""
    for _ in range(100):
        figures = samples(server)
        if all(figures.get(key, 0.0) == want for key, want in expected.items()):
            break
        threading.Event().wait(0.1)
    return figures


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def per_worker(server: Server) -> dict[int, dict]:
    """This worker's JSON figures, asked until both workers answered."""
    seen: dict[int, dict] = {}
    for _ in range(400):
        body = requests.get(server.url + "/metrics", headers=JSON, timeout=10).json()
        seen[body["pid"]] = body
        if len(seen) == 2:
            return seen
    raise AssertionError(f"only workers {sorted(seen)} answered /metrics")


def test_figures_are_summed_over_both_workers(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    config = {"data_dir": str(tmp_path / "data"), "metrics_dir": str(metrics_dir), "access_log_json": True}
    with running_server(config, tmp_path / "server", workers=2) as server:
        assert not (metrics_dir / "counter_999999.db").exists(), "old figures are removed at start"
        base = server.url + "/images"
        assert requests.put(f"{base}/m/photo", data=make_jpeg(800, 600), timeout=30).status_code == 201

        # Concurrent fresh connections until each worker has made derivations of its own.
        sent: list[int] = []
        lock = threading.Lock()

        def get(size: int) -> None:
            r = requests.get(f"{base}/m/photo?xsize={size}", headers={"Connection": "close"}, timeout=60)
            assert r.status_code == 200
            with lock:
                sent.append(len(r.content))

        sizes = iter(range(20, 800))
        workers: dict[int, dict] = {}
        for _ in range(20):
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(get, [next(sizes) for _ in range(8)]))
            workers = per_worker(server)
            if all(w["counters"]["derivations"] > 0 for w in workers.values()):
                break
        assert all(w["counters"]["derivations"] > 0 for w in workers.values()), "one worker made every derivation"

        # Hits: the same URL again, answered from a worker's memory (the fast path) or made once more there.
        for _ in range(10):
            get(20)
        workers = per_worker(server)
        derivations = sum(w["counters"]["derivations"] for w in workers.values())
        figures = settled(server, {key("image_repo_derivations_total"): derivations,
                                   key("image_repo_http_requests_total", route=IMAGES, method="GET", status="200"): len(sent)})
        assert value(figures, "image_repo_derivations_total") == derivations
        assert value(figures, "image_repo_derivation_duration_seconds_count") == derivations
        gets = value(figures, "image_repo_http_requests_total", route=IMAGES, method="GET", status="200")
        assert gets == len(sent)
        assert value(figures, "image_repo_http_request_duration_seconds_count", route=IMAGES) == len(sent) + 1  # + PUT
        assert value(figures, "image_repo_http_response_bytes_total", route=IMAGES) >= sum(sent)
        fast = sum(w["counters"]["fast_hits"] for w in workers.values())
        assert fast > 0 and value(figures, "image_repo_cache_hits_total", level="memory") >= fast
        assert value(figures, "image_repo_uploads_total") == 1
        assert value(figures, "image_repo_http_requests_total", route="unmatched", method="GET", status="404") == 0
        assert requests.get(server.url + "/nowhere", timeout=10).status_code == 404
        unmatched = key("image_repo_http_requests_total", route="unmatched", method="GET", status="404")
        assert settled(server, {unmatched: 1})[unmatched] == 1
        assert value(figures, "image_repo_derivations_running") == 0  # a live gauge, summed: nothing running now

        # A worker that exits: its live gauges go, its counts stay in the totals.
        victim = next(iter(workers))
        os.kill(victim, signal.SIGTERM)
        for _ in range(600):
            if not (metrics_dir / f"gauge_livesum_{victim}.db").exists():
                break
            threading.Event().wait(0.05)
        assert not (metrics_dir / f"gauge_livesum_{victim}.db").exists(), "child_exit marks the worker dead"
        assert (metrics_dir / f"counter_{victim}.db").exists()
        after = samples(server)
        assert value(after, "image_repo_derivations_total") == derivations
        assert value(after, "image_repo_http_requests_total", route=IMAGES, method="GET", status="200") == len(sent)

        # The JSON access log: one object a line, the route and the cache outcome named.
        lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
        images = [r for r in lines if r["route"] == IMAGES and r["method"] == "GET"]
        assert len(images) == len(sent)
        assert {r["cache"] for r in images} == {"hit", "miss"}
        assert all(r["status"] == 200 and r["bytes"] > 0 and r["duration_ms"] > 0 for r in images)
        assert {r["pid"] for r in images} == set(workers)


def test_accept_chooses_the_format(file_server: Server) -> None:
    text = requests.get(file_server.url + "/metrics", headers={"Accept": "*/*"}, timeout=10)
    assert text.headers["Content-Type"].startswith("text/plain") and "# TYPE image_repo_http_requests_total counter" in text.text
    assert "Accept" in text.headers["Vary"]
    openmetrics = requests.get(file_server.url + "/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=10)
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    body = requests.get(file_server.url + "/metrics", headers={"Accept": "application/json"}, timeout=10).json()
    assert isinstance(body["pid"], int) and "derivations" in body["counters"] and body["cache"]["levels"]
    # Malformed or unknown Accept values are no error: the text format.
    odd = requests.get(file_server.url + "/metrics", headers={"Accept": "%%%;q=x, image/webp"}, timeout=10)
    assert odd.status_code == 200 and odd.headers["Content-Type"].startswith("text/plain")


def test_methods_no_one_uses_share_one_label(file_server: Server) -> None:
    for method in ("BREW", "WHEN", "XYZZY"):
        assert requests.request(method, file_server.url + "/healthz", timeout=10).status_code == 405
    other = key("image_repo_http_requests_total", route="unmatched", method="other", status="405")
    figures = settled(file_server, {other: 3})
    assert figures[other] == 3
    assert not [k for k in figures if dict(k[1]).get("method") in ("BREW", "WHEN", "XYZZY")]
