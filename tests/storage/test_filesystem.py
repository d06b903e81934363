"""FileStore specifics: confinement to the root, atomic writes, sidecars, foreign files."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from image_repo.errors import Conflict, InvalidRequest, NotFound, StorageUnavailable
from image_repo.storage.filesystem import FileStore


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def fs(root) -> FileStore:
    return FileStore(str(root), fsync=False)


@pytest.fixture
def outside(tmp_path):
    o = tmp_path / "outside"
    o.mkdir()
    (o / "secret.jpg").write_bytes(b"secret")
    return o


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("key", [
    "../x.jpg", "/etc/passwd", "a/../../x.jpg", "a/./b.jpg", "a//b.jpg", "a\\..\\x.jpg", "a/b/", "",
    "a\0b.jpg", "..", ".", "a/.b.jpg.meta.json", "a/.b.jpg.tmp-0123456789ab",
])
def test_unsafe_keys_refused(fs, key, tmp_path):
    with pytest.raises(InvalidRequest):
        fs.put(key, b"x")
    with pytest.raises(InvalidRequest):
        fs.get(key)
    with pytest.raises(InvalidRequest):
        fs.stat(key)
    with pytest.raises(InvalidRequest):
        fs.delete(key)
    assert not (tmp_path / "x.jpg").exists()


def test_traversal_prefix_lists_nothing(fs):
    fs.put("a.jpg", b"1")
    assert list(fs.list("../")) == []
    assert list(fs.list("a/../")) == []


def test_symlinked_dir_inside_root_not_followed(fs, root, outside):
    os.symlink(outside, root / "link")
    assert fs.stat("link/secret.jpg") is None
    with pytest.raises(NotFound):
        fs.get("link/secret.jpg")
    with pytest.raises(NotFound):
        fs.delete("link/secret.jpg")
    with pytest.raises(Conflict):
        fs.put("link/new.jpg", b"evil")
    assert sorted(os.listdir(outside)) == ["secret.jpg"]
    assert (outside / "secret.jpg").read_bytes() == b"secret"
    assert [i.key for i in fs.list()] == []


def test_symlinked_file_inside_root_not_followed(fs, root, outside):
    os.symlink(outside / "secret.jpg", root / "s.jpg")
    assert fs.stat("s.jpg") is None
    with pytest.raises(NotFound):
        fs.get("s.jpg")
    fs.put("s.jpg", b"mine")  # replaces the link itself, never writes through it
    assert (outside / "secret.jpg").read_bytes() == b"secret"
    assert fs.get("s.jpg") == b"mine"


def test_sidecar_layout_and_never_listed(fs, root):
    fs.put("site1/photo.jpg", b"data", content_type="image/jpeg", metadata={"k": "v"})
    assert (root / "site1" / "photo.jpg").read_bytes() == b"data"
    side = json.loads((root / "site1" / ".photo.jpg.meta.json").read_bytes())
    assert side["sha256"] == sha(b"data") and side["content_type"] == "image/jpeg" and side["metadata"] == {"k": "v"}
    assert sorted(os.listdir(root / "site1")) == [".photo.jpg.meta.json", "photo.jpg"]
    assert [i.key for i in fs.list()] == ["site1/photo.jpg"]


def test_leftover_temp_file_invisible(fs, root):
    fs.put("a/b.jpg", b"whole")
    (root / "a" / ".b.jpg.tmp-0123456789ab").write_bytes(b"par")  # a writer killed mid-write
    (root / "a" / ".c.jpg.tmp-0123456789ab").write_bytes(b"par")
    assert [i.key for i in fs.list()] == ["a/b.jpg"]
    assert fs.get("a/b.jpg") == b"whole"
    assert fs.stat("a/c.jpg") is None


def test_foreign_files_served_with_computed_sha(fs, root):
    (root / "dir").mkdir()
    (root / "dir" / "img.png").write_bytes(b"foreign png")
    (root / "top.JPG").write_bytes(b"foreign jpg")
    info = fs.stat("dir/img.png")
    assert info is not None
    assert (info.sha256, info.size, info.content_type, dict(info.metadata)) == (
        sha(b"foreign png"), 11, "image/png", {})
    data, info2 = fs.get_with_info("top.JPG")
    assert data == b"foreign jpg" and info2.sha256 == sha(data) and info2.content_type == "image/jpeg"
    assert (root / "dir" / ".img.png.meta.json").exists()  # cached for the next process
    assert [i.key for i in fs.list()] == ["dir/img.png", "top.JPG"]


def test_a_big_foreign_file_is_hashed_without_reading_it_into_memory(fs, root):
    import tracemalloc

    data = os.urandom(1 << 20) * 48  # 48 MiB: an original placed by another tool may be gigabytes
    (root / "huge.tif").write_bytes(data)
    tracemalloc.start()
    try:
        info = fs.stat("huge.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info is not None and info.sha256 == sha(data) and info.size == len(data)
    assert peak < 8 << 20  # streamed a MiB at a time, never the whole file


def test_foreign_file_in_read_only_tree(fs, root):
    (root / "ro").mkdir()
    (root / "ro" / "x.gif").write_bytes(b"gif")
    os.chmod(root / "ro", 0o555)
    try:
        info = fs.stat("ro/x.gif")
        assert info is not None and info.sha256 == sha(b"gif")
    finally:
        os.chmod(root / "ro", 0o755)


def test_file_replaced_by_another_tool_gets_fresh_sha(fs, root):
    fs.put("p.jpg", b"ours", metadata={"a": "b"})
    assert fs.stat("p.jpg").sha256 == sha(b"ours")  # type: ignore[union-attr]
    (root / "p.jpg").write_bytes(b"theirs, longer")  # in place: same inode, another size: sidecar now stale
    info = fs.stat("p.jpg")
    assert info is not None and info.sha256 == sha(b"theirs, longer") and info.size == 14
    data, info = fs.get_with_info("p.jpg")
    assert info.sha256 == sha(data)


def test_same_size_rewrite_detected(fs, root):
    fs.put("q.jpg", b"aaaa")
    fs.stat("q.jpg")
    tmp = root / "other"
    tmp.write_bytes(b"bbbb")
    os.replace(tmp, root / "q.jpg")  # new inode, same size
    assert fs.stat("q.jpg").sha256 == sha(b"bbbb")  # type: ignore[union-attr]


def test_delete_prunes_empty_parents(fs, root):
    fs.put("a/b/c/d.jpg", b"1")
    fs.put("a/keep.jpg", b"2")
    fs.delete("a/b/c/d.jpg")
    assert not (root / "a" / "b").exists()
    assert sorted(os.listdir(root / "a")) == [".keep.jpg.meta.json", "keep.jpg"]
    fs.delete("a/keep.jpg")
    assert os.listdir(root) == []
    assert root.exists()


def test_image_file_and_its_directory_coexist(fs):
    fs.put("a.jpg", b"orig")
    fs.put("a/.d/sha/thumb.jpg", b"thumb")
    fs.put("a/b.jpg", b"other")
    assert [i.key for i in fs.list("a")] == ["a.jpg", "a/.d/sha/thumb.jpg", "a/b.jpg"]
    assert [i.key for i in fs.list("a/.d/")] == ["a/.d/sha/thumb.jpg"]


def test_key_under_a_file_is_a_conflict(fs):
    fs.put("f", b"1")
    with pytest.raises(Conflict):
        fs.put("f/g.jpg", b"2")
    fs.put("dir/x.jpg", b"1")
    with pytest.raises(Conflict):
        fs.put("dir", b"2")


def test_unwritable_root_is_storage_unavailable(fs, root):
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions")
    os.chmod(root, 0o555)
    try:
        with pytest.raises(StorageUnavailable) as e:
            fs.put("new.jpg", b"x")
        assert "new.jpg" in e.value.message
    finally:
        os.chmod(root, 0o755)


def test_from_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert FileStore.from_url(f"file://{tmp_path}/a").root == str(tmp_path / "a")
    assert FileStore.from_url("file:rel/b").root == str(tmp_path / "rel" / "b")
    assert FileStore.from_url("bare/c").root == str(tmp_path / "bare" / "c")
    assert FileStore.from_url(f"{tmp_path}/d").url == f"file://{tmp_path}/d"


def test_list_many_files_fast(fs, root, monkeypatch):
    """Fast by construction, not by a clock: a listing reads directory entries and opens no file
    (no sidecar, no data), so 5,000 objects in 50 directories cost 51 opens, not 5,000 or more."""
    n = 5000
    for i in range(50):
        d = root / f"d{i:02d}"
        d.mkdir()
        for j in range(n // 50):
            (d / f"img{j:04d}.jpg").write_bytes(b"")
    opened: list[str] = []
    real_open = os.open

    def counting_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    listed = list(fs.list())
    monkeypatch.undo()
    assert len(listed) == n
    assert [i.key for i in listed] == sorted(i.key for i in listed)
    assert len(opened) <= 51 and not [p for p in opened if p.endswith((".jpg", ".json"))], opened[:5]
    assert len(list(fs.list("d07/img00"))) == 100


def _put_many(root: str, seed: int) -> None:
    fs = FileStore(root, fsync=False)
    for i in range(40):
        fs.put("shared/k.jpg", bytes([seed]) * (100_000 + seed), metadata={"writer": str(seed)})


def test_processes_writing_one_key_never_tear(tmp_path):
    import multiprocessing

    root = str(tmp_path / "mp")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_put_many, args=(root, s)) for s in range(1, 4)]
    for p in procs:
        p.start()
    fs = FileStore(root, fsync=False)
    reads = 0
    while any(p.is_alive() for p in procs):
        try:
            data, info = fs.get_with_info("shared/k.jpg")
        except NotFound:
            continue
        assert len(set(data)) == 1 and len(data) == 100_000 + data[0]
        assert info.sha256 == sha(data)
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert [i.key for i in fs.list()] == ["shared/k.jpg"]
    assert sorted(os.listdir(tmp_path / "mp" / "shared")) == [".k.jpg.meta.json", "k.jpg"]


def test_put_survives_concurrent_pruning(fs):
    import threading

    errors: list[BaseException] = []

    def churn(name: str) -> None:
        try:
            for _ in range(200):
                fs.put(f"deep/dir/{name}.jpg", b"x")
                fs.delete(f"deep/dir/{name}.jpg")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=churn, args=(str(n),)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    assert list(fs.list()) == []


@pytest.mark.parametrize("write", ["put", "create", "put_stream"])
def test_a_delete_never_prunes_the_directory_a_writer_has_entered(fs, root, monkeypatch, write):
    """The interleaving behind the churn above, forced: a writer has walked into d/ and not yet
    put its temp file there when the last object of d/ is deleted. The delete must not remove
    d/ under the writer (which then failed with ENOENT); the next delete, uncontended, prunes."""
    from image_repo.storage import fileio, filesystem

    fs.put("d/a.jpg", b"a")
    deleted: list[str] = []
    real_write_new, real_open = fileio.write_new, os.open

    def delete_first() -> None:
        if not deleted:
            deleted.append("d/a.jpg")
            fs.delete("d/a.jpg")

    def write_new(dir_fd, name, data, fsync):  # type: ignore[no-untyped-def]
        delete_first()
        return real_write_new(dir_fd, name, data, fsync)

    def opening(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & os.O_CREAT and str(path).startswith(".b.jpg.tmp-"):
            delete_first()
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(filesystem, "write_new", write_new)
    monkeypatch.setattr(fileio, "write_new", write_new)  # create()'s link_new
    monkeypatch.setattr(os, "open", opening)  # put_stream() opens its temp file itself
    if write == "put":
        fs.put("d/b.jpg", b"b")
    elif write == "create":
        assert fs.create("d/b.jpg", b"b")
    else:
        fs.put_stream("d/b.jpg", iter([b"b"]))
    monkeypatch.undo()
    assert deleted == ["d/a.jpg"], "the delete ran inside the write"
    assert fs.get("d/b.jpg") == b"b" and [i.key for i in fs.list()] == ["d/b.jpg"]
    fs.delete("d/b.jpg")
    assert not (root / "d").exists()


@pytest.mark.parametrize("factory", ["file", "memory"])
def test_stat_first_gives_the_first_key_that_exists_in_the_order_given(tmp_path, factory):
    from image_repo.storage.memory import MemoryStore

    store = FileStore(str(tmp_path / "s")) if factory == "file" else MemoryStore()
    store.put("d/p.png", b"png bytes", "image/png")
    store.put("d/p.jpg", b"jpg bytes", "image/jpeg")
    store.put("e/q.gif", b"gif bytes", "image/gif")
    assert store.stat_first(["d/p.webp", "d/p.jpg", "d/p.png"]).key == "d/p.jpg"
    assert store.stat_first(["d/p.png", "d/p.jpg"]).key == "d/p.png"
    got = store.stat_first(["x/none.jpg", "d/p.bmp", "e/q.gif"])  # across directories, missing ones skipped
    assert (got.key, got.size, got.sha256) == ("e/q.gif", 9, store.stat("e/q.gif").sha256)
    assert store.stat_first(["d/none.jpg", "nodir/p.jpg"]) is None
    assert store.stat_first([]) is None


def test_stat_first_skips_keys_the_store_cannot_hold_and_directories(tmp_path):
    store = FileStore(str(tmp_path / "s"))
    store.put("d/p/x.jpg", b"inside")
    store.put("d/q.jpg", b"q")
    # "d/p" is a directory, "../etc" and ".d.meta.json" shapes are refused as keys: none is an object.
    assert store.stat_first(["d/p", "../etc/passwd", "d/.q.jpg.meta.json", "d/q.jpg"]).key == "d/q.jpg"


def test_what_a_store_remembers_of_its_sidecars_is_bounded(fs):
    """A worker keeps the parsed sidecars of its hot set only: reading more objects than that
    never grows it, and what it forgot is read again, the same."""
    from image_repo.storage import sidecars

    n = sidecars.REMEMBERED + 50
    for i in range(n):
        fs.put(f"many/{i}", b"x%d" % i, "image/jpeg", {"n": str(i)})
    fs._sidecars.clear()
    infos = [fs.stat(f"many/{i}") for i in range(n)]
    assert len(fs._sidecars._sidecars) == sidecars.REMEMBERED
    assert fs.stat("many/0") == infos[0] and dict(infos[0].metadata) == {"n": "0"}  # forgotten: read again


def _forms_dir(root, fillers: int = 0) -> None:
    d = root / "d"
    d.mkdir()
    for name in ("a.jpg", "a.PNG", "a.Jpeg", "a.jpg.bak", "a.x.jpg", "ab.jpg", "b.jpg"):
        (d / name).write_bytes(name.encode())
    (d / ".a.jpg.meta.json").write_bytes(b"{}")  # a sidecar: never an object
    (d / "a.tif").mkdir()  # a directory named like a form: not one
    (d / "a.tif" / "x.jpg").write_bytes(b"x")
    for i in range(fillers):
        (d / f"filler-{i:05d}.jpg").write_bytes(b"")


def test_list_exact_finds_the_same_names_by_reading_a_small_directory_or_asking_for_each(fs, root, monkeypatch):
    """A directory larger than PROBE_PAST_BYTES is asked name by name, not read whole: the answer is the same."""
    from image_repo.storage import filesystem

    _forms_dir(root)
    endings = {".jpg", ".JPG", ".png", ".PNG", ".jpeg", ".Jpeg", ".tif"}
    listed = [i.key for i in fs.list("d/a.") if i.key[len("d/a"):] in endings]
    assert listed == ["d/a.Jpeg", "d/a.PNG", "d/a.jpg"]
    read = fs.list_exact("d/a", endings)
    monkeypatch.setattr(filesystem, "PROBE_PAST_BYTES", -1)
    asked = fs.list_exact("d/a", endings)
    assert [i.key for i in read] == [i.key for i in asked] == listed
    assert [(i.size, i.modified) for i in read] == [(i.size, i.modified) for i in asked]
    assert fs.list_exact("nothing/a", endings) == [] and fs.list_exact("d/zz", endings) == []


def test_list_exact_does_not_read_a_large_directory(fs, root, monkeypatch):
    from image_repo.storage import filesystem

    _forms_dir(root, fillers=4000)  # past 64 KiB of directory on ext4 and on tmpfs alike
    assert os.stat(root / "d").st_size > filesystem.PROBE_PAST_BYTES

    def no_scan(*args, **kwargs):
        raise AssertionError("read the whole directory")

    monkeypatch.setattr(filesystem, "scan_dir", no_scan)
    assert [i.key for i in fs.list_exact("d/a", {".jpg", ".PNG", ".gif"})] == ["d/a.PNG", "d/a.jpg"]
