"""``image_repo cache prune`` on the file store and the real Swift, and racing an upload."""
from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from image_repo import names
from image_repo.config.settings import Settings
from image_repo.ops.prune import derived_name, of_version, prune
from image_repo.service.images import bottom_level
from image_repo.storage.base import ObjectInfo, ObjectStore
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.fixtures.swift import SwiftServer, delete_container, swift_settings_for


def derived(app: Flask, prefix: str = "") -> list[str]:
    return sorted(i.key for i in bottom_level(app.extensions["image_repo"].cache).list(prefix) if "/.d/" in i.key)


def version(app: Flask, name: str) -> str:
    original = app.extensions["image_repo"].find(name, fresh=True)
    assert original is not None
    return original.version


def scene(app: Flask) -> dict[str, str]:
    """a kept as it is; b replaced and c deleted behind the server's back (another server, another tool),
    so their derived objects stay; the version of every original before that."""
    client = app.test_client()
    for name, size in (("a", 300), ("site/b", 310), ("site/c", 320)):
        assert client.put(f"/images/{name}", data=make_jpeg(size, 200)).status_code == 201
        for x in (40, 60):
            assert client.get(f"/images/{name}?xsize={x}").status_code == 200
    before = {name: version(app, name) for name in ("a", "site/b", "site/c")}
    store = app.extensions["image_repo"].store
    store.put("site/b.jpg", make_jpeg(330, 200), "image/jpeg")  # replaced: new bytes under the same key
    store.delete("site/c.jpg")
    assert client.get("/images/site/b?xsize=40").status_code == 200  # a derivative of the new version
    return before


def file_app(tmp_path: Path, cache_store: ObjectStore | None = None) -> Flask:
    s = Settings()
    s.data_dir, s.original_stat_ttl = str(tmp_path / "data"), 0.0
    return create_app(s, cache_store=cache_store)


def test_dry_run_then_prune_on_the_file_store(tmp_path: Path) -> None:
    app = file_app(tmp_path)
    before = scene(app)
    listed = derived(app)
    service = app.extensions["image_repo"]
    dry = prune(service, dry_run=True, batch_size=3)
    assert derived(app) == listed, "a dry run removes nothing"
    assert (dry.gone, dry.replaced, dry.errors) == (3, 3, 0)  # c: 2 derivatives + intermediate; b: the same
    # a: 2 derivatives + its intermediate; b's new version: 1 + its intermediate.
    assert dry.kept == 5 and dry.scanned == len(listed) == 11 and dry.images == 3 and dry.batches == 4
    done = prune(service, batch_size=3)
    assert (done.gone, done.replaced, done.kept) == (dry.gone, dry.replaced, dry.kept)
    assert done.removed_bytes == dry.removed_bytes > 0
    left = derived(app)
    assert not [k for k in left if k.startswith("site/c/")]
    assert not [k for k in left if k.startswith(f"site/b/.d/{before['site/b']}.")]
    now_b = version(app, "site/b")
    assert [k for k in left if k.startswith(f"site/b/.d/{now_b}.")], "the new version's derivative is kept"
    assert len([k for k in left if k.startswith(f"a/.d/{before['a']}.")]) == 3
    assert prune(service).removed == 0


def test_cli_summary(tmp_path: Path) -> None:
    app = file_app(tmp_path)
    scene(app)
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "image_repo", "-y", str(config), "cache", "prune", *args],
                              capture_output=True, text=True, timeout=120, check=False)

    dry = cli("--dry-run", "--batch-size", "4")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == ("dry run: 11 derived objects of 3 images in 3 batches: would remove 6 "
                                  f"({dry.stdout.split('(')[1].split(' ')[0]} bytes; 3 of originals gone, 3 of "
                                  "replaced ones), kept 5, 0 errors")
    assert dry.stderr.count("batch ") == 3
    done = cli()
    assert done.returncode == 0 and "removed 6 (" in done.stdout and "kept 5" in done.stdout
    assert "removed 0 (" in cli("--prefix", "site/").stdout


class ListingHook:
    """A real store whose listing calls ``when(key)`` as it reaches each derived key, and may then
    list more keys: an upload landing while a (paginated) listing is under way."""

    def __init__(self, store: ObjectStore, when: Callable[[str], list[str]]) -> None:
        self.store, self.when = store, when

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.store.list(prefix):
            yield info
            for extra in self.when(info.key):
                stat = self.store.stat(extra)
                assert stat is not None
                yield stat

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_an_upload_during_the_listing_keeps_its_derivatives(tmp_path: Path, batch_size: int) -> None:
    """The new version's derivative is listed, and must survive: each batch's originals are looked up
    after that batch was listed (never from an earlier look, never before the listing)."""
    from image_repo.storage.filesystem import FileStore

    cache = FileStore(str(tmp_path / "data" / "cache"))
    raced: list[str] = []

    def upload_meanwhile(key: str) -> list[str]:
        if raced or not key.startswith("site/b/.d/"):
            return []
        # Another server: the original replaced, and a derivative of the new bytes made, mid-listing.
        other = file_app(tmp_path)
        other.extensions["image_repo"].store.put("site/b.jpg", make_jpeg(340, 200), "image/jpeg")
        assert other.test_client().get("/images/site/b?xsize=44").status_code == 200
        new = f"site/b/.d/{version(other, 'site/b')}."
        raced.extend(k for k in derived(other, "site/b/") if k.startswith(new))
        return list(raced)

    app = file_app(tmp_path, cache_store=ListingHook(cache, upload_meanwhile))  # type: ignore[arg-type]
    scene(app)
    done = prune(app.extensions["image_repo"], batch_size=batch_size)
    assert raced, "the upload happened during the listing"
    assert set(raced) <= set(derived(app, "site/b/")), "a derivative of the current version was removed"
    assert done.errors == 0
    # What was current when its batch was checked was kept; the next run takes what is stale by now.
    prune(app.extensions["image_repo"], batch_size=batch_size)
    assert set(derived(app, "site/b/")) == set(raced)


def test_keys_and_versions() -> None:
    sha = "ab" * 32
    assert derived_name(f"site/x/.d/{sha}.w40") == "site/x"
    assert derived_name("site/x.jpg") is None and derived_name(".imports/1.json") is None
    assert of_version(f"x/.d/{sha}.w40", "x", sha)
    assert of_version(f"x/.d/{sha}/pyramid/0/0.jpg", "x", sha)  # pyramids may store tiles under their version
    assert not of_version(f"x/.d/{sha}0.w40", "x", sha)
    assert not of_version(f"x/.d/{'cd' * 32}.w40", "x", sha)
    assert names.derived_prefix("x") == "x/.d/"


@pytest.fixture
def swift_app(swift_server: SwiftServer, tmp_path: Path) -> Iterator[Flask]:
    suffix = uuid.uuid4().hex[:10]
    containers = (f"prune-{suffix}", f"prune-cache-{suffix}")
    s = swift_settings_for(swift_server)
    s.data_dir, s.original_stat_ttl = str(tmp_path / "data"), 0.0
    s.store, s.cache_store = (f"swift://{c}" for c in containers)
    app = create_app(s)
    bottom_level(app.extensions["image_repo"].cache).page_size = 2  # type: ignore[attr-defined]
    yield app
    app.extensions["image_repo"].cache.close()
    conn = swift_server.connection()
    for container in containers:
        delete_container(conn, container)


@pytest.mark.swift
def test_prune_on_swift(swift_app: Flask) -> None:
    before = scene(swift_app)
    service = swift_app.extensions["image_repo"]
    service.cache.flush(30.0)  # the derivatives written behind the answers are in Swift
    listed = derived(swift_app)
    dry = prune(service, dry_run=True, batch_size=2)
    assert derived(swift_app) == listed and (dry.gone, dry.replaced, dry.errors) == (3, 3, 0)
    done = prune(service, batch_size=2)
    assert (done.gone, done.replaced, done.kept) == (3, 3, len(listed) - 6)
    left = derived(swift_app)
    assert not [k for k in left if k.startswith(("site/c/", f"site/b/.d/{before['site/b']}."))]
    assert [k for k in left if k.startswith(f"site/b/.d/{version(swift_app, 'site/b')}.")]
    assert prune(service).removed == 0
