"""ImageService: list, upload, get (derive on a miss), meta, url, delete. No Flask here."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import re2

from . import names
from .concurrency import Limiter, SingleFlight
from .errors import (
    Conflict,
    ImageRepoError,
    InvalidRequest,
    NotConfigured,
    NotFound,
    StorageUnavailable,
    UnsupportedImage,
)
from .imaging import DerivationSpec, derive, probe, read_metadata
from .imaging.formats import KINDS, Kind
from .settings import Settings
from .storage.base import ObjectInfo, ObjectStore, SupportsTempUrl, content_version, sha256_hex

log = logging.getLogger("image_repo.service")

_REGEX_META = frozenset(".^$*+?{}[]\\|()")


@dataclass(frozen=True)
class Original:
    """An image's original as found in the store: where, what, and which version."""

    ref: names.OriginalRef
    info: ObjectInfo

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def version(self) -> str:
        return content_version(self.info)


@dataclass(frozen=True)
class Rendered:
    data: bytes
    content_type: str
    etag: str
    cached: bool
    """True when a cache level had it (no derivation was made for this request)."""


@dataclass(frozen=True)
class Uploaded:
    name: str
    key: str
    sha256: str
    created: bool


class ImageService:
    """The flow of DESIGN.md section 1, over one originals store and one stacked cache."""

    def __init__(self, settings: Settings, store: ObjectStore, cache: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.cache = cache
        self.name_limits = names.NameLimits(settings.max_name_bytes, settings.max_name_depth)
        self._flight = SingleFlight()
        running = settings.max_concurrent_derivations or max(1, settings.threads)
        self._limiter = Limiter(running, settings.max_queued_derivations)
        self._originals: dict[str, tuple[Original, float]] = {}
        self._originals_lock = threading.Lock()
        self._counters = {"derivations": 0, "cache_hits": 0, "uploads": 0, "deletes": 0}
        self._counter_lock = threading.Lock()

    # -- names ---------------------------------------------------------------------------
    def validate_name(self, raw: str) -> str:
        return names.validate_name(raw, self.name_limits)

    def _count(self, counter: str) -> None:
        with self._counter_lock:
            self._counters[counter] += 1

    def counters(self) -> dict[str, int]:
        with self._counter_lock:
            return dict(self._counters)

    # -- finding originals ---------------------------------------------------------------
    def list_names(self, regex: str | None = None, prefix: str = "") -> list[str]:
        """Names of every original under ``prefix`` whose whole name ``regex`` matches (RE2)."""
        matcher = self._compile(regex) if regex is not None else None
        listing_prefix = prefix
        if matcher is not None:
            literal = literal_prefix(regex or "")
            if literal.startswith(prefix):
                listing_prefix = literal
            elif not prefix.startswith(literal):
                return []
        found: set[str] = set()
        for info in self.store.list(listing_prefix):
            ref = names.parse_original_key(info.key)
            if ref is None or not ref.name.startswith(prefix):
                continue
            if matcher is None or matcher.fullmatch(ref.name):
                found.add(ref.name)
        return sorted(found)

    def _compile(self, regex: str) -> "re2._Regexp":
        if len(regex) > self.settings.max_regex_length:
            raise InvalidRequest(f"regex: longer than {self.settings.max_regex_length} characters")
        try:
            options = re2.Options()
            options.log_errors = False
            return re2.compile(regex, options)
        except re2.error as exc:
            raise InvalidRequest(f"regex: invalid pattern: {exc}") from None

    def find(self, name: str) -> Original | None:
        """The original of ``name``, or None. Trusts what it learned for ``original_stat_ttl`` seconds."""
        now = time.monotonic()
        with self._originals_lock:
            cached = self._originals.get(name)
        if cached is not None:
            original, seen = cached
            if now - seen < self.settings.original_stat_ttl:
                return original
            try:
                info = self.store.stat(original.ref.key)
            except StorageUnavailable:
                # What we last knew still names the right derivatives: cached ones can be served.
                log.warning("store unavailable; using what was last known of %s", name)
                return original
            if info is not None:
                original = Original(original.ref, info)
                self._remember(name, original, now)
                return original
        original = self._search(name)
        if original is None:
            self._forget(name)
        else:
            self._remember(name, original, now)
        return original

    def _search(self, name: str) -> Original | None:
        refs = [
            ref
            for info in self.store.list(name + ".")
            if (ref := names.parse_original_key(info.key)) is not None and ref.name == name
        ]
        if not refs:
            legacy = names.legacy_original_key(name, "x").rsplit(".", 1)[0]
            refs = [
                ref
                for info in self.store.list(legacy)
                if (ref := names.parse_original_key(info.key)) is not None and ref.name == name
            ]
        kind_order = list(KINDS)
        refs.sort(key=lambda r: (r.legacy, kind_order.index(r.kind.name) if r.kind.name in kind_order else 99, r.key))
        for ref in refs:
            info = self.store.stat(ref.key)
            if info is not None:
                return Original(ref, info)
        return None

    def _remember(self, name: str, original: Original, when: float) -> None:
        with self._originals_lock:
            if len(self._originals) > 100_000:
                self._originals.clear()
            self._originals[name] = (original, when)

    def _forget(self, name: str) -> None:
        with self._originals_lock:
            self._originals.pop(name, None)

    def get_original(self, name: str) -> Original:
        original = self.find(name)
        if original is None:
            raise NotFound(f"Image '{name}' not found")
        return original

    def resolve_path(self, path: str) -> tuple[Original, Kind | None]:
        """The image a GET path names: the exact name first, else the name less a known extension."""
        exact_error: ImageRepoError | None = None
        try:
            name = self.validate_name(path)
            original = self.find(name)
            if original is not None:
                return original, None
        except InvalidRequest as exc:
            exact_error = exc
        stem, kind = names.split_extension(path)
        if kind is not None and kind.name in KINDS:
            original = self.find(self.validate_name(stem))
            if original is not None:
                return original, kind
        if exact_error is not None:
            raise exact_error
        raise NotFound(f"Image '{path}' not found")

    # -- derived images ------------------------------------------------------------------
    def etag(self, original: Original, spec: DerivationSpec) -> str:
        """Strong ETag: changes with the original's bytes and with the canonical spec."""
        digest = hashlib.sha256(f"{original.version}\n{spec.key()}".encode()).hexdigest()
        return digest[:32]

    def render(self, original: Original, spec: DerivationSpec) -> Rendered:
        """The derived image: from a cache level if any has it, else made once and cached."""
        key = names.derived_key(original.name, original.version, spec)
        etag = self.etag(original, spec)
        content_type = KINDS[spec.kind].content_type
        try:
            data, _ = self.cache.get_with_info(key)
            self._count("cache_hits")
            return Rendered(data, content_type, etag, cached=True)
        except NotFound:
            pass
        except StorageUnavailable:
            log.warning("cache unavailable while reading %s; deriving", key)

        def make() -> bytes:
            with self._limiter.slot():
                source = self.store.get(original.ref.key)
                if sha_mismatch(original.info, source):
                    # The original changed between stat and get: never cache under the old version.
                    self._forget(original.name)
                    raise StorageUnavailable("the original changed while it was read; retry")
                derived = derive(
                    source,
                    spec,
                    max_pixels=self.settings.max_pixels,
                    max_output_pixels=self.settings.max_output_pixels,
                )
                del source
            self._count("derivations")
            try:
                # The cache store's copy is written behind the answer where the cache can (TieredStore).
                put = getattr(self.cache, "put_behind", self.cache.put)
                put(key, derived.data, derived.content_type, {"source-version": original.version[:128]})
            except StorageUnavailable:
                log.warning("could not write derived image %s to the cache; serving it anyway", key)
            return derived.data

        data = self._flight.run(key, make)
        return Rendered(data, content_type, etag, cached=False)

    def cached_in_store(self, original: Original, spec: DerivationSpec) -> str:
        """The derived key, made and written to the authoritative cache store if it is not there."""
        key = names.derived_key(original.name, original.version, spec)
        bottom = bottom_level(self.cache)
        if bottom.stat(key) is None:
            rendered = self.render(original, spec)
            if bottom.stat(key) is None:
                bottom.put(key, rendered.data, rendered.content_type, {"source-version": original.version[:128]})
        return key

    def temp_url(
        self, original: Original, spec: DerivationSpec, sign_own: Callable[[str], tuple[str, int]]
    ) -> tuple[str, int]:
        """A temporary URL to the derived image: the cache store's own (Swift/S3), else ours."""
        if not self.settings.url_key:
            raise NotConfigured("url=true needs url_key to be set in the server's configuration")
        key = self.cached_in_store(original, spec)
        bottom = bottom_level(self.cache)
        if isinstance(bottom, SupportsTempUrl):
            return bottom.temp_url(key, "GET", self.settings.url_lifetime)
        return sign_own(key)

    def get_derived(self, key: str) -> tuple[bytes, str]:
        """A derived object by key (for the server's own signed URLs)."""
        data, info = self.cache.get_with_info(key)
        return data, info.content_type or "application/octet-stream"

    def original_bytes(self, original: Original) -> bytes:
        """The stored original byte for byte (``original=true``)."""
        return self.store.get(original.ref.key)

    def metadata(self, original: Original) -> dict[str, object]:
        source = self.store.get(original.ref.key)
        meta = read_metadata(source, include_gps=self.settings.expose_gps)
        return {
            "name": original.name,
            "key": original.ref.key,
            "bytes": len(source),
            "sha256": original.info.sha256 or sha256_hex(source),
            "content_type": original.info.content_type or original.ref.kind.content_type,
            **meta,
        }

    # -- writes --------------------------------------------------------------------------
    def upload(
        self,
        target: str,
        data: bytes,
        filename: str | None = None,
        *,
        replace: bool = False,
        expected_sha256: str | None = None,
    ) -> Uploaded:
        """Store ``data`` byte for byte as the original of the name ``target`` implies.

        ``target`` may end in ``/`` (then the upload's own filename is appended) and may
        carry an extension (naming the kind; the content decides the stored extension).
        ``expected_sha256`` (hex), when given, must match ``data`` or nothing is stored.
        The same bytes again under the same name succeed and change nothing (a retry is safe).
        """
        if target == "" or target.endswith("/"):
            base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
            if not base:
                raise InvalidRequest("name: the path ends in '/' but the upload has no filename")
            target = target + base
        stem, path_kind = names.split_extension(target)
        name = self.validate_name(stem if path_kind is not None else target)
        if not data:
            raise UnsupportedImage("file: the upload is empty")
        digest = sha256_hex(data)
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            raise InvalidRequest(f"checksum: the upload's SHA-256 is {digest}, not {expected_sha256}; nothing stored")
        info = probe(data, max_pixels=self.settings.max_pixels)
        kind = info.kind
        key = names.original_key(name, kind)
        existing = self._all_original_keys(name)
        if len(existing) == 1 and existing[0].key == key:
            same = self.store.stat(key)
            if same is not None and same.sha256 == digest:
                return Uploaded(name, key, digest, created=False)  # identical: nothing to write or invalidate
        if existing and not replace:
            raise Conflict(f"Image '{name}' already exists; use PUT to replace it")
        stored = self.store.put(key, data, kind.content_type, {"sha256": digest})
        for other in existing:
            if other.key != key:
                try:
                    self.store.delete(other.key)
                except NotFound:
                    pass
        self._forget(name)
        if existing:
            self._drop_derivatives(name)
        self._count("uploads")
        return Uploaded(name, key, stored.sha256 or digest, created=not existing)

    def delete(self, name: str) -> None:
        """Remove the original (every stored form of it) and its derivatives."""
        refs = self._all_original_keys(name)
        if not refs:
            raise NotFound(f"Image '{name}' not found")
        for ref in refs:
            try:
                self.store.delete(ref.key)
            except NotFound:
                pass
        self._forget(name)
        self._drop_derivatives(name)
        self._count("deletes")

    def _all_original_keys(self, name: str) -> list[names.OriginalRef]:
        legacy = names.legacy_original_key(name, "x").rsplit(".", 1)[0]
        refs = []
        for prefix in (name + ".", legacy):
            for info in self.store.list(prefix):
                ref = names.parse_original_key(info.key)
                if ref is not None and ref.name == name and ref not in refs:
                    refs.append(ref)
        return refs

    def _drop_derivatives(self, name: str) -> None:
        """Best effort: derived keys carry the original's version, so leftovers are never served."""
        flush = getattr(self.cache, "flush", None)
        if callable(flush):
            flush(10.0)  # a derivative still being written behind must not land after we list
        try:
            for info in list(bottom_level(self.cache).list(names.derived_prefix(name))):
                try:
                    self.cache.delete(info.key)
                except NotFound:
                    pass
        except StorageUnavailable:
            log.warning("could not remove the derived images of %s; they will never be served", name)

    # -- several images ------------------------------------------------------------------
    def select(self, path: str, regex: str | None) -> list[str]:
        """The names a multi-image request selects: under the directory ``path``, matching ``regex``."""
        prefix = path if path == "" or path.endswith("/") else path + "/"
        if prefix:
            self.validate_name(prefix.rstrip("/"))
        selected = self.list_names(regex, prefix=prefix)
        if not selected:
            if regex is not None:
                raise NotFound(f"No images match '{prefix}  regex={regex}'")
            raise NotFound(f"No images found in '{prefix or '/'}'")
        return selected

    def stats(self) -> dict[str, object]:
        levels = getattr(self.cache, "stats", None)
        return {"counters": self.counters(), "cache": levels() if callable(levels) else {}}

    def ready(self) -> dict[str, str]:
        """Whether each store answers; raises StorageUnavailable naming the first that does not."""
        for label, store in (("store", self.store), ("cache_store", bottom_level(self.cache))):
            try:
                store.stat(".readyz-probe")
            except StorageUnavailable as exc:
                raise StorageUnavailable(f"{label} unavailable: {exc.message}") from None
        return {"store": "ok", "cache_store": "ok"}


def bottom_level(store: ObjectStore) -> ObjectStore:
    """The authoritative level of a stacked cache (the store itself if it is not stacked)."""
    levels = getattr(store, "levels", None)
    return levels[-1] if levels else store  # type: ignore[no-any-return]


def sha_mismatch(info: ObjectInfo, data: bytes) -> bool:
    return info.sha256 is not None and len(data) == info.size and sha256_hex(data) != info.sha256


def literal_prefix(pattern: str) -> str:
    """The literal text every full match of ``pattern`` must start with ('' when unsure)."""
    if "|" in pattern:
        return ""
    out: list[str] = []
    for i, ch in enumerate(pattern):
        if ch in _REGEX_META:
            if ch in "*?{" and out:
                out.pop()  # the quantifier makes the previous character optional
            break
        out.append(ch)
    return "".join(out)
