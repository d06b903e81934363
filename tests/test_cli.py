"""The image_repo command, run as a user runs it (a subprocess), and its Gunicorn launcher."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from image_repo.config.dump import dump_yaml
from image_repo.config.loading import load_settings
from image_repo.config.settings import Settings, iter_settings
from image_repo.web.server import ImageRepoApplication, gunicorn_options
from tests.fixtures.server import free_port
from tests.fixtures.waiting import HANG

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would change the settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGE_REPO_", "OS_", "ST_", "AWS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def image_repo(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "image_repo", *args], capture_output=True, text=True,
                          env=env or clean_env(), cwd=cwd, timeout=60)


def test_dump_prints_every_default_and_exits_0():
    r = image_repo("-Yt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == dump_yaml(load_settings(environ={}))
    for key, *_ in iter_settings():
        assert f"{key.rsplit('.', 1)[-1]}: " in r.stdout


def test_dump_of_a_file_shows_the_merged_settings(tmp_path):
    (tmp_path / "c.yml").write_text("workers: 3\ndisk_cache:\n  max_bytes: 1MiB\n")
    r = image_repo("-y", str(tmp_path / "c.yml"), "-Yt", "--bind", "0.0.0.0:9000",
                   env=clean_env(IMAGE_REPO_THREADS="7"))
    assert r.returncode == 0, r.stderr
    s = Settings()
    s.workers, s.threads, s.bind, s.disk_cache.max_bytes = 3, 7, "0.0.0.0:9000", 2**20
    assert r.stdout == dump_yaml(s)


def test_serve_subcommand_takes_the_same_options(tmp_path):
    (tmp_path / "c.yml").write_text("workers: 3\n")
    r = image_repo("serve", "-y", str(tmp_path / "c.yml"), "-Y", "-t")
    assert r.returncode == 0 and "\nworkers: 3 " in r.stdout


def test_trial_run_validates_quietly():
    r = image_repo("-t")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.parametrize("args, env, message", [
    (["-t"], {"IMAGE_REPO_DISK_CACHE__MAX_BYTES": "lots"}, "image_repo: config: disk_cache.max_bytes"),
    (["-t"], {"IMAGE_REPO_NOPE": "1"}, "image_repo: config: unknown setting 'nope'"),
    (["-y", "{bad}", "-Yt"], {}, "image_repo: config: workers: expected an integer, got 'lots'"),
    (["serve", "-y", "{bad}"], {}, "image_repo: config: workers: expected an integer, got 'lots'"),
    (["-y", "{missing}"], {}, "image_repo: config: cannot read"),
])
def test_config_error_is_one_line_and_exit_2(tmp_path, args, env, message):
    (tmp_path / "bad.yml").write_text("workers: lots\n")
    args = [a.format(bad=tmp_path / "bad.yml", missing=tmp_path / "missing.yml") for a in args]
    r = image_repo(*args, env=clean_env(**env))
    assert r.returncode == 2
    assert r.stderr.startswith(message) and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_dead_2016_flags_are_ignored_with_a_warning():
    r = image_repo("-C", "-a", "-i", "-c", "-t")
    assert r.returncode == 0
    assert "-C/--critical is ignored" in r.stderr and "-i/--intolerant is ignored" in r.stderr


@pytest.mark.parametrize("flag", ["-B", "-R", "-S", "-T"])
def test_2016_process_flags_are_refused(flag):
    r = image_repo(flag, "-t")
    assert r.returncode == 2 and "is not supported" in r.stderr


def test_verbosity_flags_set_the_log_level():
    for flag, level in (("-V", "debug"), ("-v", "info"), ("-q", "error")):
        r = image_repo(flag, "-Yt")
        assert f'\nlog_level: "{level}" ' in r.stdout


def test_launcher_configures_gunicorn_from_settings():
    s = Settings(bind="127.0.0.1:9999", workers=0, threads=6, log_level="warning")
    app = ImageRepoApplication(s, gunicorn_options(s))
    cfg = app.cfg
    assert cfg.bind == ["127.0.0.1:9999"] and cfg.threads == 6 and cfg.workers == (os.cpu_count() or 1)
    assert cfg.worker_class_str == "image_repo.web.balanced.BalancedThreadWorker" and cfg.loglevel == "warning"
    assert cfg.accesslog == "-" and cfg.preload_app is False and cfg.timeout >= 30
    assert gunicorn_options(Settings(workers=3))["workers"] == 3
    assert gunicorn_options(Settings(balance_connections=False))["worker_class"] == "gthread"


def test_launcher_makes_the_app_in_the_worker(tmp_path):
    s = Settings(data_dir=str(tmp_path))
    flask_app = ImageRepoApplication(s, gunicorn_options(s)).load()
    assert flask_app.test_client().get("/healthz").status_code == 200


@pytest.mark.slow
def test_bare_command_serves_and_never_logs_secrets(tmp_path):
    """``image_repo -y FILE`` (no subcommand) serves; debug logs hold no secret."""
    port = free_port()
    (tmp_path / "c.yml").write_text(
        f'data_dir: {tmp_path / "data"}\nworkers: 1\nbind: "127.0.0.1:{port}"\n'
        'url_key: SEKRIT-url-key\nwrite_tokens: [{"$env": TOKEN}]\n'
    )
    log = tmp_path / "server.log"
    env = clean_env(TOKEN="SEKRIT-token", OS_PASSWORD="SEKRIT-password")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "image_repo", "-y", str(tmp_path / "c.yml"), "-V", "-Y"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + HANG  # a guard against a server that never answers, not a deadline
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        requests.get(f"http://127.0.0.1:{port}/images", headers={"Authorization": "Bearer wrong"}, timeout=5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=HANG)
    text = log.read_text()
    assert "GET /healthz" in text and "Booting worker" in text
    assert "SEKRIT" not in text
