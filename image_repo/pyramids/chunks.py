"""Reading a pyramid in a remote store by chunks kept on this host: one GET serves many tiles.

A tile of a pyramid in Swift or S3 costs one ranged GET, and on Swift most of a GET's cost is
the store's own per-request work (token, account and container lookups: 15-60 ms on the
suite's Swift), whatever the length. Viewers ask for neighbouring tiles, and a TIFF stores a
row of tiles side by side, so a remote pyramid is read in aligned chunks of
``pyramid_read_chunk_bytes`` (default 1 MiB, some 25 JPEG tiles of 512 px), kept in the host's
cache levels (the worker's memory, the host's disk): the first tile of a chunk costs one GET,
its neighbours none, in every worker of the host. Cantaloupe reads 512 KB chunks too, but
forgets them at the end of each request.

A chunk is a derivative of the original's version (its key is under the original's derived
prefix), so a replaced original never serves old chunks, and deleting derivatives drops them.
A local store is read directly: a pread costs less than any cache lookup.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import names
from ..errors import NotFound, StorageUnavailable
from ..host.flight import HostFlight, SingleFlight
from ..storage.base import ObjectInfo, ObjectStore, get_ranges


class Chunks:
    """The host's chunk cache of remote pyramids: one per process, shared by its readers."""

    def __init__(self, cache: Any, chunk_bytes: int, host_flight: HostFlight | None) -> None:
        self.cache = cache
        """The stacked cache; chunks go to its levels on this host only (``get_local``/``put_local``)."""
        self.chunk_bytes = chunk_bytes
        self._flight = SingleFlight()
        self._host_flight = host_flight
        self.fetched = 0
        """Chunks this process read from the store (for tests and the bench)."""

    def enabled_for(self, store: ObjectStore) -> bool:
        return (self.chunk_bytes > 0 and not getattr(store, "local", False)
                and hasattr(self.cache, "get_local") and hasattr(self.cache, "put_local"))

    def reader(self, store: ObjectStore, name: str, version: str, key: str, size: int) -> ChunkedObject:
        return ChunkedObject(self, store, f"{names.derived_prefix(name)}{version}.pyramid-chunk", key, size)

    def get(self, store: ObjectStore, key: str, size: int, prefix: str, n: int) -> bytes:
        """Chunk ``n`` of ``key``: from this host's levels, else read once (per process and host) and kept."""
        ck = f"{prefix}{self.chunk_bytes}.{n}"
        try:
            return bytes(self.cache.get_local(ck)[0])
        except (NotFound, StorageUnavailable):
            pass

        def fetch() -> bytes:
            if self._host_flight is None:
                return self._fetch(store, key, size, ck, n)
            with self._host_flight.hold(ck) as waited:
                if waited:  # another worker of the host may have read it meanwhile
                    try:
                        return bytes(self.cache.get_local(ck)[0])
                    except (NotFound, StorageUnavailable):
                        pass
                return self._fetch(store, key, size, ck, n)

        return self._flight.run(ck, fetch)

    def cached(self, prefix: str, n: int) -> bytes | None:
        """Chunk ``n`` if this host's levels hold it, else None."""
        try:
            return bytes(self.cache.get_local(f"{prefix}{self.chunk_bytes}.{n}")[0])
        except (NotFound, StorageUnavailable):
            return None

    def fetch_many(self, store: ObjectStore, key: str, size: int, prefix: str, ns: Sequence[int]) -> dict[int, bytes]:
        """Chunks ``ns`` read in one GET of several ranges (Swift; one GET each elsewhere) and kept."""
        step = self.chunk_bytes
        datas = get_ranges(store, key, [(n * step, min(step, size - n * step)) for n in ns])
        self.fetched += len(ns)
        for n, data in zip(ns, datas):
            ck = f"{prefix}{step}.{n}"
            self.cache.put_local(ck, data, ObjectInfo(ck, len(data), "application/octet-stream"))
        return dict(zip(ns, datas))

    def _fetch(self, store: ObjectStore, key: str, size: int, ck: str, n: int) -> bytes:
        start = n * self.chunk_bytes
        data = store.get_range(key, start, min(self.chunk_bytes, size - start))
        self.fetched += 1
        self.cache.put_local(ck, data, ObjectInfo(ck, len(data), "application/octet-stream"))
        return data


class ChunkedObject:
    """``get_range``/``get_ranges`` of one remote pyramid object, answered from its chunks."""

    def __init__(self, chunks: Chunks, store: ObjectStore, prefix: str, key: str, size: int) -> None:
        self.chunks = chunks
        self.store = store
        self.prefix = prefix
        self.key = key
        self.size = size

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if key != self.key or length <= 0 or start + length > self.size:
            return self.store.get_range(key, start, length)  # not ours, or past the end: the store says how
        step = self.chunks.chunk_bytes
        first, last = start // step, (start + length - 1) // step
        parts = [self.chunks.get(self.store, key, self.size, self.prefix, n) for n in range(first, last + 1)]
        blob = parts[0] if len(parts) == 1 else b"".join(parts)
        offset = start - first * step
        return blob[offset:offset + length]

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Each range from its chunks; the chunks no level holds are read together, in one GET.

        A rendered tile of a multichannel image needs one tile of each channel shown, and the
        channels' planes lie far apart: one chunk each, asked for at once."""
        if key != self.key or any(length <= 0 or start + length > self.size for start, length in ranges):
            return [self.get_range(key, start, length) for start, length in ranges]
        step = self.chunks.chunk_bytes
        wanted = sorted({n for start, length in ranges for n in range(start // step, (start + length - 1) // step + 1)})
        have = {n: self.chunks.cached(self.prefix, n) for n in wanted}
        missing = [n for n, data in have.items() if data is None]
        if len(missing) > 1:  # one chunk alone goes through the flight of get_range (once per host)
            have.update(self.chunks.fetch_many(self.store, key, self.size, self.prefix, missing))
        out = []
        for start, length in ranges:
            first, last = start // step, (start + length - 1) // step
            parts = [have[n] or self.chunks.get(self.store, key, self.size, self.prefix, n) for n in range(first, last + 1)]
            blob = parts[0] if len(parts) == 1 else b"".join(parts)
            out.append(blob[start - first * step:start - first * step + length])
        return out
