"""``image_repo doctor``: can this configuration serve? One line per check, as thumbor-doctor does.

Checks, in order: the configuration loads; each store answers and takes a write (a probe
object under ``.doctor/``, read back, listed and removed); temporary URLs work (a URL is made
for a probe and fetched: a Swift TempURL or S3 presigned GET, and a PUT as direct imports use
it, or this server's own signed route for stores without them); the codecs (every output kind
encodes; AVIF, JPEG 2000, HEIF, pyvips present); the data directories can be written by this
user. A failure is ``FAIL``, something that works but may surprise is ``warn``.
"""
from __future__ import annotations

import io
import os
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..config.settings import Settings
from ..errors import ImageRepoError
from ..storage.base import ObjectStore, SupportsTempUrl
from ..storage.registry import open_store, url_scheme

OK, WARN, FAIL = "ok", "warn", "FAIL"
PROBE_PREFIX = ".doctor/"
PROBE = b"image_repo doctor probe\n"


@dataclass(frozen=True)
class Check:
    status: str
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.name}: {self.detail}"


def probe_key() -> str:
    """A key no other doctor run (on any host) uses, under a prefix that is never an image name."""
    return f"{PROBE_PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def run(settings: Settings, *, fetch: Callable[..., tuple[int, bytes]] | None = None) -> Iterator[Check]:
    """Every check of ``settings`` (already loaded: the config check is the caller's)."""
    fetch = fetch or http_fetch
    stores: dict[str, ObjectStore] = {}
    for label, url in _store_urls(settings).items():
        check, store = check_store(label, url, settings)
        yield check
        if store is not None:
            stores[label] = store
    yield from check_temp_urls(settings, stores, fetch)
    yield from check_codecs(settings)
    yield from check_directories(settings)
    for store in stores.values():
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _store_urls(settings: Settings) -> dict[str, str]:
    urls = {"store": settings.store_url(), "cache_store": settings.cache_store_url()}
    if urls["store"] == urls["cache_store"]:
        return {"store and cache_store": urls["store"]}
    return urls


def check_store(label: str, url: str, settings: Settings) -> tuple[Check, ObjectStore | None]:
    """Open the store, write a probe, read it back, find it listed, remove it."""
    name = f"{label} {url}"
    try:
        store = open_store(url, settings)
    except ImageRepoError as e:
        return Check(FAIL, name, f"cannot be opened: {e.message}"), None
    key, step, t = probe_key(), "put", time.monotonic()
    try:
        store.put(key, PROBE, "text/plain")
        step = "get"
        if store.get(key) != PROBE:
            return Check(FAIL, name, "a probe object read back different bytes"), store
        step = "list"
        if key not in (info.key for info in store.list(PROBE_PREFIX)):
            return Check(FAIL, name, "a probe object written was not listed"), store
        step = "delete"
        store.delete(key)
        if store.stat(key) is not None:
            return Check(FAIL, name, "a probe object deleted is still there"), store
    except ImageRepoError as e:
        _remove(store, key)
        return Check(FAIL, name, f"{step} failed: {e.message}"), store
    ms = (time.monotonic() - t) * 1000
    return Check(OK, name, f"wrote, read back, listed and removed a probe object ({ms:.0f} ms)"), store


def _remove(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except ImageRepoError:
        pass


def http_fetch(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
               timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of one plain HTTP request, as a client holding the URL would make it."""
    import requests

    try:
        r = requests.request(method, url, data=data, headers=headers, timeout=timeout)
    except requests.RequestException as e:
        return 0, f"{type(e).__name__}: {e}".encode()
    return r.status_code, r.content


def check_temp_urls(settings: Settings, stores: dict[str, ObjectStore],
                    fetch: Callable[..., tuple[int, bytes]]) -> Iterator[Check]:
    if not settings.url_key:
        yield Check(WARN, "temp_url", "url_key is not set: url=true and direct imports are refused")
        return
    for label, store in stores.items():
        if isinstance(store, SupportsTempUrl):
            yield _temp_url_get(label, store, fetch)
            if label != "cache_store":  # the originals store takes the direct imports' PUTs
                yield _temp_url_put(label, store, fetch)
        elif label != "store":  # url=true on this store is answered with this server's own signed URLs
            yield _signed_route(label, settings)


def _refused(store: ObjectStore, status: int, body: bytes) -> str:
    if status == 0:
        return f"could not be fetched: {body.decode(errors='replace')}"
    if url_scheme(getattr(store, "url", "")) == "swift" and status in (401, 403):
        return (f"Swift refused it ({status}): its Temp-URL-Key is not url_key; set it with "
                "`image_repo swift set-temp-url-key`")
    return f"was refused ({status}): {body[:200].decode(errors='replace').strip()}"


def _temp_url_get(label: str, store: ObjectStore, fetch: Callable[..., tuple[int, bytes]]) -> Check:
    name, key = f"temp_url GET {label}", probe_key()
    try:
        store.put(key, PROBE, "text/plain")
        url, _ = store.temp_url(key, "GET", 60)  # type: ignore[attr-defined]
        status, body = fetch("GET", url)
    except ImageRepoError as e:
        return Check(FAIL, name, e.message)
    finally:
        _remove(store, key)
    if status == 200 and body == PROBE:
        return Check(OK, name, "made a temporary URL for a probe object and fetched it")
    return Check(FAIL, name, "a temporary URL for a probe object " + _refused(store, status, body))


def _temp_url_put(label: str, store: ObjectStore, fetch: Callable[..., tuple[int, bytes]]) -> Check:
    name, key = f"temp_url PUT {label}", probe_key()
    try:
        url, _ = store.temp_url(key, "PUT", 60)  # type: ignore[attr-defined]
        put_headers = getattr(store, "put_url_headers", None)
        status, body = fetch("PUT", url, data=PROBE, headers=put_headers() if callable(put_headers) else {})
        if status in (200, 201) and store.get(key) == PROBE:
            return Check(OK, name, "a PUT to a temporary URL (as direct imports make) stored a probe object")
    except ImageRepoError as e:
        return Check(FAIL, name, e.message)
    finally:
        _remove(store, key)
    return Check(FAIL, name, "a PUT to a temporary URL " + _refused(store, status, body))


def _signed_route(label: str, settings: Settings) -> Check:
    """This server's own signed URL for a probe in the cache store, fetched through the app's route."""
    from ..api import signing
    from ..api.images import SIGNED_PREFIX
    from ..web.app import create_app

    name, key = f"temp_url GET {label}", probe_key()
    try:
        app = create_app(settings)
        cache = app.extensions["image_repo"].cache
        cache.put(key, PROBE, "text/plain")
        try:
            expires = int(time.time()) + 60
            query = urlencode({"temp_url_sig": signing.sign(settings.signing_key() or "", "GET", SIGNED_PREFIX + key, expires),
                               "temp_url_expires": expires})
            r = app.test_client().get(f"{SIGNED_PREFIX}{quote(key)}?{query}")
        finally:
            _remove(cache, key)
    except ImageRepoError as e:
        return Check(FAIL, name, e.message)
    if r.status_code == 200 and r.data == PROBE:
        return Check(OK, name, "made a URL this server signs (url_key) for a probe object and fetched it through the app")
    return Check(FAIL, name, f"a URL this server signs was refused ({r.status_code})")


def check_codecs(settings: Settings) -> Iterator[Check]:
    """Every output kind encodes; the optional codecs and pyvips are there (warn where not)."""
    import PIL
    from PIL import Image, features

    from ..imaging.formats import KINDS

    broken = []
    for kind in KINDS.values():
        try:
            Image.new("RGB", (2, 2)).save(io.BytesIO(), kind.pil_format)
        except Exception as e:  # noqa: BLE001 - any failure to encode is what we report
            broken.append(f"{kind.name} ({type(e).__name__}: {e})")
    if broken:
        yield Check(FAIL, "codecs", f"cannot encode {', '.join(broken)}: requests for them would fail")
    else:
        yield Check(OK, "codecs", f"Pillow {PIL.__version__} encodes every kind= ({', '.join(KINDS)})")
    for feature, label, needed in (("avif", "AVIF", "AVIF in and out"), ("jpg_2000", "JPEG 2000", "JPEG 2000 in and out")):
        if features.check(feature):
            yield Check(OK, f"codec {label}", f"{feature} {features.version(feature) or ''}".strip())
        else:
            yield Check(WARN, f"codec {label}", f"not in this Pillow: no {needed}")
    try:
        import pillow_heif

        yield Check(OK, "codec HEIF", f"pillow-heif {pillow_heif.__version__} (libheif {pillow_heif.libheif_version()})")
    except ImportError as e:
        yield Check(WARN, "codec HEIF", f"pillow-heif cannot be imported ({e}): HEIC/HEIF uploads are refused")
    try:
        import pyvips

        yield Check(OK, "pyvips", f"pyvips {pyvips.__version__} (libvips {pyvips.version(0)}.{pyvips.version(1)})")
    except (ImportError, OSError) as e:
        yield Check(WARN, "pyvips", f"not available ({type(e).__name__}): huge originals cannot be built into pyramids")


def data_directories(settings: Settings) -> dict[str, str]:
    """The local directories this configuration writes, by what they hold."""
    dirs: dict[str, str] = {}
    for label, url in (("store", settings.store_url()), ("cache_store", settings.cache_store_url())):
        if url_scheme(url) == "file":
            dirs[label] = url.removeprefix("file://")
    # As build_cache decides: no disk level over a file:// cache store unless its path is set.
    local_cache = url_scheme(settings.cache_store_url()) == "file" and not settings.disk_cache.path
    if settings.disk_cache.max_bytes > 0 and not local_cache:
        dirs["disk_cache"] = settings.disk_cache_path()
    else:  # the host's locks and write counter live there all the same
        dirs["host state (disk_cache.path)"] = settings.disk_cache_path()
    if settings.metrics_dir:
        dirs["metrics_dir"] = settings.metrics_dir
    if settings.s3.local_copy:
        dirs["s3.local_copy"] = os.path.expanduser(settings.s3.local_copy)
    return {label: os.path.abspath(path) for label, path in dirs.items()}


def check_directories(settings: Settings) -> Iterator[Check]:
    for label, path in data_directories(settings).items():
        yield check_directory(label, path)


def check_directory(label: str, path: str) -> Check:
    """A directory this user can create files in (or create), not open to every local user."""
    name = f"directory {label}"
    if not os.path.exists(path):
        parent = path
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            return Check(OK, name, f"{path} does not exist yet; it will be made (in {parent}, writable)")
        return Check(FAIL, name, f"{path} does not exist and cannot be made: {parent} is not writable by uid {os.getuid()}")
    if not os.path.isdir(path):
        return Check(FAIL, name, f"{path} is not a directory")
    st = os.stat(path)
    mode = stat.S_IMODE(st.st_mode)
    probe = os.path.join(path, f".doctor-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(probe, "xb") as fh:
            fh.write(PROBE)
        os.unlink(probe)
    except OSError as e:
        return Check(FAIL, name, f"{path}: uid {os.getuid()} cannot create files there ({e.strerror}); "
                                 f"mode {mode:04o}, owner uid {st.st_uid}")
    free = os.statvfs(path)
    free_gib = free.f_bavail * free.f_frsize / 2**30
    detail = f"{path}: writable by uid {os.getuid()}, mode {mode:04o}, owner uid {st.st_uid}, {free_gib:.1f} GiB free"
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        return Check(WARN, name, detail + "; writable by every local user")
    return Check(OK, name, detail)
