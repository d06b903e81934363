"""The container's logic without a Docker engine: the entrypoint, the env-file, the Dockerfile."""
from __future__ import annotations

import importlib.util
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from image_repo.config.loading import load_settings

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "docker" / "entrypoint.py"

KEYSTONE = {
    "SWIFT_P": "originals", "SWIFT_C": "derived", "URL_KEY": "SEKRIT-url-key",
    "OS_AUTH_URL": "https://keystone.example.org:5000/v3", "OS_USERNAME": "svc",
    "OS_PASSWORD": "SEKRIT-password", "OS_PROJECT_NAME": "proj", "OS_TENANT_ID": "tid",
    "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
}
V1 = {"SWIFT_P": "originals", "SWIFT_C": "derived", "ST_AUTH": "https://swift.example.org/auth/v1.0",
      "ST_USER": "acct:user", "ST_KEY": "SEKRIT-st-key"}


def entrypoint_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_entrypoint", ENTRYPOINT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The entrypoint as the container runs it, with only ``env`` (plus PATH)."""
    return subprocess.run([sys.executable, str(ENTRYPOINT), *args], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ.get("PATH", ""), **env}, timeout=30)


def assert_no_secret(r: subprocess.CompletedProcess[str]) -> None:
    assert "SEKRIT" not in r.stdout and "SEKRIT" not in r.stderr


def load_printed(tmp_path: Path, r: subprocess.CompletedProcess[str], env: dict[str, str]):
    path = tmp_path / "generated.yml"
    path.write_text(r.stdout)
    return load_settings(str(path), env)


def test_keystone_environment_gives_swift_stores(tmp_path):
    r = run(KEYSTONE, "--print-config")
    assert r.returncode == 0, r.stderr
    assert_no_secret(r)
    s = load_printed(tmp_path, r, KEYSTONE)
    assert (s.store, s.cache_store) == ("swift://originals", "swift://derived")  # SWIFT_C really used
    assert s.url_key == "SEKRIT-url-key" and s.swift.key == "SEKRIT-password"
    assert (s.swift.auth_url, s.swift.user, s.swift.tenant_name, s.swift.tenant_id) == (
        KEYSTONE["OS_AUTH_URL"], "svc", "proj", "tid")


def test_v1_environment(tmp_path):
    r = run(V1, "--print-config")
    assert r.returncode == 0, r.stderr
    assert_no_secret(r)
    s = load_printed(tmp_path, r, V1)
    assert (s.swift.auth_url, s.swift.user, s.swift.key, s.swift.auth_version) == (
        V1["ST_AUTH"], "acct:user", "SEKRIT-st-key", "1")


def test_2016_environment_still_works(tmp_path):
    env = {"SWIFT_P": "p", "SWIFT_C": "c", "OS_AUTH_URL": "https://keystone.rc.nectar.org.au:5000/v2.0/",
           "OS_USERNAME": "u", "OS_PASSWORD": "SEKRIT", "OS_TENANT_NAME": "t", "OS_TENANT_ID": "tid"}
    r = run(env, "--print-config")
    assert r.returncode == 0, r.stderr
    assert load_printed(tmp_path, r, env).swift.tenant_name == "t"


@pytest.mark.parametrize("drop, expected", [
    (["SWIFT_P"], ["entrypoint: SWIFT_P is not set (the container of originals)"]),
    (["SWIFT_P", "SWIFT_C"], ["entrypoint: SWIFT_P is not set", "entrypoint: SWIFT_C is not set"]),
    (["OS_AUTH_URL"], ["entrypoint: OS_AUTH_URL is not set"]),
    (["OS_USERNAME", "OS_PASSWORD"], ["entrypoint: OS_USERNAME is not set", "entrypoint: OS_PASSWORD is not set"]),
    (["OS_PROJECT_NAME"], ["entrypoint: OS_PROJECT_NAME is not set"]),
])
def test_missing_variables_one_line_each_and_exit_1(drop, expected):
    env = {k: v for k, v in KEYSTONE.items() if k not in drop and not (k == "OS_TENANT_ID" and "OS_PROJECT_NAME" in drop)}
    r = run(env)
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected):
        assert line.startswith(start)
    assert_no_secret(r)


def test_empty_variables_count_as_missing():
    r = run({**KEYSTONE, "SWIFT_C": "  "})
    assert r.returncode == 1 and r.stderr.startswith("entrypoint: SWIFT_C is not set")


def test_container_names_cannot_hold_a_slash():
    r = run({**KEYSTONE, "SWIFT_P": "a/b"})
    assert r.returncode == 1 and "SWIFT_P must be a container name" in r.stderr


def test_store_settings_stand_in_for_the_swift_variables(tmp_path):
    env = {"IMAGE_REPO_STORE": "s3://bucket/originals", "IMAGE_REPO_CACHE_STORE": "memory://"}
    r = run(env, "--print-config")
    assert r.returncode == 0, r.stderr
    s = load_printed(tmp_path, r, env)
    assert (s.store, s.cache_store) == ("s3://bucket/originals", "memory://")


def test_command_serves_on_the_port_or_passes_arguments():
    ep = entrypoint_module()
    assert ep.command("/c.yml", "8080", []) == ["image_repo", "-y", "/c.yml", "--bind", "0.0.0.0:8080", "serve"]
    assert ep.command("/c.yml", "80", ["-Yt"])[-2:] == ["0.0.0.0:80", "-Yt"]


def test_main_writes_a_private_config_and_execs_image_repo(tmp_path, monkeypatch):
    ep = entrypoint_module()
    monkeypatch.setattr(ep, "CONFIG_PATH", str(tmp_path / "run" / "config.yml"))
    calls = []
    monkeypatch.setattr(ep.os, "execvp", lambda file, args: calls.append(args))
    assert ep.main([], {**KEYSTONE, "PORT": "9000"}) == 0
    [args] = calls
    assert args == ["image_repo", "-y", str(tmp_path / "run" / "config.yml"), "--bind", "0.0.0.0:9000", "serve"]
    written = tmp_path / "run" / "config.yml"
    assert written.stat().st_mode & 0o077 == 0
    assert "SEKRIT" not in written.read_text()
    assert load_settings(str(written), KEYSTONE).store == "swift://originals"


def test_a_mounted_config_is_used_as_it_is(monkeypatch):
    ep = entrypoint_module()
    calls = []
    monkeypatch.setattr(ep.os, "execvp", lambda file, args: calls.append(args))
    assert ep.main([], {"IMAGE_REPO_CONFIG": "/etc/image_repo.yml"}) == 0
    assert calls[0][:3] == ["image_repo", "-y", "/etc/image_repo.yml"]


def test_bad_port():
    r = run({**KEYSTONE, "PORT": "http"})
    assert r.returncode == 1 and r.stderr == "entrypoint: PORT must be a port number\n"


# --- the example env-file -----------------------------------------------------------------

def env_file(path: Path) -> dict[str, str]:
    """Parse as ``docker run --env-file`` does: KEY=VALUE, the value taken literally."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", line), f"line {number}: not KEY=VALUE: {line!r}"
        key, value = line.split("=", 1)
        assert "#" not in value, f"line {number}: Docker would keep an inline comment in the value"
        assert not value.startswith(("'", '"')), f"line {number}: Docker would keep the quotes"
        values[key] = value
    return values


def test_env_file_example_parses_and_configures_swift(tmp_path):
    values = env_file(ROOT / "docker" / "image_repo.env.example")
    assert {"SWIFT_P", "SWIFT_C", "URL_KEY", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD"} <= set(values)
    text = (ROOT / "docker" / "image_repo.env.example").read_text()
    assert all(f"# {v}=" in text for v in ("ST_AUTH", "ST_USER", "ST_KEY"))  # the v1 variant, shown
    r = run(values, "--print-config")
    assert r.returncode == 0, r.stderr
    s = load_printed(tmp_path, r, values)
    assert (s.store, s.cache_store) == ("swift://image-repo", "swift://image-repo-cache")
    assert values["OS_PASSWORD"] not in r.stdout


# --- the Dockerfile and gunicorn.conf.py ---------------------------------------------------

def dockerfile() -> list[str]:
    """Instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_is_multi_stage_non_root_and_matches_the_entrypoint():
    lines = dockerfile()
    # The base is an ARG (the suite builds on a stand-in, tests/container), python:3.11-slim by default.
    args = dict(line.split()[1].split("=", 1) for line in lines if line.startswith("ARG ") and "=" in line)
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2 and all(line.split()[1] == "${PYTHON_IMAGE}" for line in froms)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    final = lines[lines.index(froms[-1]):]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0", "0:0")
    [expose] = [line.split()[1:] for line in final if line.startswith("EXPOSE ")]
    port = entrypoint_module().DEFAULT_PORT
    assert expose == [port] and f"PORT={port}" in " ".join(final)
    [entry] = [line for line in final if line.startswith("ENTRYPOINT ")]
    copied = [line.split()[-1] for line in final if line.startswith("COPY docker/entrypoint.py ")]
    assert copied and copied[0] in entry
    assert any(line.startswith("HEALTHCHECK ") and "/healthz" in line for line in final)
    assert any("--from=" in line for line in final if line.startswith("COPY "))


def test_gunicorn_conf_uses_the_package_defaults(monkeypatch):
    for name in list(os.environ):
        if name.startswith("IMAGE_REPO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGE_REPO_BIND", "0.0.0.0:8123")
    monkeypatch.setenv("IMAGE_REPO_THREADS", "3")
    conf = runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py"))
    assert conf["bind"] == ["0.0.0.0:8123"] and conf["threads"] == 3
    assert conf["worker_class"] == "image_repo.web.balanced.BalancedThreadWorker"
    assert conf["accesslog"] == "-" and conf["preload_app"] is False
