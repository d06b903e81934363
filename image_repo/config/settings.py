"""Typed settings, each declared once with its default and help.

Sources, later wins: defaults < YAML file (``-y``) < environment ``IMAGE_REPO_<KEY>``
(nested keys joined by ``__``). Then unset Swift and S3 credentials are filled from the
usual ``ST_*`` / ``OS_*`` / ``AWS_*`` variables, so backends read only settings: nothing
outside this module reads the environment.

Any setting may be given in YAML as ``{"$env": NAME}`` or ``{"$file": path}`` (relative
paths from the YAML file's directory; one trailing newline stripped). A reference's text,
like an environment value, is read by the setting's type: strings verbatim (empty means
null for optional ones), lists as ``[a, b]`` or ``a,b``, other types as a YAML scalar.
Sizes in bytes (``*_bytes``) also take ``256MiB`` / ``2GB``. The 2016 server's keys are
accepted (see legacy.py).
"""
from __future__ import annotations

import difflib
import logging
import math
import os
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass
from typing import Any

import yaml

from ..errors import ConfigError
from .types import STR_OR_LIST, check, from_text, show, unwrap


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
    original_stat_ttl: float = setting(2.0, "Seconds a worker trusts what it last learned of an original, so a cache hit asks the store nothing (0: ask every time). Writes through this host are seen by all its workers at once; writes through other servers after this long.")
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


log = logging.getLogger("image_repo.settings")

ENV_PREFIX = "IMAGE_REPO_"
CONFIG_VARIABLE = "IMAGE_REPO_CONFIG"
"""Path of the YAML file for ``image_repo.web.wsgi`` (not a setting, so not ``IMAGE_REPO_<KEY>``)."""
TEST_POINTS_VARIABLE = "IMAGE_REPO_TEST_POINTS"
"""A directory that turns on the test points (image_repo/testpoints.py); tests only, never a setting."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_DIGESTS = ("sha1", "sha256", "sha512")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")
_RETRY_MODES = ("standard", "adaptive", "legacy")

# Unset credentials are filled from the first of these variables that is set and not empty.
_SWIFT_ENV: dict[str, tuple[str, ...]] = {
    "auth_url": ("OS_AUTH_URL",),
    "auth_version": ("OS_IDENTITY_API_VERSION", "OS_AUTH_VERSION"),
    "user": ("OS_USERNAME",),
    "key": ("OS_PASSWORD",),
    "tenant_name": ("OS_TENANT_NAME", "OS_PROJECT_NAME"),
    "tenant_id": ("OS_TENANT_ID", "OS_PROJECT_ID"),
    "user_domain_name": ("OS_USER_DOMAIN_NAME",),
    "project_domain_name": ("OS_PROJECT_DOMAIN_NAME",),
    "application_credential_id": ("OS_APPLICATION_CREDENTIAL_ID",),
    "application_credential_secret": ("OS_APPLICATION_CREDENTIAL_SECRET",),
    "region_name": ("OS_REGION_NAME",),
    "storage_url": ("OS_STORAGE_URL",),
    "token": ("OS_AUTH_TOKEN",),
}
_SWIFT_V1_ENV: dict[str, tuple[str, ...]] = {
    "auth_url": ("ST_AUTH",), "auth_version": ("ST_AUTH_VERSION",), "user": ("ST_USER",), "key": ("ST_KEY",),
}
_S3_ENV: dict[str, tuple[str, ...]] = {
    "endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "region": ("AWS_DEFAULT_REGION", "AWS_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
}



def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, then the YAML file at ``path``, then ``IMAGE_REPO_*`` variables."""
    env = os.environ if environ is None else environ
    loader = _Loader(env, os.path.dirname(os.path.abspath(path)) if path else os.getcwd())
    s = Settings()
    if path:
        raw = _read_yaml(path)
        from . import legacy as config_legacy

        if config_legacy.is_legacy(raw):
            translated = config_legacy.translate(raw)
            raw, loader.origins = translated.raw, translated.origins
            for warning in translated.warnings:
                log.warning("%s", warning)
        loader.merge(s, raw, "")
    loader.overlay(s)
    loader.fill_credentials(s)
    _validate(s)
    s.references = loader.refs
    return s


def load_settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a WSGI server: the YAML file named by ``IMAGE_REPO_CONFIG``, if any."""
    env = os.environ if environ is None else environ
    return load_settings(env.get(CONFIG_VARIABLE) or None, env)


def test_points_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The directory of the test points if a test turned them on, else None (every server in use)."""
    return (os.environ if environ is None else environ).get(TEST_POINTS_VARIABLE) or None


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


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except OSError as e:
        raise ConfigError(f"config: cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config: {path}:{where}: invalid YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: {path}: expected a mapping of settings, got {show(raw)}")
    return raw


class _Loader:
    """Merges raw values into a Settings, type-checking each and remembering references."""

    def __init__(self, environ: Mapping[str, str], base_dir: str) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.refs: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    def merge(self, obj: Any, data: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(obj))
        by_name = {f.name: f for f in setting_fields(type(obj))}
        for k, v in data.items():
            key = f"{prefix}{k}"
            f = by_name.get(k) if isinstance(k, str) else None
            if f is None:
                raise _unknown(key, [prefix + n for n in by_name])
            tp = hints[f.name]
            if is_dataclass(tp):
                if v is None:
                    continue  # "swift:" with nothing under it
                if not isinstance(v, Mapping) or _is_ref(v):
                    raise ConfigError(f"config: {key}: expected a section (a mapping of settings), got {show(v)}")
                self.merge(getattr(obj, f.name), v, key + ".")
            else:
                setattr(obj, f.name, self.value(v, tp, key, bool(f.metadata["secret"])))

    def value(self, raw: Any, tp: Any, key: str, secret: bool) -> Any:
        source = f" (from {self.origins[key]})" if key in self.origins else ""
        self.refs.pop(key, None)
        if _is_ref(raw):
            text = self.resolve(raw, key)
            self.refs[key] = dict(raw)
            return from_text(text, tp, key + source, secret)
        list_tp = tp if typing.get_origin(tp) is list else list[str] if unwrap(tp)[0] == STR_OR_LIST else None
        if isinstance(raw, list) and raw and list_tp is not None:
            (item_tp,) = typing.get_args(list_tp)
            items: list[Any] = []
            item_refs: list[dict[str, Any] | None] = []
            for i, item in enumerate(raw):
                ikey = f"{key}[{i}]"
                if _is_ref(item):
                    items.append(from_text(self.resolve(item, ikey), item_tp, ikey + source, secret))
                    item_refs.append(dict(item))
                else:
                    items.append(check(item, item_tp, ikey + source, secret))
                    item_refs.append(None)
            if any(item_refs):
                self.refs[key] = item_refs
            return items
        return check(raw, tp, key + source, secret)

    def resolve(self, ref: Mapping[str, Any], key: str) -> str:
        """The text an ``{"$env": NAME}`` or ``{"$file": path}`` reference points at."""
        kind, arg = next(iter(ref.items()))
        if not isinstance(arg, str) or not arg:
            raise ConfigError(f"config: {key}: {kind} needs a {'variable name' if kind == '$env' else 'path'}")
        if kind == "$env":
            if arg not in self.environ:
                raise ConfigError(f"config: {key}: environment variable {arg} is not set")
            return self.environ[arg]
        path = os.path.join(self.base_dir, os.path.expanduser(arg))
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"config: {key}: cannot read {arg}: {getattr(e, 'strerror', None) or e}") from None

    def overlay(self, s: Settings) -> None:
        """Apply ``IMAGE_REPO_<KEY>`` variables (nested keys joined by ``__``)."""
        for name in sorted(self.environ):
            if not name.startswith(ENV_PREFIX) or name in (CONFIG_VARIABLE, TEST_POINTS_VARIABLE):
                continue
            parts = name[len(ENV_PREFIX):].lower().split("__")
            obj: Any = s
            for depth, part in enumerate(parts):
                key = ".".join(parts[: depth + 1])
                hints = typing.get_type_hints(type(obj))
                by_name = {f.name: f for f in setting_fields(type(obj))}
                f = by_name.get(part)
                if f is None or (depth < len(parts) - 1 and not is_dataclass(hints[part])):
                    raise ConfigError(f"config: unknown setting '{key}' (from {name})")
                if is_dataclass(hints[part]):
                    if depth == len(parts) - 1:
                        raise ConfigError(f"config: {key} (from {name}): is a section; set its keys as {name}__<KEY>")
                    obj = getattr(obj, part)
                    continue
                secret = bool(f.metadata["secret"])
                setattr(obj, part, from_text(self.environ[name], hints[part], f"{key} (from {name})", secret))
                self.refs.pop(key, None)
                if secret:  # so -Y prints where the secret is, never the secret
                    self.refs[key] = {"$env": name}

    def fill_credentials(self, s: Settings) -> None:
        """Fill unset Swift and S3 credentials from ST_* / OS_* / AWS_* variables."""
        swift_env = dict(_SWIFT_ENV)
        v1 = s.swift.auth_url is None and bool(self.environ.get("ST_AUTH"))
        if v1:  # swiftclient's v1 variables, which it prefers when ST_AUTH is set
            swift_env.update(_SWIFT_V1_ENV)
        for section_name, table in (("swift", swift_env), ("s3", _S3_ENV)):
            sect = getattr(s, section_name)
            secrets = {f.name for f in fields(sect) if f.metadata.get("secret")}
            for attr, names in table.items():
                if getattr(sect, attr) is not None:
                    continue
                if section_name == "s3" and s.s3.credentials_file and attr in _S3_FILE_KEYS:
                    continue  # a configured credentials file comes before AWS_* variables
                name = next((n for n in names if self.environ.get(n)), None)
                if name is not None:
                    setattr(sect, attr, self.environ[name])
                    if attr in secrets:
                        self.refs[f"{section_name}.{attr}"] = {"$env": name}
        if v1 and s.swift.auth_version is None:
            s.swift.auth_version = "1"


_S3_FILE_KEYS = frozenset({"access_key_id", "secret_access_key", "session_token"})


def _is_ref(value: Any) -> bool:
    if not isinstance(value, Mapping) or not any(isinstance(k, str) and k.startswith("$") for k in value):
        return False
    if len(value) != 1 or next(iter(value)) not in ("$env", "$file"):
        raise ConfigError('config: a reference is {"$env": NAME} or {"$file": path}, got ' + show(dict(value)))
    return True


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"config: unknown setting '{key}'{hint}")


def _validate(s: Settings) -> None:
    """Checks a type cannot express; normalises spellings so the dump shows one."""
    from ..imaging.formats import KINDS, output_kind

    for key, f, tp, value in iter_settings(s):
        if (tp is int or tp is float) and value < 0:
            raise ConfigError(f"config: {key}: expected a value of 0 or more, got {show(value)}")
        if tp is float and not math.isfinite(value):
            raise ConfigError(f"config: {key}: expected a finite number, got {show(value)}")
    if s.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"config: log_level: expected one of {', '.join(LOG_LEVELS)}, got {show(s.log_level)}")
    s.log_level = s.log_level.lower()
    kind = output_kind(s.default_kind)
    if kind is None:
        raise ConfigError(f"config: default_kind: expected one of {', '.join(KINDS)}, got {show(s.default_kind)}")
    s.default_kind = kind.name
    from ..imaging.derive import RESAMPLE_FILTERS

    if s.resample_filter.lower() not in RESAMPLE_FILTERS:
        raise ConfigError(f"config: resample_filter: expected one of {', '.join(RESAMPLE_FILTERS)}, got {show(s.resample_filter)}")
    s.resample_filter = s.resample_filter.lower()
    for i, origin in enumerate(s.cors_origins):
        if origin != "*" and not _ORIGIN.fullmatch(origin.strip().rstrip("/")):
            raise ConfigError(f"config: cors_origins[{i}]: expected '*' or an origin such as https://example.org (scheme, host, port; no path), got {show(origin)}")
    size = s.thumbnail_default_size
    if len(size) != 2 or not all(1 <= v <= 9999 for v in size):
        raise ConfigError(f"config: thumbnail_default_size: expected [width, height], each 1..9999, got {size!r}")
    if s.pyramid_read_chunk_bytes < 0:
        raise ConfigError(f"config: pyramid_read_chunk_bytes: expected 0 or more, got {s.pyramid_read_chunk_bytes}")
    if not 1 <= s.pyramid_jpeg_quality <= 100:
        raise ConfigError(f"config: pyramid_jpeg_quality: expected 1..100, got {s.pyramid_jpeg_quality}")
    for key, low in (("threads", 1), ("url_lifetime", 1), ("iiif_tile_size", 64)):
        if getattr(s, key) < low:
            raise ConfigError(f"config: {key}: expected {low} or more, got {getattr(s, key)}")
    if s.swift.temp_url_digest.lower() not in _DIGESTS:
        raise ConfigError(f"config: swift.temp_url_digest: expected one of {', '.join(_DIGESTS)}, got {show(s.swift.temp_url_digest)}")
    s.swift.temp_url_digest = s.swift.temp_url_digest.lower()
    if s.s3.retry_mode.lower() not in _RETRY_MODES:
        raise ConfigError(f"config: s3.retry_mode: expected one of {', '.join(_RETRY_MODES)}, got {show(s.s3.retry_mode)}")
    s.s3.retry_mode = s.s3.retry_mode.lower()
