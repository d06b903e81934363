"""S3Store: credentials parsing and URL handling offline; the rest on the real s3api of the test Swift.

The contract suite runs S3Store too (tests/storage/conftest.py, fixture ``s3_store``).
"""
from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from image_repo.config.settings import S3Settings, Settings
from image_repo.errors import ConfigError, InvalidRequest, NotFound, StorageUnavailable
from image_repo.storage.base import SupportsTempUrl, content_version
from image_repo.storage.registry import open_store
from image_repo.storage.s3 import (
    MAX_PRESIGN_SECONDS,
    S3Store,
    parse_aws_credentials_csv,
    s3_credentials,
    translate_error,
)
from tests.s3.fixtures import new_bucket_name, s3_settings_for, s3_store_on

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OFFLINE = S3Settings(endpoint_url="http://127.0.0.1:9", region="us-east-1", path_style=True,
                     access_key_id="AKIDEXAMPLE", secret_access_key=SECRET)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- credentials files ------------------------------------------------------------------------

ROOT_KEY = f"AWSAccessKeyId=AKIAROOT\nAWSSecretKey={SECRET}\n"
IAM_USER = f"User Name,Access Key Id,Secret Access Key\n\"alice\",AKIAUSER,{SECRET}\n"
IAM_NEW = f"Access key ID,Secret access key\nAKIANEW,{SECRET}\n"
CONSOLE = ("User name,Password,Access key ID,Secret access key,Console login link\n"
           f"carol,pw,AKIACON,{SECRET},https://123.signin.aws.amazon.com/console\n")


@pytest.mark.parametrize("text, expected", [
    (ROOT_KEY, ("AKIAROOT", SECRET)),
    ("\ufeff" + ROOT_KEY.replace("\n", "\r\n"), ("AKIAROOT", SECRET)),
    (" AWSAccessKeyId = AKIAROOT \n\nAWSSecretKey=abc=def\n", ("AKIAROOT", "abc=def")),
    (IAM_USER, ("AKIAUSER", SECRET)),
    ('"User Name","Access Key Id","Secret Access Key"\r\n"alice","AKIAUSER","s,e/cr+et"\r\n',
     ("AKIAUSER", "s,e/cr+et")),
    ('"User Name","Access Key Id","Secret Access Key"\r\n"bob","AKIAQ","a ""quoted"", secret"\r\n',
     ("AKIAQ", 'a "quoted", secret')),
    (IAM_NEW, ("AKIANEW", SECRET)),
    ("\ufeff" + IAM_NEW.replace("\n", "\r\n") + "\r\n\r\n", ("AKIANEW", SECRET)),
    (CONSOLE, ("AKIACON", SECRET)),
])
def test_credentials_file_forms(text, expected):
    assert parse_aws_credentials_csv(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "\ufeff\r\n",
    "just some text",
    "Access key ID,Secret access key\n",
    "Access key ID,Secret access key\nAKIAONLY\n",
    f"Access key ID,Secret access key\n,{SECRET}\n",
    f"User Name,Access Key Id\nalice,{SECRET}\n",
    f"AWSSecretKey={SECRET}\n",
    "AWSAccessKeyId=AKIA\nAWSSecretKey=\n",
    "x" * 200_000,
])
def test_bad_credentials_file_is_a_config_error_without_the_secret(text):
    with pytest.raises(ConfigError) as e:
        parse_aws_credentials_csv(text)
    assert SECRET not in str(e.value) and "AKIA" not in str(e.value)


def test_credentials_explicit_settings_win(tmp_path):
    path = tmp_path / "creds.csv"
    path.write_text(IAM_NEW)
    s = S3Settings(access_key_id="AKIAEXPLICIT", secret_access_key="explicit", credentials_file=str(path))
    assert s3_credentials(s) == ("AKIAEXPLICIT", "explicit")


@pytest.mark.parametrize("text, key", [(ROOT_KEY, "AKIAROOT"), (IAM_USER, "AKIAUSER"), (IAM_NEW, "AKIANEW")])
def test_credentials_from_the_file_when_settings_have_none(tmp_path, text, key):
    path = tmp_path / "creds.csv"
    path.write_bytes(("\ufeff" + text).encode())
    assert s3_credentials(S3Settings(credentials_file=str(path))) == (key, SECRET)


def test_no_credentials_leaves_boto3s_chain():
    assert s3_credentials(S3Settings()) is None


@pytest.mark.parametrize("given", [{"access_key_id": "AKIA"}, {"secret_access_key": SECRET}])
def test_half_the_credentials_is_a_config_error(given):
    with pytest.raises(ConfigError) as e:
        s3_credentials(S3Settings(**given))
    assert "s3.access_key_id" in str(e.value) and SECRET not in str(e.value)


def test_unreadable_or_bad_credentials_file_names_the_setting_and_path(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(ConfigError, match="s3.credentials_file.*missing.csv"):
        s3_credentials(S3Settings(credentials_file=str(missing)))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        s3_credentials(S3Settings(credentials_file=str(binary)))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"AWSSecretKey={SECRET}\n")
    with pytest.raises(ConfigError, match="s3.credentials_file.*bad.csv") as e:
        s3_credentials(S3Settings(credentials_file=str(bad)))
    assert SECRET not in str(e.value)
    with pytest.raises(ConfigError):  # found when the store is opened, not at its first request
        S3Store.from_url("s3://bucket", S3Settings(credentials_file=str(bad)))


# -- URLs, settings, offline behaviour -------------------------------------------------------------

@pytest.mark.parametrize("url, bucket, prefix, canonical", [
    ("s3://bucket", "bucket", "", "s3://bucket"),
    ("s3://bucket/", "bucket", "", "s3://bucket"),
    ("S3://my.bucket-1/a/b/", "my.bucket-1", "a/b/", "s3://my.bucket-1/a/b"),
    ("s3://bucket//pre", "bucket", "pre/", "s3://bucket/pre"),
])
def test_from_url(url, bucket, prefix, canonical):
    store = S3Store.from_url(url, None)
    assert (store.bucket, store.prefix, store.url) == (bucket, prefix, canonical)


@pytest.mark.parametrize("url", ["s3://", "s3://ab", "s3://Upper", "s3://under_score", "s3:bucket", "swift://x",
                                 "s3://" + "a" * 64])
def test_bad_urls_are_config_errors(url):
    with pytest.raises(ConfigError):
        S3Store.from_url(url, None)


def test_from_url_takes_settings_or_their_s3_section():
    settings = Settings()
    settings.s3.path_style = True
    assert S3Store.from_url("s3://bucket", settings).settings is settings.s3
    assert S3Store.from_url("s3://bucket", settings.s3).settings is settings.s3
    assert S3Store.from_url("s3://bucket", None).settings == S3Settings()
    assert isinstance(open_store("s3://bucket/p", settings), S3Store)


def test_secrets_never_shown():
    store = S3Store.from_url("s3://bucket/p", OFFLINE)
    for text in (repr(store), str(store), repr(store.settings)):
        assert SECRET not in text


def test_one_client_per_process(monkeypatch):
    store = S3Store.from_url("s3://bucket", OFFLINE)
    first = store.client
    assert store.client is first
    pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: pid + 1)  # as in a worker forked after first use
    assert store.client is not first


def test_presign_offline_path_style_clamped_and_methods():
    store = S3Store.from_url("s3://bucket/pre", OFFLINE)
    assert isinstance(store, SupportsTempUrl)  # so url=true on an s3:// cache store presigns
    before = int(time.time())
    url, expires = store.temp_url("a b/ü.jpg", "GET", 60)
    assert url.startswith("http://127.0.0.1:9/bucket/pre/a%20b/%C3%BC.jpg?")
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url and SECRET not in url
    assert before + 60 <= expires <= int(time.time()) + 60
    url, expires = store.temp_url("k.jpg", "put", 10 * MAX_PRESIGN_SECONDS)
    assert f"X-Amz-Expires={MAX_PRESIGN_SECONDS}" in url and expires <= time.time() + MAX_PRESIGN_SECONDS
    with pytest.raises(InvalidRequest):
        store.temp_url("k.jpg", "POST", 60)


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": SECRET}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.mark.parametrize("error, expected", [
    (client_error("NoSuchKey", 404), NotFound),
    (client_error("404", 404), NotFound),
    (client_error("NoSuchBucket", 404), NotFound),
    (client_error("SignatureDoesNotMatch", 403), StorageUnavailable),
    (client_error("InvalidAccessKeyId", 403), StorageUnavailable),
    (client_error("InternalError", 500), StorageUnavailable),
    (client_error("SlowDown", 503), StorageUnavailable),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), StorageUnavailable),
])
def test_errors_translated_without_server_text(error, expected):
    translated = translate_error(error, "s3 s3://b: get 'k'")
    assert type(translated) is expected
    assert SECRET not in translated.message and translated.message.startswith("s3 s3://b: get 'k'")


def test_unreachable_endpoint_is_storage_unavailable():
    store = S3Store.from_url("s3://bucket", OFFLINE)  # port 9 (discard): nothing listens on loopback
    for call in (lambda: store.get("a.jpg"), lambda: store.stat("a.jpg"), lambda: list(store.list()),
                 lambda: store.put("a.jpg", b"x")):
        with pytest.raises(StorageUnavailable) as e:
            call()
        assert SECRET not in str(e.value)


def capture(store: S3Store, event: str) -> list:
    """Every request of ``event`` (e.g. ``before-send.s3.PutObject``) the store's client sends."""
    seen: list = []
    store.client.meta.events.register(event, lambda request, **_: seen.append(request))
    return seen


# -- on the real s3api ------------------------------------------------------------------------------

@pytest.mark.swift
def test_bucket_made_by_first_write(swift_server):
    with s3_store_on(swift_server) as store:
        assert store.stat("a.jpg") is None and list(store.list()) == []
        with pytest.raises(NotFound):
            store.get("a.jpg")
        with pytest.raises(NotFound):
            store.delete("a.jpg")
        store.put("a.jpg", b"first")
        store.client.head_bucket(Bucket=store.bucket)
        assert store.get("a.jpg") == b"first"


@pytest.mark.swift
def test_prefix_is_prepended_and_stripped(swift_server):
    with s3_store_on(swift_server, "pre/fix") as store:
        store.put("a/b.jpg", b"in")
        store.client.put_object(Bucket=store.bucket, Key="other.jpg", Body=b"out")
        store.client.put_object(Bucket=store.bucket, Key="pre/fixed.jpg", Body=b"out")
        raw = store.client.list_objects_v2(Bucket=store.bucket)["Contents"]
        assert sorted(o["Key"] for o in raw) == ["other.jpg", "pre/fix/a/b.jpg", "pre/fixed.jpg"]
        assert [i.key for i in store.list()] == ["a/b.jpg"]
        whole = S3Store(store.bucket, "", store.settings)
        assert [i.key for i in whole.list("pre/")] == ["pre/fix/a/b.jpg", "pre/fixed.jpg"]


@pytest.mark.swift
def test_listing_pages_and_server_side_prefix(swift_server):
    with s3_store_on(swift_server, "p") as store:
        keys = [f"site/{i:02d}.jpg" for i in range(7)] + ["site10.jpg", "zz.jpg"]
        for k in keys:
            store.put(k, k.encode())
        store.page_size = 2
        calls: list = []
        store.client.meta.events.register("before-parameter-build.s3.ListObjectsV2",
                                          lambda params, **_: calls.append(dict(params)))
        listed = list(store.list("site"))
        assert [i.key for i in listed] == sorted(keys)[:-1]
        assert [i.size for i in listed] == [len(k) for k in sorted(keys)[:-1]]
        assert len(calls) == 4 and {c["Prefix"] for c in calls} == {"p/site"}  # narrowed by the server, not by us
        assert listed[0].etag == hashlib.md5(b"site/00.jpg").hexdigest() and listed[0].content_type == "image/jpeg"


@pytest.mark.swift
def test_put_sends_content_md5_and_the_server_checks_it(swift_server):
    with s3_store_on(swift_server) as store:
        sent = capture(store, "before-send.s3.PutObject")
        info = store.put("a.png", b"png bytes", content_type="image/png", metadata={"m": "v"})
        assert sent[-1].headers["Content-MD5"] == md5_b64(b"png bytes").encode()
        assert sent[-1].headers["x-amz-meta-sha256"] == sha(b"png bytes").encode()
        assert info.etag == hashlib.md5(b"png bytes").hexdigest()
        head = store.client.head_object(Bucket=store.bucket, Key="a.png")
        assert head["Metadata"] == {"sha256": sha(b"png bytes"), "m": "v"}

        def corrupt(params, **_):  # as if the body changed on the way: the server must refuse it
            params["ContentMD5"] = md5_b64(b"something else")
        store.client.meta.events.register("before-parameter-build.s3.PutObject", corrupt)
        with pytest.raises(StorageUnavailable, match="BadDigest"):
            store.put("b.png", b"png bytes")
        assert store.stat("b.png") is None


@pytest.mark.swift
def test_large_originals_go_multipart_and_are_verified(swift_server):
    with s3_store_on(swift_server) as store:
        parts = capture(store, "before-send.s3.UploadPart")
        data = os.urandom(17 * 2**20)
        info = store.put("big.tif", data, metadata={"k": "v"})
        assert len(parts) == 3 and all("Content-MD5" in p.headers for p in parts)
        assert info.sha256 == sha(data) and info.size == len(data) and info.etag.endswith("-3")
        got, got_info = store.get_with_info("big.tif")
        assert got == data
        assert (got_info.sha256, got_info.content_type, dict(got_info.metadata)) == (sha(data), "image/tiff", {"k": "v"})


@pytest.mark.swift
def test_multipart_that_does_not_verify_or_fails_is_refused_and_aborted(swift_server):
    with s3_store_on(swift_server) as store:
        store.multipart_threshold, store.part_size = 5 * 2**20, 5 * 2**20
        data = os.urandom(11 * 2**20)

        def lie(parsed, **_):
            parsed.setdefault("Metadata", {})["sha256"] = "0" * 64
        store.client.meta.events.register("after-call.s3.HeadObject", lie)
        with pytest.raises(StorageUnavailable, match="did not verify"):
            store.put("big.tif", data)
        store.client.meta.events.unregister("after-call.s3.HeadObject", lie)

        def bad_part(params, **_):
            if params["PartNumber"] == 2:
                params["ContentMD5"] = md5_b64(b"not this part")
        store.client.meta.events.register("before-parameter-build.s3.UploadPart", bad_part)
        with pytest.raises(StorageUnavailable, match="BadDigest"):
            store.put("other.tif", data)
        assert store.stat("other.tif") is None
        assert not store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads")


@pytest.mark.swift
def test_presigned_get_and_put_fetched_directly(swift_server):
    with s3_store_on(swift_server, "derived") as store:
        store.put("a b/ü.jpg", b"derived bytes")
        before = int(time.time())
        url, expires = store.temp_url("a b/ü.jpg", "GET", 300)
        assert before + 300 <= expires <= int(time.time()) + 300  # bounded by the clock on both sides
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == b"derived bytes"
        url, _ = store.temp_url("up/new.jpg", "PUT", 300)
        request = urllib.request.Request(url, data=b"uploaded directly", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
        assert store.get("up/new.jpg") == b"uploaded directly"
        url, _ = store.temp_url("a b/ü.jpg", "GET", 1)
        time.sleep(2.1)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=10)
        assert e.value.code == 403


@pytest.mark.swift
@pytest.mark.parametrize("form", ["root-key", "iam-user", "iam-new"])
def test_credentials_files_against_the_server(swift_server, tmp_path, form):
    key, secret = swift_server.s3_access_key, swift_server.s3_secret_key
    text = {
        "root-key": f"AWSAccessKeyId={key}\r\nAWSSecretKey={secret}\r\n",
        "iam-user": f'"User Name","Access Key Id","Secret Access Key"\n"tester","{key}","{secret}"\n',
        "iam-new": f"\ufeffAccess key ID,Secret access key\r\n{key},{secret}\r\n",
    }[form]
    path = tmp_path / "credentials.csv"
    path.write_text(text, encoding="utf-8")
    with s3_store_on(swift_server, access_key_id=None, secret_access_key=None, credentials_file=str(path)) as store:
        store.put("c.jpg", b"signed with the file's key")
        assert store.get("c.jpg") == b"signed with the file's key"


@pytest.mark.swift
def test_wrong_secret_is_storage_unavailable_without_the_secret(swift_server):
    wrong = "not-the-secret-" + "x" * 20
    with s3_store_on(swift_server, secret_access_key=wrong) as store:
        for call in (lambda: store.put("a.jpg", b"x"), lambda: store.get("a.jpg"), lambda: store.stat("a.jpg"),
                     lambda: list(store.list())):
            with pytest.raises(StorageUnavailable, match="access denied") as e:
                call()
            assert wrong not in str(e.value) and swift_server.s3_secret_key not in str(e.value)


@pytest.mark.swift
def test_objects_written_by_other_tools(swift_server):
    with s3_store_on(swift_server) as store:
        store.put("seed.jpg", b"x")  # makes the bucket
        store.client.put_object(Bucket=store.bucket, Key="foreign.jpg", Body=b"foreign", ContentType="image/jpeg")
        info = store.stat("foreign.jpg")
        assert info is not None and info.sha256 is None and info.metadata == {}
        assert content_version(info) == "etag-" + hashlib.md5(b"foreign").hexdigest()
        assert store.get("foreign.jpg") == b"foreign"


@pytest.mark.swift
@pytest.mark.parametrize("settings, headers", [
    ({"encrypt": True}, {"x-amz-server-side-encryption": b"AES256"}),
    ({"kms_key_id": "alias/images"},
     {"x-amz-server-side-encryption": b"aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": b"alias/images"}),
])
def test_encryption_headers_sent(swift_server, settings, headers):
    # The test Swift answers NotImplemented to SSE; AWS would encrypt. Either way the request must ask for it.
    with s3_store_on(swift_server, **settings) as store:
        S3Store(store.bucket, "", s3_settings_for(swift_server)).put("seed.jpg", b"x")  # the bucket, unencrypted
        puts = capture(store, "before-send.s3.PutObject")
        starts = capture(store, "before-send.s3.CreateMultipartUpload")
        for data in (b"small", os.urandom(16 * 2**20 + 1)):
            try:
                store.put("enc.jpg", data)
            except StorageUnavailable as e:
                assert "NotImplemented" in str(e)
            else:
                assert store.get("enc.jpg") == data
        assert len(puts) == 1 and len(starts) == 1
        for request in (puts[0], starts[0]):
            assert {k: request.headers.get(k) for k in headers} == headers


@pytest.mark.swift
def test_no_encryption_headers_by_default(swift_server):
    with s3_store_on(swift_server) as store:
        puts = capture(store, "before-send.s3.PutObject")
        store.put("plain.jpg", b"x")
        assert not [h for h in puts[-1].headers if h.lower().startswith("x-amz-server-side-encryption")]


@pytest.mark.swift
def test_local_copy_of_originals(swift_server, tmp_path, caplog):
    local = tmp_path / "backup"
    with s3_store_on(swift_server, "pre", local_copy=str(local)) as store:
        store.put("site/a.jpg", b"original", content_type="image/jpeg")
        store.put("site/a/.d/ab12/thumb.jpg", b"derived")
        store.put("notes.txt", b"not an image")
        store.put("site/a.jpg", b"replaced")
        assert (local / "site" / "a.jpg").read_bytes() == b"replaced"
        assert not (local / "site" / "a").exists() and not (local / "notes.txt").exists()
        assert not list(local.glob("**/*.tmp-*"))
        # Keys that would leave the directory: stored in S3, never written outside, a warning logged.
        outside = tmp_path / "outside"
        outside.mkdir()
        (local / "link").symlink_to(outside)
        with caplog.at_level(logging.WARNING, logger="image_repo.storage.s3"):
            store.put("link/x.jpg", b"through a symlink")
            store.put("/abs.jpg", b"absolute")
        assert store.get("link/x.jpg") == b"through a symlink" and store.get("/abs.jpg") == b"absolute"
        assert list(outside.iterdir()) == [] and not (tmp_path / "abs.jpg").exists()
        assert len([r for r in caplog.records if "local copy" in r.getMessage()]) == 2


@pytest.mark.swift
def test_local_copy_failure_is_logged_not_fatal(swift_server, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with s3_store_on(swift_server, local_copy=str(blocker)) as store:
        with caplog.at_level(logging.WARNING, logger="image_repo.storage.s3"):
            info = store.put("site/a.jpg", b"original")
        assert info.sha256 == sha(b"original") and store.get("site/a.jpg") == b"original"
        messages = [r.getMessage() for r in caplog.records if "local copy" in r.getMessage()]
        assert len(messages) == 1 and "site/a.jpg" in messages[0]
        assert swift_server.s3_secret_key not in messages[0]


@pytest.mark.swift
def test_open_store_with_full_settings(swift_server):
    settings = Settings()
    settings.s3 = s3_settings_for(swift_server)
    bucket = new_bucket_name()
    with s3_store_on(swift_server, bucket=bucket):  # removes the bucket afterwards
        store = open_store(f"s3://{bucket}/images", settings)
        store.put("x.jpg", b"1")
        assert [i.key for i in store.list()] == ["x.jpg"]
        store.close()


@pytest.mark.swift
def test_server_on_s3_answers_url_true_with_a_presigned_url(swift_server, tmp_path, plain_jpeg):
    from PIL import Image

    from image_repo.web.app import create_app

    bucket = new_bucket_name()
    with s3_store_on(swift_server, bucket=bucket):  # removes the bucket afterwards
        settings = Settings()
        settings.data_dir, settings.url_key = str(tmp_path / "data"), "test-url-key"
        settings.store, settings.cache_store = f"s3://{bucket}/originals", f"s3://{bucket}/cache"
        settings.s3 = s3_settings_for(swift_server)
        client = create_app(settings).test_client()
        r = client.put("/images/site/photo.jpg", data=plain_jpeg, content_type="image/jpeg")
        assert r.status_code in (200, 201), r.get_data(as_text=True)
        assert client.get("/images").get_json() == ["site/photo"]
        body = client.get("/images/site/photo?url=true&xsize=40").get_json()
        assert body["url"].startswith(f"{swift_server.s3_endpoint}/{bucket}/cache/site/photo/.d/")
        assert time.time() < body["expires"] <= time.time() + settings.url_lifetime
        with urllib.request.urlopen(body["url"], timeout=10) as fetched:
            derived = Image.open(io.BytesIO(fetched.read()))
        assert derived.format == "JPEG" and derived.size == (40, 30)
