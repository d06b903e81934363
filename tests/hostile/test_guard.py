"""WholeBody: a body that ends short, stalls or breaks is an IncompleteBody (400), never a short read."""
from __future__ import annotations

import io

import pytest
from gunicorn.http.errors import ChunkMissingTerminator

from image_repo.api.guard import IncompleteBody, WholeBody


class Failing(io.BytesIO):
    def __init__(self, error: BaseException) -> None:
        super().__init__(b"abc")
        self.error = error

    def read(self, size: int | None = -1) -> bytes:
        raise self.error


def test_whole_body_reads_through():
    body = WholeBody(io.BytesIO(b"abcdef"), 6)
    assert body.read(4) + body.read(4) + body.read(4) == b"abcdef"
    assert WholeBody(io.BytesIO(b"abcdef"), 6).read() == b"abcdef"
    assert WholeBody(io.BytesIO(b"abc"), None).read() == b"abc"


@pytest.mark.parametrize("size", [-1, None, 2, 100])
def test_a_short_body_raises(size):
    body = WholeBody(io.BytesIO(b"abc"), 10)
    with pytest.raises(IncompleteBody) as info:
        while body.read(size):
            pass
    assert info.value.status == 400


@pytest.mark.parametrize(
    "error", [TimeoutError("timed out"), ConnectionResetError(), ChunkMissingTerminator(b"xx"), ValueError("closed")]
)
def test_stalls_and_broken_encodings_raise(error):
    with pytest.raises(IncompleteBody):
        WholeBody(Failing(error), 10).read(5)
