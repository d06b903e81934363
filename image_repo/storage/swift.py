"""SwiftStore: an ObjectStore on one OpenStack Swift container (``swift://container[/prefix]``), with TempURLs."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import requests
import swiftclient.client
import urllib3
from swiftclient.client import ClientException, Connection
from swiftclient.utils import generate_temp_url

from ..config.loading import _SWIFT_ENV, _SWIFT_V1_ENV

from ..config.settings import Settings, SwiftSettings
from ..errors import ConfigError, ImageRepoError, InvalidRequest, NotFound, PayloadTooLarge, StorageUnavailable
from ..host.storegate import OPEN, OpenGate, StoreGate
from ..metrics.figures import store_error
from . import swift_large
from .base import ObjectInfo, check_key, check_metadata, guess_content_type, sha256_hex

T = TypeVar("T")
swiftclient.client.logger_settings["reveal_sensitive_prefix"] = 0  # it would log 16 chars of keys and tokens
_META = "x-object-meta-"
FIRST_PAGE = 1000
"""Entries asked for in a listing's first request; later requests ask for ``page_size`` (the server's own when None)."""
_SHA256 = "sha256"  # ours: X-Object-Meta-Sha256, never shown as custom metadata
_V3_OPTIONS = (("tenant_name", "project_name"), ("tenant_id", "project_id"),
               ("user_domain_name", "user_domain_name"), ("project_domain_name", "project_domain_name"))


def _credentials(s: SwiftSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The set credential settings; unset ones from ``environ`` (swiftclient's ST_* when ST_AUTH is set)."""
    v1 = not s.auth_url and bool(environ.get("ST_AUTH"))
    out: dict[str, str] = {"auth_version": "1"} if v1 else {}
    for attr, names in {**_SWIFT_ENV, **(_SWIFT_V1_ENV if v1 else {})}.items():
        value = getattr(s, attr, None) or next((environ[n] for n in names if environ.get(n)), None)
        if value:
            out[attr] = str(value)
    return out


def _auth_version(c: Mapping[str, str]) -> str:
    """"1", "2.0" or "3": as set, else guessed from what the credentials hold and the URL's path."""
    given = c.get("auth_version", "").lower().lstrip("v")
    if given:
        return {"1": "1", "2": "2.0", "3": "3"}.get(given[0], given)
    path = urlsplit(c.get("auth_url", "")).path.rstrip("/")
    if c.keys() & {"application_credential_id", "user_domain_name", "project_domain_name"} or path.endswith("/v3"):
        return "3"
    return "2.0" if path.endswith(("/v2.0", "/v2")) or c.keys() & {"tenant_name", "tenant_id"} else "1"


def swift_auth_options(swift: SwiftSettings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``swiftclient.Connection``: v1, Keystone v2/v3, app credential or pre-authenticated."""
    c = _credentials(swift, environ or {})
    opts: dict[str, Any] = {}
    if c.get("storage_url") and c.get("token"):
        opts.update(preauthurl=c["storage_url"], preauthtoken=c["token"])
    if "auth_url" not in c:
        if opts:
            return opts  # pre-authenticated only: nothing to re-authenticate with when the token expires
        raise ConfigError("swift: no credentials: set swift.auth_url (or ST_AUTH / OS_AUTH_URL), "
                          "or swift.storage_url with swift.token")
    version = _auth_version(c)
    opts.update(authurl=c["auth_url"], auth_version=version)
    os_options = {"region_name": c["region_name"]} if "region_name" in c else {}
    if version == "3" and "application_credential_id" in c:
        os_options.update(auth_type="v3applicationcredential", application_credential_id=c["application_credential_id"],
                          application_credential_secret=c.get("application_credential_secret", ""))
    else:
        if "user" not in c or "key" not in c:
            raise ConfigError(f"swift: swift.user and swift.key must both be set for auth version {version}")
        opts.update(user=c["user"], key=c["key"])
        if version == "2.0":
            os_options.update({k: c[k] for k in ("tenant_name", "tenant_id") if k in c})
        elif version == "3":
            os_options.update({new: c[old] for old, new in _V3_OPTIONS if old in c})
    if os_options:
        opts["os_options"] = os_options
    return opts


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _timestamp(http_date: str | None = None, listing: str | None = None) -> float | None:
    """Epoch seconds from an HTTP date, or from a listing's zone-less UTC ISO time."""
    try:
        if http_date:
            return parsedate_to_datetime(http_date).timestamp()
        return datetime.fromisoformat(listing).replace(tzinfo=UTC).timestamp() if listing else None
    except (TypeError, ValueError):
        return None


# Swift's answer -> our error and why; any other status is StorageUnavailable too.
_STATUS: dict[int, tuple[type[ImageRepoError], str]] = {
    404: (NotFound, "not found"),
    401: (StorageUnavailable, "not authorised (401); check the Swift credentials"),
    403: (StorageUnavailable, "forbidden (403); check the Swift credentials"),
    413: (PayloadTooLarge, "object too large for Swift (413)"),
    400: (InvalidRequest, "refused (400)"),  # e.g. a name longer than Swift allows
    422: (StorageUnavailable, "the body did not reach Swift intact (422); nothing stored"),
}


def _run(conn: Connection, what: str, fn: Callable[[Connection], T], secrets: list[str]) -> T:
    """``fn(conn)``, every swiftclient, requests and socket error translated into ours (without secrets)."""
    try:
        return fn(conn)
    except ClientException as e:
        if e.http_status is not None:
            cls, why = _STATUS.get(e.http_status, (StorageUnavailable, f"{e.http_status} {e.http_reason or ''}"))
            if cls is StorageUnavailable:
                store_error("swift")
            raise cls(f"swift {what}: {why}".rstrip()) from None
        detail = str(e.msg)  # raised by swiftclient itself: bad auth options, no keystoneclient...
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        # urllib3's own errors surface from a body read (a connection cut mid-body: IncompleteRead).
        detail = f"{type(e).__name__}: {e}"
    for secret in (s for s in secrets if len(s) >= 4):  # a one-letter "secret" would only garble it
        detail = detail.replace(secret, "***")
    store_error("swift")
    raise StorageUnavailable(f"swift {what}: {detail}") from None


class SwiftStore:
    """An ObjectStore on one Swift container, every key under ``prefix``; one connection per thread."""

    create_is_atomic = False
    """Swift checks ``If-None-Match: *`` before a PUT's body lands: two racing creates may both succeed."""

    gate: StoreGate | OpenGate = OPEN
    """Bounds the request threads waiting on Swift at once (set per worker by create_app)."""

    def __init__(self, container: str, prefix: str = "", *, connection_options: Mapping[str, Any],
                 temp_url_key: str | None = None, temp_url_digest: str = "sha256",
                 page_size: int | None = None) -> None:
        if not container or "/" in container:
            raise ConfigError(f"swift: invalid container name {container!r}")
        self.container = container
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"swift://{container}/{self.prefix}".rstrip("/")
        self.temp_url_digest = temp_url_digest
        self.page_size = page_size  # None: the server's own page size (10,000 by default)
        self._options = dict(connection_options)
        self._temp_url_key = temp_url_key
        self._secrets = [v for v in (self._options.get("key"), self._options.get("preauthtoken"), temp_url_key,
                                     (self._options.get("os_options") or {}).get("application_credential_secret")) if v]
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Connection] = []
        self._auth: tuple[str, str] | None = None
        self.max_object_bytes = swift_large.MAX_OBJECT_BYTES
        """Files larger than this are stored as Static Large Objects (Swift's own max_file_size)."""

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None,
                 environ: Mapping[str, str] | None = None) -> SwiftStore:
        """The store ``swift://container[/prefix]`` names; credentials from ``settings``, then ``environ``."""
        s = settings or Settings()
        scheme, _, rest = url.partition("://")
        container, _, prefix = rest.partition("/")
        if scheme.lower() != "swift" or not container:
            raise ConfigError(f"store URL {url!r}: expected swift://container[/prefix]")
        options = swift_auth_options(s.swift, environ)
        options.update(retries=s.swift.retries, timeout=s.swift.timeout)  # swiftclient's own retry loop
        store = cls(unquote(container), unquote(prefix), connection_options=options,
                    temp_url_key=s.signing_key(), temp_url_digest=s.swift.temp_url_digest)
        store._secrets.extend(s.url_keys())  # the older keys are secrets too
        return store

    def _conn(self) -> Connection:
        # Per thread, and per process: a connection made before a Gunicorn fork must not be shared.
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            options = dict(self._options)
            if self._auth and "preauthtoken" not in options:
                # Another thread's token: one auth per process, not per thread; a 401 re-auths.
                options.update(preauthurl=self._auth[0], preauthtoken=self._auth[1])
            conn = Connection(**options)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._conns.append(conn)
        return conn

    def _call(self, what: str, fn: Callable[[Connection], T]) -> T:
        conn = self._conn()
        with self.gate.slot(f"swift {what}"):
            result = _run(conn, what, fn, self._secrets)
        if self._auth is None and conn.url and conn.token:
            self._auth = (conn.url, conn.token)
            self._secrets.append(conn.token)
        return result

    def _info(self, key: str, headers: Mapping[str, str]) -> ObjectInfo:
        meta = {k[len(_META):]: v for k, v in headers.items() if k.lower().startswith(_META)}
        sha, stamp = meta.pop(_SHA256, None), headers.get("x-timestamp")
        return ObjectInfo(key=key, size=int(headers.get("content-length") or 0),
                          content_type=headers.get("content-type"), sha256=sha,
                          etag=(headers.get("etag") or "").strip('"') or None,
                          modified=float(stamp) if stamp else _timestamp(headers.get("last-modified")), metadata=meta)

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound if absent."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and info from one GET."""
        headers, body = self._call(f"GET {key!r}", lambda c: c.get_object(self.container, self.prefix + key))
        info = self._info(key, headers)
        if "content-length" in headers and len(body) != info.size:
            # Never a short body as a whole one: a connection cut mid-body can read as a clean end.
            raise StorageUnavailable(f"swift GET {key!r}: {len(body)} of {info.size} bytes arrived; retry")
        return body, info

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """One ``Range`` GET (swift_large.py)."""
        return swift_large.get_range(self, key, start, length)

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Several ranges in one GET (multipart/byteranges; swift_large.py)."""
        return swift_large.get_ranges(self, key, ranges)

    def put_file(self, key: str, path: str, content_type: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """A local file, streamed; a Static Large Object past ``max_object_bytes`` (swift_large.py)."""
        return swift_large.put_file(self, key, path, content_type, metadata)

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Store ``data`` only if ``key`` is free (``If-None-Match: *``); False if it was not."""
        return swift_large.create(self, key, data, content_type)

    def put(self, key: str, data: bytes, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Store ``data`` whole or not at all: Swift checks it against our MD5 (``etag=``)."""
        check_key(key)
        meta, data = check_metadata(metadata), bytes(data)  # a caller's bytearray must not change under us
        md5, sha = _md5_hex(data), sha256_hex(data)
        content_type = content_type or guess_content_type(key)
        headers = {**{f"X-Object-Meta-{k}": v for k, v in meta.items() if k != _SHA256}, "X-Object-Meta-Sha256": sha}
        response: dict[str, Any] = {}

        def put(conn: Connection) -> str:
            return str(conn.put_object(self.container, self.prefix + key, contents=data, etag=md5,
                                       content_type=content_type, headers=headers, response_dict=response))

        try:
            etag = self._call(f"PUT {key!r}", put).strip('"')
        except NotFound:  # no container: the first write makes it (PUT is idempotent)
            self._call(f"PUT {self.container!r}", lambda c: c.put_container(self.container))
            etag = self._call(f"PUT {key!r}", put).strip('"')
        # 202: Swift already held a newer write of this key (a later X-Timestamp: its object
        # server answered 409, the proxy 202; there is no ETag) and kept it. Last writer wins,
        # as in every store: ours is superseded, not failed, and the newer one must stand.
        superseded = response.get("status") == 202
        if not superseded and etag != md5:
            # Stored, but not what we sent (Swift answers 422 when it checks): remove it. On a 422
            # we never get here and delete nothing, so an older good version survives.
            with suppress(NotFound):
                self.delete(key)
            raise StorageUnavailable(f"swift PUT {key!r}: stored bytes do not match what was sent; removed")
        modified = _timestamp((response.get("headers") or {}).get("last-modified")) or time.time()
        return ObjectInfo(key=key, size=len(data), content_type=content_type, sha256=sha, etag=md5,
                          modified=modified, metadata=meta)

    def stat(self, key: str) -> ObjectInfo | None:
        """Info from a HEAD, or None if absent."""
        try:
            headers = self._call(f"HEAD {key!r}", lambda c: c.head_object(self.container, self.prefix + key))
        except NotFound:
            return None
        return self._info(key, headers)

    def delete(self, key: str) -> None:
        """Remove ``key``; NotFound if absent."""
        self._call(f"DELETE {key!r}", lambda c: c.delete_object(self.container, self.prefix + key))

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` after ``marker`` in key order, fetched a page at a time as the caller iterates.

        The first page is at most FIRST_PAGE entries: a caller that reads a few (a page of
        names, a lookup by prefix) is not sent the server's 10,000.
        """
        marker = self.prefix + marker if marker else ""
        limit: int | None = min(self.page_size or FIRST_PAGE, FIRST_PAGE)
        while True:
            try:
                _, page = self._call(f"list {prefix!r}", lambda c: c.get_container(
                    self.container, prefix=self.prefix + prefix, marker=marker, limit=limit))  # noqa: B023
            except NotFound:
                return  # no container yet: nothing was ever written
            for o in page:
                if "name" in o:  # not a subdir entry
                    yield ObjectInfo(key=o["name"][len(self.prefix):], size=int(o.get("bytes", 0)),
                                     content_type=o.get("content_type"), etag=o.get("hash"),
                                     modified=_timestamp(listing=o.get("last_modified")))
            if not page or (limit and len(page) < limit):  # no limit (the server's own): only an empty page ends
                return
            marker = page[-1].get("name") or page[-1].get("subdir")
            limit = self.page_size

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy within the container, metadata included; NotFound if ``src_key`` is absent."""
        dest = f"/{self.container}/{self.prefix}{dst_key}"
        self._call(f"COPY {src_key!r}", lambda c: c.copy_object(self.container, self.prefix + src_key, dest))

    def temp_url(self, key: str, method: str = "GET", seconds: int = 3600) -> tuple[str, int]:
        """A Swift TempURL granting ``method`` on ``key`` for ``seconds``, and its expiry (epoch seconds)."""
        if not self._temp_url_key:
            raise ConfigError("url_key is not set: Swift TempURLs are signed with it")
        base = urlsplit(str(self._call("auth", lambda c: c.url or c.get_auth()[0])))  # the storage URL
        # Swift signs the decoded path; the URL carries it percent-encoded.
        path = f"{unquote(base.path).rstrip('/')}/{self.container}/{self.prefix}{key}"
        expires = int(time.time()) + int(seconds)
        signed = generate_temp_url(path, expires, self._temp_url_key, method.upper(), absolute=True,
                                   digest=self.temp_url_digest)
        return f"{base.scheme}://{base.netloc}{quote(path)}{signed[len(path):]}", expires

    def __repr__(self) -> str:
        return f"SwiftStore({self.url!r})"


def set_temp_url_key(target: SwiftStore | Connection, key: str | Sequence[str], *, on: str = "account",
                     container: str | None = None) -> None:
    """Set the TempURL keys on the account (needs an .admin user) or on a container (the store's by default).

    Swift holds two keys at each level, Temp-URL-Key and Temp-URL-Key-2, and accepts a URL
    signed with either: ``key`` (one, or a list with the signing key first, as url_key) sets
    the first and the second, or removes the second when only one is given, so a rotation
    keeps the URLs signed with the older key working until it is dropped from the list.
    """
    keys = [key] if isinstance(key, str) else [k for k in key if k]
    if not 1 <= len(keys) <= 2:
        raise ConfigError(f"url_key: Swift keeps two TempURL keys (Temp-URL-Key and Temp-URL-Key-2); "
                          f"{len(keys)} are listed")
    conn = target._conn() if isinstance(target, SwiftStore) else target
    container = container or (target.container if isinstance(target, SwiftStore) else None)
    level = {"account": "Account", "container": "Container"}.get(on)
    if level is None or (on == "container" and not container):
        raise ValueError(f"on={on!r}: expected 'account', or 'container' with a SwiftStore or container=")
    # An empty value removes a metadata item in Swift.
    headers = {f"X-{level}-Meta-Temp-URL-Key": keys[0], f"X-{level}-Meta-Temp-URL-Key-2": keys[1] if len(keys) > 1 else ""}
    if on == "account":
        _run(conn, "set account TempURL keys", lambda c: c.post_account(headers), keys)
    else:  # PUT, not POST: it makes the container if needed, idempotently
        _run(conn, "set container TempURL keys", lambda c: c.put_container(container, headers=headers), keys)
