"""Finding originals: listing names (RE2), looking one up, and what a worker remembers of it.

Split out of images.py (ImageService): this is the part of the flow that talks to the originals store
about *which* object holds an image and which version of it is current. The fast path
(web/fastpath.py) uses the same lookup, so a cache hit is answered only after the same
check of the original's version that the service makes.
"""
from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import re2

from .. import names
from ..config.settings import Settings
from ..errors import ImageRepoError, InvalidRequest, NotFound, StorageUnavailable
from ..host.storegate import exempt_thread
from ..host.writes import HostWrites
from ..imaging.formats import INPUT_KINDS, KINDS, Kind
from ..storage.base import ObjectInfo, ObjectStore, content_version

log = logging.getLogger("image_repo.service")

_REGEX_META = frozenset(".^$*+?{}[]\\|()")
_KIND_ORDER = {name: i for i, name in enumerate(KINDS)}
# Every (kind, extension) an original can be stored with, in the order _preference gives.
_EXTENSIONS = sorted(((k, ext) for k in INPUT_KINDS.values() for ext in k.extensions),
                     key=lambda ke: (_KIND_ORDER.get(ke[0].name, 99), ke[1] != ke[0].name, ke[1]))
_ENDINGS = frozenset("." + "".join(case) for ext in {e for _, e in _EXTENSIONS}
                     for case in itertools.product(*((c.lower(), c.upper()) if c.isalpha() else (c,) for c in ext)))
"""What can follow a name in the key of its original, as split_extension reads keys: ``.jpg``,
``.JPG``, ``.Jpg``... (extensions are matched in any case)."""
MAX_REMEMBERED = 100_000
"""Originals a worker keeps what it learned of; past that the table starts over (bounded memory)."""
MAX_CHECKS = 64
"""Checks of originals under way at once per worker; past that, what was known is used."""


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


class Originals:
    """Lookups of originals in one store, remembering each for ``settings.original_stat_ttl`` seconds."""

    def __init__(self, settings: Settings, store: ObjectStore, writes: HostWrites | None = None) -> None:
        self.settings = settings
        self.store = store
        self.name_limits = names.NameLimits(settings.max_name_bytes, settings.max_name_depth)
        # name -> (its original, or None when it has none, and when that was learned)
        self._known: dict[str, tuple[Original | None, float]] = {}
        self._lock = threading.Lock()
        self._writes = writes
        self._writes_seen = writes.value() if writes is not None else b""
        # Checks of known originals on a remote store run on two threads of their own, so a
        # request waits for one at most original_check_wait (a local store is asked directly).
        self._remote = hasattr(store, "gate") and settings.original_check_wait > 0
        self._checks: dict[str, Future[ObjectInfo | None]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def validate_name(self, raw: str) -> str:
        return names.validate_name(raw, self.name_limits)

    # -- listing -------------------------------------------------------------------------
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
        parse = names.parse_original_key
        fullmatch = matcher.fullmatch if matcher is not None else None
        for info in self.store.list(listing_prefix):
            ref = parse(info.key)
            if ref is None or not ref.name.startswith(prefix):
                continue
            if fullmatch is None or fullmatch(ref.name):
                found.add(ref.name)
        return sorted(found)

    def list_page(self, regex: str | None, marker: str, limit: int) -> tuple[list[str], bool]:
        """At most ``limit`` names after ``marker`` in the order ``list_names`` gives, and whether more follow.

        The store is listed from ``marker`` on (every key of a later name sorts after it) and
        only until no later key can hold a name of this page. Key order is name order but for
        one case: the key of ``scan`` (``scan.jpg``) sorts after those of ``scan-01``,
        ``scan 2`` and ``scan.1`` (a character up to ``.`` after the shorter name). So once the
        listing is past the page's last name, the few shorter names it could still hide (its
        prefixes that end before such a character) are looked up directly.
        """
        matcher = self._compile(regex) if regex is not None else None
        fullmatch = matcher.fullmatch if matcher is not None else None
        want = limit + 1  # one more than the page: whether a next page exists
        found: list[str] = []
        seen: set[str] = set()

        def add(name: str) -> None:
            if name > marker and name not in seen and (fullmatch is None or fullmatch(name)):
                seen.add(name)
                bisect.insort(found, name)
                del found[want:]

        parse = names.parse_original_key
        exhausted = True
        for info in self.store.list(literal_prefix(regex or ""), marker):
            if len(found) == want and info.key > found[-1]:
                exhausted = False
                break
            ref = parse(info.key)
            if ref is not None:
                add(ref.name)
        if not exhausted:
            last = found[-1]
            for j in range(1, len(last)):
                shorter = last[:j]
                if last[j] <= "." and shorter not in seen and shorter > marker and self._exists(shorter):
                    add(shorter)
        return found[:limit], len(found) > limit

    def _exists(self, name: str) -> bool:
        try:
            return self.find(self.validate_name(name)) is not None
        except InvalidRequest:
            return False  # not a valid name: no original can have it

    def _compile(self, regex: str) -> "re2._Regexp":
        if len(regex) > self.settings.max_regex_length:
            raise InvalidRequest(f"regex: longer than {self.settings.max_regex_length} characters")
        try:
            options = re2.Options()
            options.log_errors = False
            return re2.compile(regex, options)
        except re2.error as exc:
            raise InvalidRequest(f"regex: invalid pattern: {exc}") from None

    # -- one original --------------------------------------------------------------------
    def find(self, name: str, *, fresh: bool = False) -> Original | None:
        """The original of ``name``, or None. Trusts what it learned for ``original_stat_ttl`` seconds unless ``fresh``."""
        now = time.monotonic()
        if self._writes is not None and (mark := self._writes.value()) != self._writes_seen:
            with self._lock:  # a write through a worker of this host: what we knew may be stale
                self._writes_seen = mark
                self._known.clear()
        cached = self._known.get(name)  # a dict read is atomic; writes take the lock
        if cached is not None and now - cached[1] < self.settings.original_stat_ttl and not fresh:
            return cached[0]
        original = cached[0] if cached is not None else None
        if original is not None:
            try:
                info = self._check(name, original) if self._remote and not fresh else self.store.stat(original.ref.key)
            except StorageUnavailable as e:
                # What we last knew still names the right derivatives: cached ones can be served.
                log.warning("store unavailable (%s); using what was last known of %s", e.message, name)
                return original
            if info is not None:
                if info != original.info:
                    original = Original(original.ref, info)
                self.remember(name, original, now)
                return original
        # That a name has no original is remembered as well: a path with a kind's extension
        # (``a.jpg`` for the original ``a``) asks for the exact name first, and a local store
        # that misses lists the name's directory (~160 ms for 100,000 names), a remote one
        # lists twice over the network, on every request for as long as the name is asked.
        found = self._search(name)
        self.remember(name, found, now)
        return found

    def _check(self, name: str, original: Original) -> ObjectInfo | None:
        """The store's stat of a known original, waited for at most original_check_wait (StorageUnavailable past it)."""
        made = False
        with self._lock:
            future = self._checks.get(name)  # one check per original at a time, however many requests wait
            if future is None:
                if len(self._checks) >= MAX_CHECKS:
                    raise StorageUnavailable(f"{MAX_CHECKS} checks of originals already wait on the store")
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(2, thread_name_prefix="image_repo-check", initializer=exempt_thread)
                future = self._checks[name] = self._pool.submit(self.store.stat, original.ref.key)
                made = True
        if made:  # outside the lock: the callback of a future already done runs at once, and takes it
            future.add_done_callback(lambda done: self._check_done(name, done))
        wait = self.settings.original_check_wait
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            raise StorageUnavailable(f"no answer within original_check_wait ({wait:g} s)") from None

    def _check_done(self, name: str, future: Future[ObjectInfo | None]) -> None:
        with self._lock:
            if self._checks.get(name) is future:
                del self._checks[name]

    def _search(self, name: str) -> Original | None:
        stat_first = getattr(self.store, "stat_first", None)
        if stat_first is not None:
            # A local store: stat the few keys we write first (the forms below, every
            # extension in every case, are for keys written by other tools, such as ``.JPG``).
            # Made as they are statted: the first form usually exists, and the legacy keys
            # (quoted, ~0.3 ms for all of them) are then never built.
            tried: dict[str, names.OriginalRef] = {}

            def keys() -> Iterator[str]:
                for ref in _candidates(name):
                    tried[ref.key] = ref
                    yield ref.key

            info = stat_first(keys())
            if info is not None:
                return Original(tried[info.key], info)
        for _ in range(3):
            refs = [ref for ref, _ in self.stored_forms(name, legacy=False)]
            if not refs:
                refs = [ref for ref, _ in self.stored_forms(name, current=False)]  # the 2016 layout, if nothing newer
            refs.sort(key=_preference)
            for ref in refs:
                info = self.store.stat(ref.key)
                if info is not None:
                    return Original(ref, info)
            if not refs:
                return None
            # Every form listed was gone when asked for: a write of another format replaced it
            # meanwhile (keep_newest). The new form is listed by now: look again.
        return None

    def remember(self, name: str, original: Original | None, when: float) -> None:
        with self._lock:
            if len(self._known) > MAX_REMEMBERED:
                self._known.clear()
            self._known[name] = (original, when)

    def forget(self, name: str) -> None:
        """Drop what this worker knows of ``name``."""
        with self._lock:
            self._known.pop(name, None)

    def changed(self, name: str) -> None:
        """``name``'s original was written or removed: this worker and the host's others forget it."""
        self.forget(name)
        if self._writes is not None:
            self._writes.bump()

    def get(self, name: str) -> Original:
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

    def all_keys(self, name: str) -> list[names.OriginalRef]:
        """Every stored form of ``name``'s original (current and 2016 layout)."""
        return [ref for ref, _ in self.stored_forms(name)]

    def stored_forms(self, name: str, *, current: bool = True,
                     legacy: bool = True) -> list[tuple[names.OriginalRef, ObjectInfo]]:
        """The stored forms of ``name``'s original, as listed: in the ``current`` layout, the 2016 one's (``legacy``)."""
        prefixes = [name] if current else []
        if legacy:
            prefixes.append(names.legacy_original_key(name, "x").rsplit(".", 1)[0])
        list_exact = getattr(self.store, "list_exact", None)  # a local store: no read of a whole directory
        found: dict[str, tuple[names.OriginalRef, ObjectInfo]] = {}
        for prefix in prefixes:
            listed = list_exact(prefix, _ENDINGS) if list_exact is not None else self.store.list(prefix + ".")
            for info in listed:
                ref = names.parse_original_key(info.key)
                if ref is not None and ref.name == name:
                    found.setdefault(ref.key, (ref, info))
        return list(found.values())

    def keep_newest(self, name: str) -> None:
        """After a write of ``name``: of its stored forms, keep only the newest.

        Two writes of one name in different formats (``n.jpg`` and ``n.png``) that cross each
        delete only what they listed before writing, so both could stay. Each writer looks
        again after its own write; the last to look sees both and removes the older, and an
        earlier one never removes what it cannot see: every writer ends on the same, newest
        form (ties go to the key that sorts last, for all of them alike). Last writer wins,
        as for two writes of one key.
        """
        forms = self.stored_forms(name, legacy=False)  # we never write the 2016 layout
        if len(forms) < 2:
            return
        newest = max(forms, key=_recency)
        for ref, listed in forms:
            if ref.key == newest[0].key:
                continue
            # Asked again just before: a form rewritten since the listing may now be the newest.
            # (No store offers a delete conditional on the version, so a rewrite landing between
            # this look and the delete can still be lost: the window is one round trip.)
            now = self.store.stat(ref.key)
            if now is None or _recency((ref, now)) > _recency(newest):
                continue
            try:
                self.store.delete(ref.key)
            except NotFound:
                pass


def _recency(form: tuple[names.OriginalRef, ObjectInfo]) -> tuple[float, str]:
    """Which of two stored forms was written last (ties to the key that sorts last, for every writer alike)."""
    return form[1].modified or 0.0, form[0].key


def _preference(ref: names.OriginalRef) -> tuple[bool, int, bool, str]:
    """Which of several stored forms of one original is served: current layout, kind order, our extension."""
    return (ref.legacy, _KIND_ORDER.get(ref.kind.name, 99), not ref.key.endswith("." + ref.kind.name), ref.key)


def _candidates(name: str) -> Iterator[names.OriginalRef]:
    """Every key ``name``'s original can have in the forms we write or the 2016 server wrote, preferred first."""
    # A valid name's keys read back as that name (validate_name checks it), so no parsing here.
    for kind, ext in _EXTENSIONS:
        yield names.OriginalRef(name, names.original_key(name, ext), kind)
    for kind, ext in _EXTENSIONS:
        yield names.OriginalRef(name, names.legacy_original_key(name, ext), kind, legacy=True)


def literal_prefix(pattern: str) -> str:
    """The literal text every full match of ``pattern`` must start with ('' when unsure).

    Escaped punctuation (``site\\.1/``, as the browse page escapes a directory name) is literal too.
    """
    if "|" in pattern:
        return ""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            escaped = pattern[i + 1:i + 2]
            if not escaped or not escaped.isascii() or escaped.isalnum():
                break  # a class (\d), an assertion (\b) or a quote (\Q): not one literal character
            ch, step = escaped, 2
        elif ch in _REGEX_META:
            break
        else:
            step = 1
        following = pattern[i + step:i + step + 1]
        if following and following in "*?{":
            break  # a quantifier makes this character optional: the prefix ends before it
        out.append(ch)
        i += step
    return "".join(out)
