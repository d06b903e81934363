"""S3 on the test Swift's s3api: settings for it, fresh buckets, and the ``s3_store`` fixture."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from image_repo.config.settings import S3Settings
from image_repo.storage.s3 import S3Store


def s3_settings_for(server: Any, **overrides: Any) -> S3Settings:
    """S3Settings for the s3api of ``server`` (a SwiftServer): SigV4, path style, its region and keys."""
    s = S3Settings(endpoint_url=server.s3_endpoint, region=server.s3_region, path_style=True,
                   access_key_id=server.s3_access_key, secret_access_key=server.s3_secret_key)
    for name, value in overrides.items():
        setattr(s, name, value)
    return s


def new_bucket_name() -> str:
    """A bucket name no other test uses (lowercase, 3-63 characters)."""
    return f"test-{uuid.uuid4().hex[:16]}"


def remove_bucket(server: Any, bucket: str) -> None:
    """Delete ``bucket``, its objects and unfinished multipart uploads; nothing if it does not exist."""
    store = S3Store(bucket, "", s3_settings_for(server))
    client = store.client
    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads") or []:
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": o["Key"]} for o in page.get("Contents") or []]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] != "NoSuchBucket":
            raise
    finally:
        store.close()


@contextmanager
def s3_store_on(server: Any, prefix: str = "", bucket: str | None = None, **overrides: Any) -> Iterator[S3Store]:
    """An S3Store on a new bucket (made by its first write), removed afterwards."""
    bucket = bucket or new_bucket_name()
    store = S3Store(bucket, prefix, s3_settings_for(server, **overrides))
    try:
        yield store
    finally:
        store.close()
        remove_bucket(server, bucket)


@pytest.fixture
def s3_store(swift_server: Any) -> Iterator[S3Store]:
    """An S3Store under a prefix of a new bucket on the test Swift's s3api."""
    with s3_store_on(swift_server, "contract/prefix") as store:
        yield store
