"""Finding an original's stored forms: the same in a directory of a few images and of thousands."""
from __future__ import annotations

from image_repo.config.settings import Settings
from image_repo.storage import filesystem
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg, make_png


def test_forms_written_by_other_tools_are_found_and_replaced_in_a_large_directory(tmp_path, monkeypatch):
    """Among thousands of images a directory is asked name by name (FileStore.list_exact): an
    upper-case extension, the 2016 layout and a replace by another kind work as in a small one."""
    store = tmp_path / "originals"
    big = store / "big"
    big.mkdir(parents=True)
    (big / "x.JPG").write_bytes(make_jpeg(40, 30))  # copied in by another tool
    (big / "y+original(None).PNG").write_bytes(make_png(20, 10))  # left by the 2016 server
    for i in range(4000):
        (big / f"f{i:05d}.jpg").write_bytes(b"")
    read_whole: list[str] = []
    scan = filesystem.scan_dir

    def spy(dir_fd, key_prefix, name_prefix, marker=""):
        read_whole.append(key_prefix)
        return scan(dir_fd, key_prefix, name_prefix, marker)

    monkeypatch.setattr(filesystem, "scan_dir", spy)
    settings = Settings(data_dir=str(tmp_path / "data"), store="file://" + str(store))
    client = create_app(settings).test_client()
    assert client.get("/images/big/x?meta=true").get_json()["width"] == 40
    assert client.get("/images/big/x.jpg?xsize=20").status_code == 200
    assert client.get("/images/big/y?meta=true").get_json()["width"] == 20
    assert client.get("/images/big/nothing?xsize=20").status_code == 404
    assert client.put("/images/big/x", data=make_png(50, 50)).status_code == 200
    assert not (big / "x.JPG").exists() and (big / "x.png").exists()  # the older form went
    assert client.get("/images/big/x?meta=true").get_json()["width"] == 50
    assert client.delete("/images/big/y").status_code in (200, 204)
    assert not (big / "y+original(None).PNG").exists()
    assert "big/" not in read_whole  # the directory of 4,000 images was never read whole
