"""Named renderings of multichannel images: saved, listed, looked up, and applied to requests.

A saved rendering is user data, not a derivative: one small JSON object per rendering in the
originals store, ``<name>/.renderings/<rname>.json`` (a segment starting with ``.`` is never
an image name), so every server sees it, and a lost cache store loses none. Deleting or
replacing the original drops them. A worker remembers an image's renderings for
``original_stat_ttl`` seconds; a save through any worker of this host is seen by all of them
at once (the host's write counter), through another server within that time.

Derivatives made with a rendering are keyed by its canonical form (``Rendering.key()``), not
its name: saving a rendering anew never serves tiles of its old settings, and a saved and an
inline rendering that mean the same share their tiles.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequest, NotFound, PayloadTooLarge, StorageUnavailable
from ..host.writes import HostWrites
from ..iiif.params import QUALITIES
from ..imaging.rendering import NAME, Rendering, default_rendering, from_json
from ..imaging.spec import DerivationSpec
from ..pyramids.source import SourceInfo, TiledSource
from ..storage.base import ObjectStore

if TYPE_CHECKING:
    from .images import ImageService
    from .originals import Original

log = logging.getLogger("image_repo.service")

SEGMENT = ".renderings"
MAX_BODY = 64 * 1024
MAX_SAVED = 200
"""Renderings one image may have (each is a quality in its info.json)."""


def prefix(name: str) -> str:
    return f"{name}/{SEGMENT}/"


def check_name(rname: str) -> str:
    """A rendering's name: an IIIF quality of its own (400 otherwise)."""
    if not NAME.fullmatch(rname):
        raise InvalidRequest(f"renderings: {rname[:80]!r} is not a rendering name "
                             "(1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit)")
    if rname in QUALITIES:
        raise InvalidRequest(f"renderings: {rname!r} is a quality of the IIIF API; choose another name")
    return rname


def default_of(info: SourceInfo) -> Rendering:
    """The rendering made when the pyramid was built (or, for an older pyramid, made now the same way)."""
    return info.rendering or default_rendering(info.channels)


class Renderings:
    """The saved renderings of one originals store."""

    def __init__(self, service: ImageService, store: ObjectStore, writes: HostWrites | None = None) -> None:
        self.service = service
        self.store = store
        self._writes = writes
        self._writes_seen = writes.value() if writes is not None else b""
        self._known: dict[str, tuple[dict[str, Rendering], float]] = {}
        self._lock = threading.Lock()

    # -- saved -------------------------------------------------------------------------
    def saved(self, name: str) -> dict[str, Rendering]:
        """``name``'s saved renderings by name (sorted), remembered for original_stat_ttl seconds."""
        now = time.monotonic()
        if self._writes is not None and (mark := self._writes.value()) != self._writes_seen:
            with self._lock:
                self._writes_seen = mark
                self._known.clear()
        hit = self._known.get(name)
        if hit is not None and now - hit[1] < self.service.settings.original_stat_ttl:
            return hit[0]
        found: dict[str, Rendering] = {}
        for info in self.store.list(prefix(name)):
            rname = info.key[len(prefix(name)):].removesuffix(".json")
            if not NAME.fullmatch(rname) or len(found) >= MAX_SAVED:
                continue
            try:
                found[rname] = from_json(json.loads(self.store.get(info.key)))
            except NotFound:
                continue  # removed between the listing and the read
            except (ValueError, InvalidRequest) as e:
                log.warning("saved rendering %s is not readable (%s): left out", info.key, e)
        found = dict(sorted(found.items()))
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[name] = (found, now)
        return found

    def names_for(self, original: Original, source: TiledSource) -> tuple[str, ...]:
        """The qualities ``original``'s renderings add to its info.json (none unless it has channels)."""
        if source.info.photometric != "channels":
            return ()
        try:
            return tuple(self.saved(original.name))
        except StorageUnavailable as e:
            log.warning("renderings of %s not listed: %s", original.name, e.message)
            return ()

    def save(self, original: Original, rname: str, body: bytes) -> dict[str, Any]:
        """Validate and store a named rendering for ``original``; what it now is."""
        check_name(rname)
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"body: a rendering is at most {MAX_BODY} bytes of JSON")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidRequest(f"body: not JSON ({e})") from None
        rendering = from_json(doc)
        source = self.service.iiif.source(original)  # 503 while a multichannel original has no pyramid yet
        info = self.check(source, rendering, "body")
        existing = self.saved(original.name)
        if rname not in existing and len(existing) >= MAX_SAVED:
            raise InvalidRequest(f"renderings: '{original.name}' has {MAX_SAVED} renderings already")
        self.store.put(prefix(original.name) + rname + ".json", json.dumps(rendering.as_json()).encode(),
                       "application/json")
        self._forget(original.name)
        return self.describe_one(rname, rendering, info)

    def delete(self, original: Original, rname: str) -> None:
        check_name(rname)
        try:
            self.store.delete(prefix(original.name) + rname + ".json")
        except NotFound:
            raise NotFound(f"renderings: '{original.name}' has no rendering named {rname!r}") from None
        finally:
            self._forget(original.name)

    def drop(self, name: str) -> None:
        """Every saved rendering of ``name`` (its original was deleted or replaced); best effort."""
        try:
            for info in list(self.store.list(prefix(name))):
                try:
                    self.store.delete(info.key)
                except NotFound:
                    pass
        except StorageUnavailable:
            log.warning("could not remove the renderings of %s", name)
        self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)
        if self._writes is not None:
            self._writes.bump()

    # -- applied -----------------------------------------------------------------------
    @staticmethod
    def check(source: TiledSource, rendering: Rendering, part: str) -> SourceInfo:
        info = source.info
        if info.photometric != "channels":
            raise InvalidRequest(f"{part}: this image is {info.photometric}, not multichannel: it has no channels to render")
        rendering.check(len(info.channels), part)
        return info

    def named(self, original: Original, rname: str, part: str = "rendering") -> Rendering:
        saved = self.saved(original.name)
        if rname not in saved:
            known = ", ".join(["default", *saved]) if saved else "default"
            raise InvalidRequest(f"{part}: '{original.name}' has no rendering named {rname[:80]!r} (it has: {known})")
        return saved[rname]

    def spec_for(self, original: Original, spec: DerivationSpec, rname: str | None) -> DerivationSpec:
        """The 2016 request's spec with its rendering resolved (``rendering=`` by name, ``channels=``
        inline) and checked against the image; unchanged when it asks for none."""
        if rname is None and spec.rendering is None:
            return spec
        source = self.service.iiif.source(original)
        if rname is not None:
            if source.info.photometric != "channels":
                self.check(source, Rendering(()), "rendering")
            rendering = default_of(source.info) if rname == "default" else self.named(original, rname)
            self.check(source, rendering, "rendering")
            return replace(spec, rendering=rendering)
        assert spec.rendering is not None
        self.check(source, spec.rendering, "channels")
        return spec

    def describe(self, source: TiledSource, original: Original) -> dict[str, Any]:
        """What meta=true adds for a multichannel image: its channels and its renderings."""
        info = source.info
        if info.photometric != "channels":
            return {}
        channels = [{"index": i, "name": c.name, "dtype": c.dtype, "colour": c.colour, **c.stats}
                    for i, c in enumerate(info.channels)]
        renderings = {"default": self.describe_one("default", default_of(info), info)}
        try:
            for rname, rendering in self.saved(original.name).items():
                renderings[rname] = self.describe_one(rname, rendering, info)
        except StorageUnavailable as e:
            log.warning("renderings of %s not listed: %s", original.name, e.message)
        return {"channels": channels, "renderings": renderings}

    @staticmethod
    def describe_one(rname: str, rendering: Rendering, info: SourceInfo) -> dict[str, Any]:
        out = rendering.as_json()
        for w, item in zip(rendering.channels, out["channels"]):
            if w.index < len(info.channels):
                item["name"] = info.channels[w.index].name
        return {"name": rname, **out, "inline": rendering.text(), "quality": rname}
