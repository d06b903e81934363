"""open_store(url): the ObjectStore a URL names, chosen by scheme (as fsspec does)."""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from .base import ObjectStore

# scheme -> (module, class); each class has ``from_url(url, settings)``. Imported lazily so a
# server on file:// never needs swiftclient or boto3, and a missing backend is a clear ConfigError.
BACKENDS: dict[str, tuple[str, str]] = {
    "memory": ("image_repo.storage.memory", "MemoryStore"),
    "file": ("image_repo.storage.filesystem", "FileStore"),
    "swift": ("image_repo.storage.swift", "SwiftStore"),
    "s3": ("image_repo.storage.s3", "S3Store"),
}


def url_scheme(url: str) -> str:
    """The scheme of ``url``; ``file`` for a plain path (``/srv/images``, ``./data``)."""
    head, sep, _ = url.partition(":")
    if not sep or "/" in head or not head or not head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return "file"
    return head.lower()


def open_store(url: str, settings: Any = None) -> ObjectStore:
    """The store ``url`` names: memory://, file:///abs (or a path), swift://container, s3://bucket/prefix."""
    if not url:
        raise ConfigError("store URL is empty")
    scheme = url_scheme(url)
    backend = BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(f"store URL {url!r}: unknown scheme {scheme!r} (known: {known})")
    module_name, class_name = backend
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"store URL {url!r}: the {scheme} backend cannot be loaded ({e})") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"store URL {url!r}: {module_name} has no {class_name}")
    store: ObjectStore = cls.from_url(url, settings)
    return store
