"""S3Store: ``s3://bucket[/prefix]``, an ObjectStore on AWS or any S3-compatible server (boto3).

Keys live under ``prefix/`` and list without it; each object has its SHA-256 in ``x-amz-meta-sha256``.
Puts send Content-MD5 (multipart above 16 MiB: per part, then a HEAD verifies size and SHA-256). The
first write makes a missing bucket. Credentials come from settings only (``s3_credentials``), else boto3's chain.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import boto3
from botocore.config import Config
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from ..config.settings import S3Settings
from ..errors import ConfigError, ImageRepoError, InvalidRequest, NotFound, StorageUnavailable
from ..host.storegate import OPEN, OpenGate, StoreGate
from ..metrics.figures import store_error
from ..names import parse_original_key
from .base import ObjectInfo, check_key, check_metadata, check_range, guess_content_type, sha256_hex
from .fileio import file_sha256
from .filesystem import FileStore

log = logging.getLogger(__name__)

SHA_META = "sha256"  # user metadata x-amz-meta-sha256: the object's hex SHA-256
MULTIPART_THRESHOLD = 16 * 2**20
PART_SIZE = 8 * 2**20
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live
_PRESIGN = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object", "DELETE": "delete_object"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = {"NoSuchKey", "NoSuchBucket", "NotFound", "404"}
_SSE_HEADERS = {"ServerSideEncryption": "x-amz-server-side-encryption",
                "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id"}
"""The request header of each SSE parameter: a presigned PUT signs them, so the uploader must send them."""
_AUTH = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403"}


def parse_aws_credentials_csv(text: str) -> tuple[str, str]:
    """(access key id, secret) from a file AWS issues: root-key ``AWSAccessKeyId=`` lines or an IAM CSV."""
    text = text.lstrip("\ufeff")
    pairs = {k.strip(): v.strip() for k, sep, v in (line.partition("=") for line in text.splitlines()) if sep}
    if "AWSAccessKeyId" in pairs or "AWSSecretKey" in pairs:
        found = [pairs.get("AWSAccessKeyId", ""), pairs.get("AWSSecretKey", "")]
        problem = "root-key file: needs both an AWSAccessKeyId= and an AWSSecretKey= line"
    else:
        if len(text) > 1 << 16:  # csv would refuse it anyway (field size limit)
            raise ConfigError("too large to be a credentials file")
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
        # Headers vary by vintage: "User Name,Access Key Id,Secret Access Key", "Access key ID,Secret access key".
        header = [re.sub(r"[^a-z]", "", cell.lower()) for cell in rows[0]] if rows else []
        if "accesskeyid" not in header or "secretaccesskey" not in header:
            raise ConfigError("not a credentials file AWS issues: expected AWSAccessKeyId=/AWSSecretKey= lines, "
                              "or a CSV with 'Access key ID' and 'Secret access key' columns")
        row = rows[1] if len(rows) > 1 else []
        found = [row[i].strip() if i < len(row) else "" for i in map(header.index, ("accesskeyid", "secretaccesskey"))]
        problem = "CSV credentials file: no row with both an access key id and a secret under its header"
    if not all(found):
        raise ConfigError(problem)
    return found[0], found[1]


def s3_credentials(s3: S3Settings) -> tuple[str, str] | None:
    """The key and secret to sign with: explicit settings, else ``credentials_file``, else None (boto3's chain)."""
    if s3.access_key_id and s3.secret_access_key:
        return s3.access_key_id, s3.secret_access_key
    if s3.access_key_id or s3.secret_access_key:
        raise ConfigError("config: s3.access_key_id and s3.secret_access_key must be set together")
    if not s3.credentials_file:
        return None
    path = os.path.expanduser(s3.credentials_file)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return parse_aws_credentials_csv(fh.read())
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"config: s3.credentials_file: cannot read {path}: {why}") from None
    except ConfigError as e:
        raise ConfigError(f"config: s3.credentials_file: {path}: {e}") from None


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def translate_error(e: Exception, what: str) -> ImageRepoError:
    """Our error for a boto3 one: 404s are NotFound, the rest StorageUnavailable (codes only, never secrets)."""
    if isinstance(e, ClientError):
        code, status = _code(e), int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _MISSING or status == 404:
            return NotFound(f"{what}: not found")
        store_error("s3")
        if code in _AUTH or status in (401, 403):
            return StorageUnavailable(f"{what}: access denied ({code or status}); check the S3 credentials")
        return StorageUnavailable(f"{what}: S3 answered {status} {code}".rstrip())
    store_error("s3")
    return StorageUnavailable(f"{what}: {type(e).__name__}: {e}")


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class S3Store:
    """Objects in ``bucket`` under ``prefix``; one lazily made boto3 client per process, shared by threads."""

    create_is_atomic = False
    """AWS S3 conditional writes are atomic; S3 on Swift (s3api) passes them to Swift, which is not."""

    gate: StoreGate | OpenGate = OPEN
    """Bounds the request threads waiting on S3 at once (set per worker by create_app)."""

    def __init__(self, bucket: str, prefix: str = "", settings: S3Settings | None = None, *, page_size: int = 1000,
                 multipart_threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE) -> None:
        if not _BUCKET.match(bucket):
            raise ConfigError(f"s3 store: {bucket!r} is not a bucket name (3-63 of a-z 0-9 . -)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        s = self.settings = settings or S3Settings()
        self.page_size, self.multipart_threshold, self.part_size = page_size, multipart_threshold, part_size
        self._credentials = s3_credentials(s)  # a bad file is a ConfigError at open, not at first use
        self._sse: dict[str, str] = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": s.kms_key_id} if s.kms_key_id
                                     else {"ServerSideEncryption": "AES256"} if s.encrypt else {})
        self._local_root = os.path.abspath(os.path.expanduser(s.local_copy)) if s.local_copy else None
        self._local: FileStore | None = None
        self._client: Any = None
        self._lock, self._pid = threading.Lock(), 0

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> S3Store:
        """``s3://bucket`` or ``s3://bucket/prefix``; ``settings`` is Settings, S3Settings or None (defaults)."""
        scheme, sep, rest = url.partition("://")
        if scheme.lower() != "s3" or not sep:
            raise ConfigError(f"store URL {url!r}: expected s3://bucket[/prefix]")
        bucket, _, prefix = rest.partition("/")
        return cls(bucket, prefix, settings if isinstance(settings, S3Settings) else getattr(settings, "s3", None))

    @property
    def client(self) -> Any:
        """The boto3 client, made on first use in each process (clients are thread-safe; sockets are not fork-safe)."""
        with self._lock:  # uncontended almost always: far cheaper than the request that follows
            if self._client is None or self._pid != os.getpid():
                self._client, self._pid = self._make_client(), os.getpid()
            return self._client

    def _make_client(self) -> Any:
        s = self.settings
        keys: dict[str, Any] = {}
        if self._credentials:
            keys = {"aws_access_key_id": self._credentials[0], "aws_secret_access_key": self._credentials[1],
                    "aws_session_token": s.session_token if s.access_key_id else None}
        config = Config(signature_version="s3v4", s3={"addressing_style": "path" if s.path_style else "auto"},
                        retries={"mode": s.retry_mode, "max_attempts": s.retries},
                        connect_timeout=s.connect_timeout, read_timeout=s.read_timeout, max_pool_connections=32,
                        # We send Content-MD5 ourselves; boto3's default CRC trailers break many S3-compatible servers.
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        with self._edge("connect"):
            session = boto3.session.Session(region_name=s.region or None, **keys)
            return session.client("s3", endpoint_url=s.endpoint_url or None, config=config)

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        try:
            with self.gate.slot(f"s3 {what}"):
                yield
        except (ClientError, BotoCoreError) as e:
            raise translate_error(e, f"s3 {self.url}: {what}") from None
        except S3UploadFailedError as e:  # the managed transfer's wrapper of a ClientError
            raise StorageUnavailable(f"s3 {self.url}: {what}: {e}") from None

    def _info(self, key: str, r: Mapping[str, Any]) -> ObjectInfo:
        meta = {k.lower(): v for k, v in (r.get("Metadata") or {}).items()}
        return ObjectInfo(key=key, size=int(r.get("ContentLength") or 0), content_type=r.get("ContentType"),
                          sha256=meta.pop(SHA_META, None), etag=(r.get("ETag") or "").strip('"') or None,
                          modified=r["LastModified"].timestamp() if r.get("LastModified") else None, metadata=meta)

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound if absent."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and info from one GET."""
        with self._edge(f"get {key!r}"):
            r = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            data = r["Body"].read()
        return data, self._info(key, r)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """One ``Range`` GET (S3 has no multi-range GET); past the end is empty."""
        check_range(start, length)
        if length == 0:
            if self.stat(key) is None:
                raise NotFound(f"s3 {self.url}: get {key!r}: not found")
            return b""
        with self._edge(f"get {key!r} bytes {start}+{length}"):
            try:
                r = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key,
                                           Range=f"bytes={start}-{start + length - 1}")
            except ClientError as e:
                if _code(e) == "InvalidRange":
                    return b""
                raise
            return bytes(r["Body"].read())[:length]

    def put_file(self, key: str, path: str, content_type: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """A local file by boto3's managed transfer (multipart past ``multipart_threshold``), never
        read into memory; a multipart upload becomes visible only when it completes."""
        check_key(key)
        meta = check_metadata(metadata)
        meta.pop(SHA_META, None)
        sha, ctype = file_sha256(path), content_type or guess_content_type(key)
        extra = {"ContentType": ctype, "Metadata": {**meta, SHA_META: sha}, **self._sse}
        config = TransferConfig(multipart_threshold=self.multipart_threshold, multipart_chunksize=self.part_size,
                                max_concurrency=4, use_threads=True)
        with self._edge(f"put {key!r}"):
            try:
                self.client.upload_file(path, self.bucket, self.prefix + key, ExtraArgs=extra, Config=config)
            except (ClientError, S3UploadFailedError) as e:
                if "NoSuchBucket" not in str(e):
                    raise
                self._create_bucket()
                self.client.upload_file(path, self.bucket, self.prefix + key, ExtraArgs=extra, Config=config)
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        if (head.get("Metadata") or {}).get(SHA_META) != sha or head.get("ContentLength") != os.path.getsize(path):
            raise StorageUnavailable(f"s3 {self.url}: upload of {key!r} did not verify (size or sha256)")
        return self._info(key, head)

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """A PUT with ``If-None-Match: *`` (S3 conditional writes); False when the key is taken."""
        check_key(key)
        args = {"Bucket": self.bucket, "Key": self.prefix + key, "Body": data, "IfNoneMatch": "*",
                "ContentType": content_type or guess_content_type(key), "ContentMD5": _md5_b64(data), **self._sse}
        with self._edge(f"create {key!r}"):
            try:
                self.client.put_object(**args)
            except ClientError as e:
                if _code(e) in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                    return False
                if _code(e) != "NoSuchBucket":
                    raise
                self._create_bucket()
                return self.create(key, data, content_type)
        return True

    def stat(self, key: str) -> ObjectInfo | None:
        """Info from a HEAD, or None if absent."""
        try:
            with self._edge(f"stat {key!r}"):
                return self._info(key, self.client.head_object(Bucket=self.bucket, Key=self.prefix + key))
        except NotFound:
            return None

    def put(self, key: str, data: bytes, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Store ``data`` (server-checked MD5, SHA-256 in metadata); originals also go to ``local_copy``."""
        check_key(key)
        data = bytes(data)
        meta = check_metadata(metadata)
        meta.pop(SHA_META, None)  # the hash we compute is the only one stored under that name
        sha, ctype = sha256_hex(data), content_type or guess_content_type(key)
        extra = {"ContentType": ctype, "Metadata": {**meta, SHA_META: sha}, **self._sse}
        with self._edge(f"put {key!r}"):
            try:
                etag = self._upload(self.prefix + key, data, extra)
            except ClientError as e:
                if _code(e) != "NoSuchBucket":
                    raise
                self._create_bucket()
                etag = self._upload(self.prefix + key, data, extra)
        if self._local_root and parse_original_key(key) is not None:
            self._copy_locally(key, data, ctype, meta)
        return ObjectInfo(key=key, size=len(data), content_type=ctype, sha256=sha, etag=etag,
                          modified=time.time(), metadata=meta)

    def _upload(self, full: str, data: bytes, extra: dict[str, Any]) -> str | None:
        where = {"Bucket": self.bucket, "Key": full}
        if len(data) <= self.multipart_threshold:
            r = self.client.put_object(**where, Body=data, ContentMD5=_md5_b64(data), **extra)
            return (r.get("ETag") or "").strip('"') or None
        upload = {**where, "UploadId": self.client.create_multipart_upload(**where, **extra)["UploadId"]}
        try:
            parts = []
            for number, start in enumerate(range(0, len(data), self.part_size), 1):
                chunk = data[start:start + self.part_size]
                r = self.client.upload_part(**upload, PartNumber=number, Body=chunk, ContentMD5=_md5_b64(chunk))
                parts.append({"PartNumber": number, "ETag": r["ETag"]})
            self.client.complete_multipart_upload(**upload, MultipartUpload={"Parts": parts})
        except BaseException:
            with suppress(ClientError, BotoCoreError):  # leave no billed, invisible parts behind
                self.client.abort_multipart_upload(**upload)
            raise
        # A multipart ETag is no MD5 of the whole: check what the server assembled instead.
        head = self.client.head_object(**where)
        stored_sha = (head.get("Metadata") or {}).get(SHA_META)
        if head.get("ContentLength") != len(data) or stored_sha != extra["Metadata"][SHA_META]:
            raise StorageUnavailable(f"s3 {self.url}: multipart upload of {full!r} did not verify (size or sha256)")
        return (head.get("ETag") or "").strip('"') or None

    def _create_bucket(self) -> None:
        region = self.client.meta.region_name  # us-east-1 refuses a LocationConstraint naming itself
        where = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            self.client.create_bucket(Bucket=self.bucket, **where)
            log.info("s3: created bucket %s", self.bucket)
        except ClientError as e:
            if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _copy_locally(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        # A backup: its failure is logged, never raised. FileStore writes atomically and never leaves its directory.
        try:
            if self._local is None:
                self._local = FileStore(self._local_root or "")
            self._local.put(key, data, content_type, metadata)
        except (ImageRepoError, OSError) as e:
            log.warning("s3 %s: local copy of %r not written: %s", self.url, key, e)

    def delete(self, key: str) -> None:
        """Remove ``key``; NotFound if absent (S3 itself answers 204 either way, so HEAD first)."""
        with self._edge(f"delete {key!r}"):
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` after ``marker`` in key order, a page at a time (no content types, metadata or SHA-256)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix, "MaxKeys": self.page_size}
        if marker:
            args["StartAfter"] = self.prefix + marker
        while True:
            with self._edge(f"list {prefix!r}"):
                try:
                    page = self.client.list_objects_v2(**args)
                except ClientError as e:
                    if _code(e) == "NoSuchBucket":
                        return  # nothing written yet
                    raise
            for o in page.get("Contents") or []:
                key = o["Key"][len(self.prefix):]
                yield ObjectInfo(key=key, size=int(o["Size"]), content_type=guess_content_type(key),
                                 etag=(o.get("ETag") or "").strip('"') or None, modified=o["LastModified"].timestamp())
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return
            args["ContinuationToken"] = page["NextContinuationToken"]

    def temp_url(self, key: str, method: str = "GET", seconds: int = 3600) -> tuple[str, int]:
        """A presigned URL granting ``method`` (GET, HEAD, PUT, DELETE) on ``key``, and its expiry (epoch s).

        With encryption configured a PUT URL is signed with it: the uploader must send
        ``put_url_headers()`` along, and the object is stored encrypted like every other write.
        """
        operation = _PRESIGN.get(method.upper())
        if operation is None:
            raise InvalidRequest(f"temp_url: method {method!r} is not one of {', '.join(_PRESIGN)}")
        seconds = max(1, min(int(seconds), MAX_PRESIGN_SECONDS))
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key}
        if operation == "put_object":
            params.update(self._sse)
        now = int(time.time())  # taken before signing, so the expiry we state is never later than the real one
        with self._edge(f"presign {key!r}"):
            url = self.client.generate_presigned_url(operation, Params=params, ExpiresIn=seconds)
        return url, now + seconds

    def put_url_headers(self) -> dict[str, str]:
        """The headers a PUT to a ``temp_url(..., "PUT")`` URL must carry: the signed encryption ones, if any."""
        return {_SSE_HEADERS[name]: value for name, value in self._sse.items()}

    def close(self) -> None:
        """Close the client's connections; the next use opens new ones."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"
