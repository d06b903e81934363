"""SwiftStore: an ObjectStore on one OpenStack Swift container (``swift://container[/prefix]``), with TempURLs."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Mapping, TypeVar
from urllib.parse import quote, unquote, urlsplit

import requests
from swiftclient.client import ClientException, Connection
from swiftclient.utils import generate_temp_url

from ..errors import ConfigError, ImageRepoError, InvalidRequest, NotFound, PayloadTooLarge, StorageUnavailable
from ..settings import Settings, SwiftSettings
from .base import ObjectInfo, sha256_hex
from .memory import check_key, check_metadata, guess_content_type

T = TypeVar("T")
_META = "x-object-meta-"
_SHA256 = "sha256"  # our own metadata key: X-Object-Meta-Sha256, never shown as custom metadata

# Credential settings -> the variables that fill them when unset (same table as settings.py).
_OS_ENV: dict[str, tuple[str, ...]] = {
    "auth_url": ("OS_AUTH_URL",), "auth_version": ("OS_IDENTITY_API_VERSION", "OS_AUTH_VERSION"),
    "user": ("OS_USERNAME",), "key": ("OS_PASSWORD",),
    "tenant_name": ("OS_TENANT_NAME", "OS_PROJECT_NAME"), "tenant_id": ("OS_TENANT_ID", "OS_PROJECT_ID"),
    "user_domain_name": ("OS_USER_DOMAIN_NAME",), "project_domain_name": ("OS_PROJECT_DOMAIN_NAME",),
    "application_credential_id": ("OS_APPLICATION_CREDENTIAL_ID",),
    "application_credential_secret": ("OS_APPLICATION_CREDENTIAL_SECRET",),
    "region_name": ("OS_REGION_NAME",), "storage_url": ("OS_STORAGE_URL",), "token": ("OS_AUTH_TOKEN",),
}
_V1_ENV: dict[str, tuple[str, ...]] = {
    "auth_url": ("ST_AUTH",), "auth_version": ("ST_AUTH_VERSION",), "user": ("ST_USER",), "key": ("ST_KEY",),
}
_SECRETS = ("key", "token", "application_credential_secret")


def _credentials(s: SwiftSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """Set credential settings, unset ones filled from ``environ`` (swiftclient's ST_* when ST_AUTH is used)."""
    table = dict(_OS_ENV)
    v1 = not s.auth_url and bool(environ.get("ST_AUTH"))
    if v1:
        table.update(_V1_ENV)
    out: dict[str, str] = {}
    for attr, names in table.items():
        value = getattr(s, attr, None) or next((environ[n] for n in names if environ.get(n)), None)
        if value:
            out[attr] = str(value)
    if v1:
        out.setdefault("auth_version", "1")
    return out


def _auth_version(c: Mapping[str, str]) -> str:
    """"1", "2.0" or "3": as set, else guessed from what the credentials hold and the URL's path."""
    given = c.get("auth_version", "").lower().lstrip("v")
    if given:
        return {"1": "1", "2": "2.0", "3": "3"}.get(given[0], given)
    path = urlsplit(c.get("auth_url", "")).path.rstrip("/")
    if c.keys() & {"application_credential_id", "user_domain_name", "project_domain_name"} or path.endswith("/v3"):
        return "3"
    if path.endswith(("/v2.0", "/v2")) or c.keys() & {"tenant_name", "tenant_id"}:
        return "2.0"
    return "1"


def swift_auth_options(swift: SwiftSettings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``swiftclient.Connection``: v1, Keystone v2/v3, app credential or pre-authenticated."""
    c = _credentials(swift, environ or {})
    opts: dict[str, Any] = {}
    if c.get("storage_url") and c.get("token"):
        opts.update(preauthurl=c["storage_url"], preauthtoken=c["token"])
    if "auth_url" not in c:
        if opts:
            return opts  # pre-authenticated only: no re-auth when the token expires
        raise ConfigError("swift: no credentials: set swift.auth_url (or ST_AUTH / OS_AUTH_URL), "
                          "or swift.storage_url with swift.token")
    version = _auth_version(c)
    opts.update(authurl=c["auth_url"], auth_version=version)
    os_options: dict[str, str] = {}
    if "region_name" in c:
        os_options["region_name"] = c["region_name"]
    if version == "3" and "application_credential_id" in c:
        os_options.update(auth_type="v3applicationcredential",
                          application_credential_id=c["application_credential_id"],
                          application_credential_secret=c.get("application_credential_secret", ""))
    else:
        missing = [f"swift.{a}" for a in ("user", "key") if a not in c]
        if missing:
            raise ConfigError(f"swift: {' and '.join(missing)} must be set for auth version {version}")
        opts.update(user=c["user"], key=c["key"])
        if version == "2.0":
            os_options.update({k: c[k] for k in ("tenant_name", "tenant_id") if k in c})
        elif version == "3":
            os_options.update({new: c[old] for old, new in (
                ("tenant_name", "project_name"), ("tenant_id", "project_id"),
                ("user_domain_name", "user_domain_name"), ("project_domain_name", "project_domain_name")) if old in c})
    if os_options:
        opts["os_options"] = os_options
    return opts


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _http_time(value: str | None) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _run(conn: Connection, what: str, fn: Callable[[Connection], T], secrets: list[str]) -> T:
    """``fn(conn)``, with every swiftclient, requests and socket error translated into ours (no secrets)."""
    try:
        return fn(conn)
    except ClientException as e:
        raise _translate(what, e, secrets) from None
    except (requests.exceptions.RequestException, OSError) as e:
        raise StorageUnavailable(_scrub(f"swift {what}: {type(e).__name__}: {e}", secrets)) from None


def _translate(what: str, e: ClientException, secrets: list[str]) -> ImageRepoError:
    status = e.http_status
    if status == 404:
        return NotFound(f"swift {what}: not found")
    if status in (401, 403):
        return StorageUnavailable(f"swift {what}: not authorised ({status}); check the Swift credentials")
    if status == 413:
        return PayloadTooLarge(f"swift {what}: object too large for Swift")
    if status in (400, 411):
        return InvalidRequest(f"swift {what}: refused ({status} {e.http_reason or ''})".rstrip())
    if status == 422:
        return StorageUnavailable(f"swift {what}: the body did not reach Swift intact (422), nothing stored")
    if status is None:
        return StorageUnavailable(_scrub(f"swift {what}: {e.msg}", secrets))
    return StorageUnavailable(f"swift {what}: {status} {e.http_reason or ''}".rstrip())


class SwiftStore:
    """An ObjectStore on one Swift container, every key under ``prefix``; one connection per thread."""

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
                                     (self._options.get("os_options") or {}).get("application_credential_secret"))
                         if v]
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Connection] = []
        self._auth: tuple[str, str] | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None,
                 environ: Mapping[str, str] | None = None) -> SwiftStore:
        """The store ``swift://container[/prefix]`` names, with credentials from ``settings`` (then ``environ``)."""
        s = settings or Settings()
        scheme, _, rest = url.partition("://")
        container, _, prefix = rest.partition("/")
        if scheme.lower() != "swift" or not container:
            raise ConfigError(f"store URL {url!r}: expected swift://container[/prefix]")
        options = swift_auth_options(s.swift, environ)
        options.update(retries=s.swift.retries, timeout=s.swift.timeout)
        return cls(unquote(container), unquote(prefix), connection_options=options,
                   temp_url_key=s.url_key, temp_url_digest=s.swift.temp_url_digest)

    # --- connections and errors

    def _conn(self) -> Connection:
        # Per thread and per process: a connection made before a Gunicorn fork must not be shared.
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            options = dict(self._options)
            if self._auth and "preauthtoken" not in options:
                # Reuse another thread's token: one auth per process, not per thread; 401 re-auths.
                options.update(preauthurl=self._auth[0], preauthtoken=self._auth[1])
            conn = Connection(**options)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._conns.append(conn)
        return conn

    def _call(self, what: str, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)`` on this thread's connection, errors translated into ours."""
        conn = self._conn()
        result = _run(conn, what, fn, self._secrets)
        if self._auth is None and conn.url and conn.token:
            self._auth = (conn.url, conn.token)
        return result

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _info(self, key: str, headers: Mapping[str, str]) -> ObjectInfo:
        meta = {k[len(_META):]: v for k, v in headers.items() if k.lower().startswith(_META)}
        sha = meta.pop(_SHA256, None)
        stamp = headers.get("x-timestamp")
        return ObjectInfo(key=key, size=int(headers.get("content-length") or 0),
                          content_type=headers.get("content-type"), sha256=sha,
                          etag=(headers.get("etag") or "").strip('"') or None,
                          modified=float(stamp) if stamp else _http_time(headers.get("last-modified")),
                          metadata=meta)

    # --- the ObjectStore protocol

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound if absent."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and info from one GET."""
        headers, body = self._call(f"GET {key!r}", lambda c: c.get_object(self.container, self._name(key)))
        return body, self._info(key, headers)

    def put(self, key: str, data: bytes, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Store ``data`` whole or not at all: Swift checks it against our MD5 (``etag=``)."""
        check_key(key)
        meta = check_metadata(metadata)
        data = bytes(data)
        md5, sha = _md5_hex(data), sha256_hex(data)
        content_type = content_type or guess_content_type(key)
        headers = {f"X-Object-Meta-{k}": v for k, v in meta.items() if k != _SHA256}
        headers["X-Object-Meta-Sha256"] = sha
        response: dict[str, Any] = {}

        def put(conn: Connection) -> str:
            def once() -> str:
                etag: str = conn.put_object(self.container, self._name(key), contents=data, etag=md5,
                                            content_type=content_type, headers=headers, response_dict=response)
                return etag
            try:
                return once()
            except ClientException as e:
                if e.http_status != 404:
                    raise
                conn.put_container(self.container)  # first write: make the container (PUT is idempotent)
                return once()

        etag = self._call(f"PUT {key!r}", put).strip('"')
        if etag != md5:
            # Stored but not what we sent (Swift would have answered 422 had it checked): remove it.
            # On a 422 we never get here and delete nothing, so an older good version survives.
            try:
                self.delete(key)
            except NotFound:
                pass
            raise StorageUnavailable(f"swift PUT {key!r}: stored bytes do not match what was sent; removed")
        resp_headers = response.get("headers") or {}
        return ObjectInfo(key=key, size=len(data), content_type=content_type, sha256=sha, etag=etag,
                          modified=_http_time(resp_headers.get("last-modified")) or time.time(), metadata=meta)

    def stat(self, key: str) -> ObjectInfo | None:
        """Info from a HEAD, or None if absent."""
        try:
            headers = self._call(f"HEAD {key!r}", lambda c: c.head_object(self.container, self._name(key)))
        except NotFound:
            return None
        return self._info(key, headers)

    def delete(self, key: str) -> None:
        """Remove ``key``; NotFound if absent."""
        self._call(f"DELETE {key!r}", lambda c: c.delete_object(self.container, self._name(key)))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, fetched a page at a time as the caller iterates."""
        full, marker = self._name(prefix), ""
        while True:
            try:
                _, page = self._call(f"list {prefix!r}", lambda c: c.get_container(
                    self.container, prefix=full, marker=marker, limit=self.page_size))
            except NotFound:
                return  # no container yet: nothing was ever written
            for o in page:
                if "name" in o:  # not a subdir entry
                    yield ObjectInfo(key=o["name"][len(self.prefix):], size=int(o.get("bytes", 0)),
                                     content_type=o.get("content_type"), etag=o.get("hash"),
                                     modified=_listing_time(o.get("last_modified")))
            # An empty page is the only sure end: the server may cap pages below our page_size.
            if not page or (self.page_size and len(page) < self.page_size):
                return
            marker = page[-1].get("name") or page[-1].get("subdir")

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # --- Swift extras

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy within the container, metadata included; NotFound if ``src_key`` is absent."""
        dest = f"/{self.container}/{self._name(dst_key)}"
        self._call(f"COPY {src_key!r}", lambda c: c.copy_object(self.container, self._name(src_key), dest))

    def storage_url(self) -> str:
        """The account's storage URL (authenticating if this thread has not yet)."""
        url: str = self._call("auth", lambda c: c.url or c.get_auth()[0])
        return url

    def temp_url(self, key: str, method: str = "GET", seconds: int = 3600) -> tuple[str, int]:
        """A Swift TempURL granting ``method`` on ``key`` for ``seconds``, and its expiry (epoch seconds)."""
        if not self._temp_url_key:
            raise ConfigError("url_key is not set: Swift TempURLs are signed with it")
        base = urlsplit(self.storage_url())
        # Swift signs the decoded path; the URL carries it percent-encoded.
        path = f"{unquote(base.path).rstrip('/')}/{self.container}/{self._name(key)}"
        expires = int(time.time()) + int(seconds)
        signed = generate_temp_url(path, expires, self._temp_url_key, method.upper(), absolute=True,
                                   digest=self.temp_url_digest)
        return f"{base.scheme}://{base.netloc}{quote(path)}{signed[len(path):]}", expires

    def __repr__(self) -> str:
        return f"SwiftStore({self.url!r})"


def _listing_time(value: str | None) -> float | None:
    # Listings give UTC without a zone: "2026-11-21T04:07:28.123450".
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp() if value else None
    except ValueError:
        return None


def set_temp_url_key(target: SwiftStore | Connection, key: str, *, on: str = "account",
                     container: str | None = None) -> None:
    """Set the TempURL key on the account (needs an .admin user) or on the store's container."""
    if on not in ("account", "container"):
        raise ValueError(f"on must be 'account' or 'container', not {on!r}")
    if isinstance(target, SwiftStore):
        container = container or target.container
        conn = target._conn()
    else:
        conn = target
    if on == "account":
        _run(conn, "set account TempURL key", lambda c: c.post_account({"X-Account-Meta-Temp-URL-Key": key}), [key])
    elif not container:
        raise ValueError("on='container' needs the container (pass a SwiftStore, or container=)")
    else:
        # PUT, not POST: it makes the container if needed and is idempotent.
        _run(conn, "set container TempURL key",
             lambda c: c.put_container(container, headers={"X-Container-Meta-Temp-URL-Key": key}), [key])
