"""Bearer tokens for writes and reads, tokens by reference, never logged; the open-writes warning."""
from __future__ import annotations

import logging

import pytest
import requests
from click.testing import CliRunner

from image_repo.cli import is_loopback, main
from image_repo.config.loading import load_settings
from image_repo.config.settings import Settings
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.fixtures.server import running_server

WRITE = "w-token-0123456789abcdef"
READ = "r-token-fedcba9876543210"
JPEG = make_jpeg(60, 40)


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings()
    s.data_dir = str(tmp_path / "data")
    s.url_key = "url-key"
    return s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["message"]
    assert WRITE not in response.get_data(as_text=True) and READ not in response.get_data(as_text=True)


WRONG = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Basic {WRITE}"},
    {"Authorization": f"Bearer {WRITE}x"},
    {"Authorization": f"Bearer {WRITE[:-1]}"},
    {"Authorization": f"Bearer {READ}"},
    {"Authorization": "Bearer \u00e9\u00e9"},
    {"Authorization": f"Bearer {WRITE}\u0000"},
]


@pytest.mark.parametrize("headers", WRONG)
def test_writes_need_a_write_token(settings, headers):
    settings.write_tokens = [WRITE]
    settings.read_tokens = [READ]
    client = create_app(settings).test_client()
    assert_401(client.put("/images/p", data=JPEG, headers=headers))
    assert_401(client.post("/images/p", data={}, headers=headers))
    assert_401(client.delete("/images/p", headers=headers))
    assert client.get("/images", headers=bearer(WRITE)).get_json() == []


def test_a_write_token_writes_and_reads_are_open_without_read_tokens(settings):
    settings.write_tokens = ["other", WRITE]
    client = create_app(settings).test_client()
    assert client.put("/images/p", data=JPEG, headers=bearer(WRITE)).status_code == 201
    assert client.put("/images/p", data=JPEG, headers={"Authorization": f"bearer  {WRITE} "}).status_code == 200
    assert client.get("/images/p").status_code == 200
    assert client.delete("/images/p", headers=bearer(WRITE)).status_code == 204


def test_a_write_refused_for_its_token_reads_no_body(settings):
    """The token is checked before the body is touched: a 401 never stores anything."""
    settings.write_tokens = [WRITE]
    client = create_app(settings).test_client()
    assert_401(client.put("/images/p", data=JPEG))
    assert client.get("/images").get_json() == []


@pytest.mark.parametrize("path", ["/images", "/images/p", "/images/p?meta=true", "/images/?regex=.*", "/images/p?url=true"])
def test_reads_need_a_read_or_write_token_when_read_tokens_are_set(settings, path):
    settings.write_tokens = [WRITE]
    settings.read_tokens = [READ]
    client = create_app(settings).test_client()
    client.put("/images/p", data=JPEG, headers=bearer(WRITE))
    for headers in WRONG[:-3]:
        if headers.get("Authorization", "").endswith(READ):
            continue
        assert_401(client.get(path, headers=headers))
    assert client.get(path, headers=bearer(READ)).status_code == 200
    assert client.get(path, headers=bearer(WRITE)).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_read_tokens_alone_leave_writes_open(settings):
    settings.read_tokens = [READ]
    client = create_app(settings).test_client()
    assert client.put("/images/p", data=JPEG).status_code == 201
    assert_401(client.get("/images/p"))


def test_tokens_by_env_and_file_reference(tmp_path, monkeypatch):
    (tmp_path / "token").write_text(WRITE + "\n")
    config = tmp_path / "c.yml"
    config.write_text(
        f'data_dir: {tmp_path / "data"}\n'
        'write_tokens: [{"$file": token}]\n'
        'read_tokens: [{"$env": READ_TOKEN}]\n'
    )
    settings = load_settings(str(config), {"READ_TOKEN": READ})
    assert settings.write_tokens == [WRITE] and settings.read_tokens == [READ]
    client = create_app(settings).test_client()
    assert client.put("/images/p", data=JPEG, headers=bearer(WRITE)).status_code == 201
    assert client.get("/images/p", headers=bearer(READ)).status_code == 200
    assert_401(client.get("/images/p", headers=bearer(WRITE + "x")))


def test_tokens_never_reach_the_logs_or_the_dump(tmp_path):
    (tmp_path / "token").write_text(WRITE)
    config = {
        "data_dir": str(tmp_path / "data"),
        "log_level": "debug",
        "write_tokens": [{"$file": str(tmp_path / "token")}],
        "read_tokens": [READ],
    }
    with running_server(config, tmp_path / "server") as server:
        base = server.url + "/images"
        assert requests.put(base + "/p", data=JPEG, headers=bearer(WRITE), timeout=10).status_code == 201
        assert requests.put(base + "/q", data=JPEG, headers=bearer(WRITE + "wrong"), timeout=10).status_code == 401
        assert requests.get(base + "/p", headers=bearer(READ), timeout=10).status_code == 200
        assert requests.get(base + "/p", headers=bearer(READ[:-2]), timeout=10).status_code == 401
        log = server.log.read_text(errors="replace")
    assert "PUT /images/p" in log  # the access log is on
    for secret in (WRITE, READ, READ[:-2]):
        assert secret not in log


@pytest.mark.parametrize(
    "bind, loopback",
    [("127.0.0.1:5000", True), ("[::1]:80", True), ("localhost:1", True), ("unix:/tmp/s", True),
     ("0.0.0.0:5000", False), (":5000", False), ("[::]:80", False), ("10.1.2.3:80", False), ("example.com:80", False)],
)
def test_is_loopback(bind, loopback):
    assert is_loopback(bind) is loopback


@pytest.mark.parametrize(
    "bind, tokens, warned",
    [("0.0.0.0:8080", [], True), ("0.0.0.0:8080", [WRITE], False), ("127.0.0.1:8080", [], False)],
)
def test_one_warning_when_writes_are_open_on_a_reachable_address(tmp_path, monkeypatch, caplog, bind, tokens, warned):
    # Only the launch is replaced: what is checked is the CLI's decision before it starts Gunicorn.
    monkeypatch.setattr("image_repo.web.server.serve", lambda *a, **k: None)
    monkeypatch.setattr("image_repo.web.server.configure_logging", lambda *a, **k: None)
    config = tmp_path / "c.yml"
    config.write_text(f"data_dir: {tmp_path}\nwrite_tokens: {tokens!r}\n")
    with caplog.at_level(logging.WARNING, logger="image_repo.cli"):
        result = CliRunner().invoke(main, ["-y", str(config), "serve", "--bind", bind])
    assert result.exit_code == 0, result.output
    warnings = [r for r in caplog.records if "write_tokens" in r.getMessage()]
    assert len(warnings) == (1 if warned else 0)
    for record in caplog.records:
        assert WRITE not in record.getMessage()


def test_the_original_with_its_metadata_needs_a_write_token(settings):
    settings.write_tokens = [WRITE]
    client = create_app(settings).test_client()
    client.put("/images/p", data=make_jpeg(60, 40, gps=True), headers=bearer(WRITE))
    assert_401(client.get("/images/p?original=true"))
    assert_401(client.get("/images/p?original=true", headers=bearer(READ)))
    assert client.get("/images/p?original=true", headers=bearer(WRITE)).status_code == 200
    assert client.get("/images/p?original=false").status_code == 200
