"""A pyramid in Swift read in chunks kept on the host: one GET for a row of neighbouring tiles,
none for a second worker of the host, the same bytes as tile-by-tile ranged reads."""
from __future__ import annotations

import copy

from image_repo.web.app import create_app

from .conftest import write_pattern

W, H = 4600, 1400


def swift_app(tmp_path, swift_settings, swift_store, data: str, **more):
    swift_settings = copy.deepcopy(swift_settings)  # each app its own
    swift_settings.data_dir = str(tmp_path / data)
    swift_settings.pyramid_builders = 0
    for key, value in more.items():
        setattr(swift_settings, key, value)
    return create_app(swift_settings, store=swift_store, cache_store=swift_store, start_builders=False)


def row_of_tiles(app, level: int = 0) -> list[bytes]:
    svc = app.extensions["image_repo"]
    source = svc.pyramids.source(svc.get_original("pano"))
    assert source is not None
    lv = source.info.levels[level]
    tiles = [source.stored_tile(level, column, 0) for column in range(lv.width // 512)]
    assert all(t is not None and t[:2] == b"\xff\xd8" for t in tiles)
    return tiles  # type: ignore[return-value]


def test_neighbouring_tiles_cost_one_get_and_a_second_worker_none(tmp_path, swift_settings, swift_store):
    one = swift_app(tmp_path, swift_settings, swift_store, "host-a")
    assert one.test_client().put("/images/pano", data=write_pattern(tmp_path / "p.jpg", W, H).read_bytes()).status_code == 201
    svc = one.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    chunks = svc.pyramids.chunks
    assert chunks.chunk_bytes == 2**20 and chunks.fetched == 0
    tiles = row_of_tiles(one)
    row_bytes = sum(len(t) for t in tiles)
    assert len(tiles) == 8 and 1 <= chunks.fetched <= row_bytes // 2**20 + 2  # not one GET per tile
    fetched = chunks.fetched
    assert row_of_tiles(one) == tiles and chunks.fetched == fetched  # read again: no GET

    # Another worker of the same host (same disk cache): the chunks are on disk, no GET at all.
    two = swift_app(tmp_path, swift_settings, swift_store, "host-a")
    assert row_of_tiles(two) == tiles and two.extensions["image_repo"].pyramids.chunks.fetched == 0

    # Another host, reading tile by tile (no chunks): the very same bytes.
    plain = swift_app(tmp_path, swift_settings, swift_store, "host-b", pyramid_read_chunk_bytes=0)
    assert row_of_tiles(plain) == tiles and plain.extensions["image_repo"].pyramids.chunks.fetched == 0


def test_a_replaced_original_reads_new_chunks(tmp_path, swift_settings, swift_store):
    app = swift_app(tmp_path, swift_settings, swift_store, "data")
    c = app.test_client()
    svc = app.extensions["image_repo"]
    assert c.put("/images/pano", data=write_pattern(tmp_path / "p.jpg", W, H).read_bytes()).status_code == 201
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    old = row_of_tiles(app)
    assert c.put("/images/pano", data=write_pattern(tmp_path / "q.jpg", W, H, Q=40).read_bytes()).status_code in (200, 201)
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    fetched = svc.pyramids.chunks.fetched
    new = row_of_tiles(app)
    assert new != old and svc.pyramids.chunks.fetched > fetched
