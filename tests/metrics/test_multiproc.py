"""The workers' shared figures directory, in a child process (the switch is process-wide)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import os, sys
early = sys.argv[2] == "early"
if early:
    import prometheus_client  # noqa: F401 - as if some import had brought it in before the server started
from image_repo.metrics import multiproc
directory, made = multiproc.prepare(sys.argv[1])
pid = os.fork()
if pid == 0:  # a worker
    from image_repo.metrics import figures
    figures.DERIVATIONS.inc(3)
    figures.RUNNING.inc()
    figures.EVENTS["uploads"].inc()  # batched (pending.py): written by the flush at exit
    sys.exit(0)
os.waitpid(pid, 0)
from image_repo.metrics.exposition import render
text = render(None)[0].decode()
print([l for l in text.splitlines() if l.startswith(("image_repo_derivations_total", "image_repo_derivations_running",
                                                     "image_repo_uploads_total"))])
print(f"gauge_livesum_{pid}.db" in os.listdir(directory))
multiproc.worker_exited(pid)
print(sorted(os.listdir(directory)), pid, made)
"""


def run(directory: str, when: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", CHILD, directory, when], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_workers_count_into_files_even_if_prometheus_client_came_first(tmp_path: Path) -> None:
    for when in ("late", "early"):
        directory = tmp_path / when
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"an earlier run's")
        (directory / "notes.txt").write_text("not ours")
        figures, live_before, files = run(str(directory), when)
        assert live_before == "True"
        assert "'image_repo_derivations_total 3.0'" in figures and "'image_repo_derivations_running 1.0'" in figures
        assert "'image_repo_uploads_total 1.0'" in figures
        listed, pid, made = files.rsplit(" ", 2)
        assert made == "False"
        names = set(eval(listed))
        # Kept: the worker's counters and what is not ours; gone: the old run's file, the dead worker's live gauge.
        assert {f"counter_{pid}.db", "notes.txt"} <= names
        assert "counter_1.db" not in names and f"gauge_livesum_{pid}.db" not in names


def test_an_empty_setting_makes_a_private_directory() -> None:
    done = subprocess.run([sys.executable, "-c", "from image_repo.metrics import multiproc; import os; "
                           "d, made = multiproc.prepare(''); print(d, made, os.environ['PROMETHEUS_MULTIPROC_DIR'] == d); "
                           "multiproc.remove(d); print(os.path.exists(d))"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    directory, made, pointed = first.split()
    assert "image_repo-metrics-" in directory and made == "True" and pointed == "True"
    assert second == "False"


def test_directories_of_masters_killed_without_cleaning_up_are_removed(tmp_path: Path) -> None:
    code = ("from image_repo.metrics import multiproc; import os; d, _ = multiproc.prepare(''); print(d); "
            "os.kill(os.getpid(), 9)")  # killed: no exit hook removes its directory
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    left = Path(killed.stdout.strip())
    assert killed.returncode == -9 and left.is_dir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = left.parent / (left.name + "-alive")
        alive.mkdir()
        (alive / "master.pid").write_text(str(live.pid))
        done = subprocess.run([sys.executable, "-c", "from image_repo.metrics import multiproc; "
                               "d, _ = multiproc.prepare(''); print(d); multiproc.remove(d)"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert not left.exists(), "the dead master's directory is removed by the next start"
        assert alive.is_dir(), "a live master's directory is left alone"
    finally:
        live.kill()
        live.wait()
        shutil.rmtree(alive, ignore_errors=True)
