"""Paging GET /images over 100,000 names: what a page costs against the whole listing, per store.

``python bench/paging.py`` (about a minute; ``--names N``, ``--no-swift``). For the file store
(100,000 tiny files in one directory, as another tool would write them) and the real Swift
the test suite starts (100,000 listing rows seeded straight into its container database), it
times in-process, as the route calls them: the whole listing (``list_names``, what
``GET /images`` answers without ``limit``), and pages of 200 from the start, the middle and
the end (``list_page``, what ``GET /images?limit=200&marker=M`` answers). It prints each
median and the page/whole ratio against the target: a page costs at most 5% of the whole
listing of the same store in the same run. Not part of the test suite: the figures depend on
the machine (and the ratio on nothing else running meanwhile).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
from interpreter import ensure_interpreter  # re-runs this script under .venv when needed

ensure_interpreter(("image_repo", "yaml"))
sys.path.insert(0, str(REPO))

from image_repo.config.settings import Settings
from image_repo.service.originals import Originals
from image_repo.storage.base import ObjectStore
from image_repo.storage.filesystem import FileStore

PAGE = 200
RATIO_TARGET = 0.05


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def measure(label: str, store: ObjectStore, names: list[str]) -> bool:
    originals = Originals(Settings(), store)
    whole = originals.list_names()
    assert whole == names, f"{label}: the listing holds {len(whole)} names, expected {len(names)}"
    whole_ms = median_ms(originals.list_names, 3)
    print(f"\n{label}: {len(names):,} names; whole listing (GET /images): {whole_ms:8.1f} ms (median of 3)")
    ok = True
    for where, marker in (("first page", ""), ("middle page", names[len(names) // 2]), ("last page", names[-PAGE - 1])):
        page, _ = originals.list_page(None, marker, PAGE)
        assert page == [n for n in names if n > marker][:PAGE], f"{label}: wrong {where}"
        ms = median_ms(lambda m=marker: originals.list_page(None, m, PAGE), 7)  # type: ignore[misc]
        ratio = ms / whole_ms
        passed = ratio <= RATIO_TARGET
        ok &= passed
        print(f"  {where:<12} limit={PAGE}: {ms:7.1f} ms  = {ratio:6.2%} of the listing "
              f"(target <= {RATIO_TARGET:.0%})  {'PASS' if passed else 'FAIL'}")
    return ok


def file_store(root: Path, names: list[str]) -> FileStore:
    directory = root / "many"
    directory.mkdir(parents=True)
    for name in names:
        fd = os.open(root / f"{name}.jpg", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"\xff\xd8\xff")  # nothing is decoded: a listing reads names only
        os.close(fd)
    return FileStore(str(root), fsync=False)


def swift_store(names: list[str]) -> tuple[ObjectStore, Callable[[], None]] | None:
    """A container of the test Swift seeded with ``names``' keys, and how to stop that Swift."""
    import uuid

    os.environ.setdefault("SWIFT_VENV", str(REPO / ".swift-venv"))
    from image_repo.storage.registry import open_store
    from tests.fixtures import swift as fixture

    state_dir = tempfile.mkdtemp(prefix="image_repo-swift-bench-", dir=fixture._state_root())
    Path(state_dir, "owner.pid").write_text(str(os.getpid()))
    done = fixture._start(state_dir)
    if done.returncode != 0:
        fixture._stop(state_dir)
        print(f"\nswift: SKIP, it did not start:\n{done.stderr[-2000:]}")
        return None
    server = fixture._parse(done.stdout)
    container = f"paging-{uuid.uuid4().hex[:8]}"
    server.connection().put_container(container)
    server.seed_listing(container, [f"{name}.jpg" for name in names])
    settings = fixture.swift_settings_for(server)
    return open_store(f"swift://{container}", settings), lambda: fixture._stop(state_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--no-swift", action="store_true", help="only the file store")
    args = parser.parse_args()
    names = sorted(f"many/n{i:06d}" for i in range(args.names))
    ok = True
    root = Path(tempfile.mkdtemp(prefix="image_repo-paging-"))
    try:
        t = time.monotonic()
        store = file_store(root, names)
        print(f"file store: wrote {len(names):,} files in {time.monotonic() - t:.1f} s")
        ok &= measure("file store", store, names)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not args.no_swift:
        made = swift_store(names)
        if made is not None:
            swift, stop = made
            try:
                ok &= measure("swift", swift, names)
            finally:
                swift.close()
                stop()
    print("\nall PASS" if ok else "\nsome FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
