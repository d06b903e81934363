"""open_store: a store by URL scheme; unknown or unloadable schemes are ConfigErrors naming the URL."""
from __future__ import annotations

import sys

import pytest

from image_repo.errors import ConfigError
from image_repo.storage.filesystem import FileStore
from image_repo.storage.memory import MemoryStore
from image_repo.storage.registry import open_store, url_scheme


def test_memory_urls_are_fresh_each_time():
    a, b = open_store("memory://x"), open_store("memory://x")
    assert isinstance(a, MemoryStore)
    a.put("k", b"1")
    assert b.stat("k") is None


@pytest.mark.parametrize("form", ["file://{p}", "{p}", "file:{p}"])
def test_file_urls_and_plain_paths(tmp_path, form):
    store = open_store(form.format(p=tmp_path / "s"))
    assert isinstance(store, FileStore)
    assert store.root == str(tmp_path / "s")


def test_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_store("data/originals").root == str(tmp_path / "data" / "originals")  # type: ignore[attr-defined]
    assert open_store("file:rel").root == str(tmp_path / "rel")  # type: ignore[attr-defined]


def test_unknown_scheme():
    with pytest.raises(ConfigError, match="ftp://h/x"):
        open_store("ftp://h/x")
    with pytest.raises(ConfigError):
        open_store("")


def test_missing_backend_module_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "image_repo.storage.s3", None)  # import fails
    with pytest.raises(ConfigError, match="s3://bucket"):
        open_store("s3://bucket/prefix")


def test_url_scheme():
    assert url_scheme("SWIFT://c") == "swift"
    assert url_scheme("/abs/path") == "file"
    assert url_scheme("./a:b") == "file"
    assert url_scheme("memory://") == "memory"
