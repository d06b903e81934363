"""Typed settings, each declared once with its default and help (loading.py reads them in).

Each setting is a dataclass field made by ``setting()``, with its default and its help, in a
section class (``section()``) or at the top of ``Settings``. The derived values (an empty
store URL means the data directory's...) are methods of ``Settings``: one place says what an
empty setting means.
"""
from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from dataclasses import Field, dataclass, field, fields, is_dataclass
from typing import Any


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """Declare a setting: its default and one line of help (shown by ``image_repo -Yt``)."""
    meta = {"help": help, "secret": secret}
    # repr=False on secrets: a logged or printed Settings must never show one.
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), repr=not secret, metadata=meta)
    return field(default=default, repr=not secret, metadata=meta)


def section(cls: type, help: str) -> Any:
    """Declare a nested section of settings."""
    return field(default_factory=cls, metadata={"help": help, "secret": False})


@dataclass
class MemoryCacheSettings:
    max_bytes: int = setting(256 * 2**20, "Bytes of derived images kept in each worker's memory (0 disables).")
    max_item_bytes: int = setting(16 * 2**20, "Larger derived images are not kept in memory.")


@dataclass
class DiskCacheSettings:
    path: str = setting("", "Directory of the local disk cache; empty means <data_dir>/disk_cache, and no disk cache when the cache store is itself file:// (a second copy on the same disk). Also holds the locks and write counter the host's workers share.")
    max_bytes: int = setting(2 * 2**30, "Bytes of derived images kept on local disk (0 disables).")


@dataclass
class SwiftSettings:
    auth_url: str | None = setting(None, "Auth URL (ST_AUTH / OS_AUTH_URL when unset).")
    auth_version: str | None = setting(None, "1, 2 or 3 (ST_AUTH_VERSION / OS_IDENTITY_API_VERSION); guessed from the URL and credentials when unset.")
    user: str | None = setting(None, "User name (ST_USER / OS_USERNAME when unset).")
    key: str | None = setting(None, "Password or key (ST_KEY / OS_PASSWORD when unset).", secret=True)
    tenant_name: str | None = setting(None, "Keystone v2 tenant / v3 project name (OS_TENANT_NAME / OS_PROJECT_NAME).")
    tenant_id: str | None = setting(None, "Keystone tenant / project id (OS_TENANT_ID / OS_PROJECT_ID).")
    user_domain_name: str | None = setting(None, "Keystone v3 user domain (OS_USER_DOMAIN_NAME).")
    project_domain_name: str | None = setting(None, "Keystone v3 project domain (OS_PROJECT_DOMAIN_NAME).")
    application_credential_id: str | None = setting(None, "Keystone v3 application credential id (OS_APPLICATION_CREDENTIAL_ID).")
    application_credential_secret: str | None = setting(None, "Keystone v3 application credential secret (OS_APPLICATION_CREDENTIAL_SECRET).", secret=True)
    region_name: str | None = setting(None, "Region (OS_REGION_NAME).")
    storage_url: str | None = setting(None, "Pre-authenticated storage URL, used with token (OS_STORAGE_URL).")
    token: str | None = setting(None, "Pre-authenticated token, used with storage_url (OS_AUTH_TOKEN).", secret=True)
    retries: int = setting(3, "Retries of a failed Swift request (swiftclient's own backoff).")
    timeout: float = setting(10.0, "Seconds before a Swift request times out.")
    temp_url_digest: str = setting("sha256", "TempURL signature digest: sha256, sha512, or sha1 for 2016-style 40-hex URLs.")


@dataclass
class S3Settings:
    endpoint_url: str | None = setting(None, "S3 endpoint URL; unset means AWS (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).")
    region: str | None = setting(None, "Region name (AWS_DEFAULT_REGION / AWS_REGION).")
    path_style: bool = setting(False, "Use path-style addressing (most S3-compatible servers).")
    access_key_id: str | None = setting(None, "Access key id (AWS_ACCESS_KEY_ID).", secret=True)
    secret_access_key: str | None = setting(None, "Secret access key (AWS_SECRET_ACCESS_KEY).", secret=True)
    session_token: str | None = setting(None, "Temporary-credentials session token (AWS_SESSION_TOKEN).", secret=True)
    credentials_file: str | None = setting(None, "An AWS credentials CSV file (either form AWS issues).")
    encrypt: bool = setting(False, "Store objects with server-side AES-256 encryption.")
    kms_key_id: str | None = setting(None, "Use SSE-KMS with this key id instead of AES-256.")
    local_copy: str | None = setting(None, "Also write every original stored to this directory.")
    connect_timeout: float = setting(10.0, "Seconds to wait for a connection to the S3 endpoint.")
    read_timeout: float = setting(60.0, "Seconds to wait for the S3 endpoint to send the next bytes of an answer.")
    retries: int = setting(3, "Retries of a failed S3 request (throttling, 5xx, timeouts, dropped connections), after the first try.")
    retry_mode: str = setting("standard", "botocore's retry mode: standard (backoff with jitter), adaptive (also paces this client when throttled) or legacy.")


@dataclass
class Settings:
    """Every setting of the server."""

    data_dir: str = setting("./data", "Directory for the embedded file stores and disk cache when not set otherwise.")
    store: str = setting("", "URL of the originals store (file://, swift://, s3://, memory://); empty means file://<data_dir>/originals.")
    cache_store: str = setting("", "URL of the derived images store; empty means file://<data_dir>/cache.")
    bind: str = setting("127.0.0.1:5000", "HOST:PORT the server listens on.")
    workers: int = setting(0, "Gunicorn worker processes; 0 means one per core.")
    threads: int = setting(4, "Threads per worker.")
    balance_connections: bool = setting(True, "Each new connection goes to the worker holding the fewest (kept-alive connections stay with the worker that took them, so a proxy's few upstream connections must not all land on one). Off: Gunicorn's plain gthread, where workers race for each connection.")
    log_level: str = setting("info", "Log level: debug, info, warning, error, critical.")
    access_log_json: bool = setting(False, "Write the access log as one JSON object per line (time, remote, method, uri, route, status, bytes, duration_ms, cache, referer, user_agent, pid) instead of Gunicorn's text line.")
    metrics_dir: str = setting("", "Directory where the Gunicorn workers keep the figures /metrics sums (prometheus_client's multiprocess mode); its *.db files are removed at start. Empty means a new private directory on /dev/shm, removed at exit.")
    repository_base_pathname: str = setting("images", "URL prefix of the image routes.")
    default_kind: str = setting("jpg", "Output format when a request names none: jpg, png, tif, bmp, gif, webp, avif, jp2.")
    thumbnail_default_size: list[int] = setting([50, 50], "Thumbnail box [width, height] when no size is given.")
    resample_filter: str = setting("lanczos", "Filter of the last resampling step, after a JPEG's DCT-scaled decode or a box reduction has brought the image within 2x of its size: lanczos (sharpest), bicubic (Pillow's thumbnail default, ~30% cheaper), hamming, bilinear. Cached images are not remade when it changes.")
    memory_cache: MemoryCacheSettings = section(MemoryCacheSettings, "The in-process cache of derived images.")
    disk_cache: DiskCacheSettings = section(DiskCacheSettings, "The local disk cache of derived images.")
    original_stat_ttl: float = setting(2.0, "Seconds a worker trusts what it last learned of an original (or that a name has none), so a cache hit asks the store nothing (0: ask every time). Writes through this host are seen by all its workers at once; writes through other servers after this long.")
    original_check_wait: float = setting(1.0, "Seconds a request waits for a remote store (Swift, S3) to confirm an original the worker knows (past original_stat_ttl) before it answers from what it knew, so cache hits go on while the store stalls; a store slower than this serves a replaced original's old derivatives until it answers. 0: wait as long as the store's own timeout.")
    cache_control: str = setting("public, max-age=3600", "Cache-Control header on image responses.")
    format_negotiation: bool = setting(False, "Answer a request that names no kind (no kind=, no extension) with AVIF or WebP when its Accept prefers them, else default_kind; such answers carry Vary: Accept. Off: always default_kind, as in 2016.")
    cors_origins: list[str] = setting(["*"], "Origins whose scripts may read and write through the API (CORS): '*' for any, else exact origins such as https://viewer.example.org; an origin not listed gets no CORS headers; empty: none at all.")
    url_key: str | list[str] | None = setting(None, "Key that signs url=true URLs, this server's own and Swift TempURLs (required for url=true; no default). A list rotates keys: the first signs, every one is accepted, so URLs handed out under an older key keep working while it stays listed.", secret=True)
    url_lifetime: int = setting(172800, "Seconds a url=true URL stays valid.")
    max_upload_bytes: int = setting(100 * 2**20, "Largest upload accepted, in bytes.")
    max_import_bytes: int = setting(16 * 2**30, "Largest original accepted through a direct-to-store import (POST /imports), in bytes.")
    import_lifetime: int = setting(86400, "Seconds an import may wait for its bytes before it expires and its staging object is removed.")
    max_pixels: int = setting(100_000_000, "Largest original accepted, in pixels (decompression-bomb guard).")
    max_output_pixels: int = setting(50_000_000, "Largest derived image made, in pixels.")
    iiif_tile_size: int = setting(512, "Tile size (pixels) IIIF info.json offers for originals without a pyramid (a pyramid offers its own).")
    trust_forwarded_headers: bool = setting(False, "Take the scheme, host and path prefix of absolute URLs (IIIF ids, signed URLs) from X-Forwarded-Proto, -Host, -Port and -Prefix. Only behind a proxy that sets them: a client could otherwise choose them.")
    pyramid_min_side: int = setting(4096, "Originals longer than this on either side get a tiled pyramid in the cache store, built in the background (0: no pyramids).")
    max_pyramid_pixels: int = setting(20_000_000_000, "Largest original accepted, in pixels, when it is beyond max_pixels: JPEG, PNG and TIFF are then never decoded whole, only streamed into a pyramid, and served from it.")
    pyramid_builders: int = setting(1, "Pyramid builds at once per host, in child processes at low priority (0: none in the server; `image_repo pyramids build` still builds).")
    pyramid_jpeg_quality: int = setting(85, "JPEG quality of 8-bit pyramid tiles (16-bit tiles are lossless).")
    pyramid_read_chunk_bytes: int = setting(2**20, "A pyramid in a remote store (Swift, S3) is read in aligned chunks of this many bytes, kept in the host's memory and disk cache levels, so one GET serves a viewer's neighbouring tiles (0: one ranged GET per tile).")
    pyramid_build_dir: str = setting("", "Local directory where pyramids are built before they are moved to the cache store (needs room for the largest); empty means <data_dir>/pyramid_builds.")
    max_zip_images: int = setting(200, "Most images in one zip answer.")
    max_regex_length: int = setting(1000, "Longest regex= accepted, in characters.")
    max_name_bytes: int = setting(512, "Longest image name, in UTF-8 bytes.")
    max_name_depth: int = setting(32, "Most '/'-separated segments in an image name.")
    expose_gps: bool = setting(False, "Whether meta=true includes GPS position.")
    write_tokens: list[str] = setting([], "Bearer tokens allowed to POST/PUT/DELETE; empty: writes are open.", secret=True)
    read_tokens: list[str] = setting([], "Bearer tokens allowed to read; empty: reads are open.", secret=True)
    max_concurrent_derivations: int = setting(0, "Derivations at once per worker; 0 means threads.")
    max_queued_derivations: int = setting(16, "Derivations waiting per worker before 503.")
    browse_deep_zoom: bool = setting(True, "Whether the browse page (/) shows an image in the deep-zoom viewer over IIIF (needs OpenSeadragon, installed by npm ci); false shows a plain image.")
    max_store_threads: int = setting(0, "Request threads per worker that may be inside calls to a remote store (Swift, S3) at once; the others wait while it answers, and once it has answered none for 2 s they are answered 503 with Retry-After (a cache hit: from what the worker last knew of the original), so a stalled store never takes every thread and cache hits and /healthz keep answering. 0 means threads - 1 (at least 1).")
    swift: SwiftSettings = section(SwiftSettings, "OpenStack Swift connection (for swift:// stores).")
    s3: S3Settings = section(S3Settings, "S3 connection (for s3:// stores).")
    references: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata={"internal": True})
    """Where each setting given by reference came from (``{"$env": ...}``), so -Y can print it."""

    # Derived values: one place that says what an empty setting means.
    def store_url(self) -> str:
        return self.store or "file://" + os.path.abspath(os.path.join(self.data_dir, "originals"))

    def cache_store_url(self) -> str:
        return self.cache_store or "file://" + os.path.abspath(os.path.join(self.data_dir, "cache"))

    def pyramid_build_path(self) -> str:
        return os.path.abspath(self.pyramid_build_dir or os.path.join(self.data_dir, "pyramid_builds"))

    def disk_cache_path(self) -> str:
        return os.path.abspath(self.disk_cache.path or os.path.join(self.data_dir, "disk_cache"))

    def url_keys(self) -> list[str]:
        """Every key a signed URL is accepted under, the signing key first (url_key as a list or one string)."""
        if not self.url_key:
            return []
        return [self.url_key] if isinstance(self.url_key, str) else [k for k in self.url_key if k]

    def signing_key(self) -> str | None:
        """The key new signed URLs are made with: url_key's first."""
        keys = self.url_keys()
        return keys[0] if keys else None

    def store_threads(self) -> int:
        """max_store_threads, with 0 meaning threads - 1 (at least 1)."""
        return self.max_store_threads or max(1, self.threads - 1)


def setting_fields(cls: type) -> list[Field[Any]]:
    """The declared settings of a settings class (internal bookkeeping fields left out)."""
    return [f for f in fields(cls) if not f.metadata.get("internal")]


def iter_settings(obj: Any = None, prefix: str = "") -> Iterator[tuple[str, Field[Any], Any, Any]]:
    """Every leaf setting as (dotted key, field, type, value), in declaration order."""
    obj = Settings() if obj is None else obj
    hints = typing.get_type_hints(type(obj))
    for f in setting_fields(type(obj)):
        tp = hints[f.name]
        if is_dataclass(tp):
            yield from iter_settings(getattr(obj, f.name), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, tp, getattr(obj, f.name)
