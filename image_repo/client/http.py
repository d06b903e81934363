"""RepoClient: the server's HTTP surface for uploads and imports, with retries and backoff.

Retried: connection errors, timeouts and 5xx (with exponential backoff and jitter), since
every request here is safe to repeat: uploads of identical bytes change nothing, and an
import is addressed by its id. Not retried: 4xx, which say something about the request.
The token goes only into the Authorization header to our own server, never into a log.
"""
from __future__ import annotations

import hashlib
import logging
import mimetypes
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

log = logging.getLogger("image_repo.client")

CHUNK = 1 << 20


class RequestFailed(Exception):
    """A request that failed for good: ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks (never whole)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class RepoClient:
    """One server: ``server`` is its root URL; images live under ``/<base>/``."""

    def __init__(self, server: str, token: str | None = None, *, base: str = "images", retries: int = 5,
                 backoff: float = 0.5, timeout: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self.base = base.strip("/")
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._token = token
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment between us and our own server

    def _auth(self, url: str) -> dict[str, str]:
        # Only our own server gets the token: never a Swift TempURL or presigned S3 URL.
        return {"Authorization": f"Bearer {self._token}"} if self._token and url.startswith(self.server) else {}

    def request(self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201, 202, 204),
                body: Callable[[], IO[bytes] | bytes | None] | None = None, **kwargs: Any) -> requests.Response:
        """``method url``; retried on connection errors and 5xx; RequestFailed on any other status not ``ok``."""
        headers = {**kwargs.pop("headers", {}), **self._auth(url)}
        shown = url.split("?", 1)[0]  # a signed URL's query is a credential: never logged
        for attempt in range(self.retries + 1):
            data = body() if body is not None else None
            try:
                response = self.session.request(method, url, headers=headers, data=data, timeout=self.timeout,
                                                **kwargs)
            except requests.RequestException as e:
                problem, status = f"{type(e).__name__}", None
            else:
                if response.status_code in ok:
                    return response
                status = response.status_code
                problem = f"{status} {_message(response)}"
                if status < 500:
                    raise RequestFailed(f"{method} {shown}: {problem}", status)
            finally:
                if hasattr(data, "close"):
                    data.close()  # type: ignore[union-attr]
            if attempt == self.retries:
                raise RequestFailed(f"{method} {shown}: {problem} (after {attempt + 1} tries)", status)
            delay = self.backoff * 2**attempt * (0.5 + random.random())
            log.warning("%s %s: %s; retrying in %.1f s", method, shown, problem, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def image_url(self, name: str) -> str:
        return f"{self.server}/{self.base}/{quote(name)}"

    # -- plain uploads -----------------------------------------------------------------------
    def upload(self, path: Path, target: str, sha256: str, *, replace: bool = False) -> str:
        """Send one file with its checksum (POST: 409 if the name holds other bytes; PUT replaces)."""
        url = self.image_url(target)
        headers = {"X-Checksum-Sha256": sha256}
        if replace:
            # request() closes the file after each try, and opens a fresh one for the next.
            r = self.request("PUT", url, body=lambda: open(path, "rb"), headers=headers)  # noqa: SIM115
        else:
            # Multipart for POST: plain uploads are at most max_upload_bytes, so the bytes are read once.
            files = {"file": (path.name, path.read_bytes())}
            r = self.request("POST", url, headers=headers, files=files)
        return r.headers.get("X-Checksum-Sha256", "")

    def stored_sha256(self, name: str) -> str | None:
        """The SHA-256 of ``name``'s stored original, or None if there is no such image."""
        try:
            r = self.request("GET", self.image_url(name) + "?meta=true")
        except RequestFailed as e:
            if e.status == 404:
                return None
            raise
        sha = r.json().get("sha256")
        return str(sha) if sha else None

    # -- direct-to-store imports ---------------------------------------------------------------
    def imports_offered(self) -> bool:
        """Whether the server offers direct-to-store imports (older servers answer 404)."""
        try:
            r = self.request("GET", f"{self.server}/imports", ok=(200,))
        except RequestFailed as e:
            if e.status in (401, 403):
                raise
            return False
        return bool(r.json().get("direct"))

    def create_import(self, name: str, sha256: str, size: int, *, replace: bool = False) -> dict[str, Any]:
        r = self.request("POST", f"{self.server}/imports", json={"name": name, "sha256": sha256, "size": size,
                                                                 "replace": replace})
        return dict(r.json())

    def send_bytes(self, url: str, method: str, path: Path, headers: Mapping[str, str]) -> None:
        """PUT the file to a signed URL, streamed from disk (requests streams a file object)."""
        size = path.stat().st_size
        # The type the stored original will have where the store copies the staging object as it is (Swift).
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.request(method, url, body=lambda: open(path, "rb"),  # noqa: SIM115 (request() closes it)
                     headers={"Content-Type": content_type, **headers, "Content-Length": str(size)}, ok=(200, 201, 204))

    def complete_import(self, import_id: str) -> dict[str, Any]:
        r = self.request("PUT", f"{self.server}/imports/{quote(import_id)}", json={"complete": True})
        return dict(r.json())

    def get_import(self, import_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"{self.server}/imports/{quote(import_id)}").json())

    def cancel_import(self, import_id: str) -> None:
        self.request("DELETE", f"{self.server}/imports/{quote(import_id)}", ok=(200, 204, 404))

    def close(self) -> None:
        self.session.close()


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except ValueError:
        return response.text[:200]
