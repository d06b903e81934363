"""A zip archive written as it is read: members go out as soon as they are made."""
from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, cast


class _Sink:
    """A write-only, unseekable file whose writes are collected for the next yield."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def stream_zip(members: Iterable[tuple[str, Callable[[], bytes]]], on_error: Callable[[str, Exception], str]) -> Iterator[bytes]:
    """Yield a zip of ``(member name, make bytes)``; a member that fails becomes a line in ERRORS.txt.

    Images are already compressed, so members are stored, not deflated.
    """
    sink = _Sink()
    errors: list[str] = []
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(cast(IO[bytes], sink), mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, make in members:
            try:
                data = make()
            except Exception as exc:  # noqa: BLE001 - one bad original must not break the whole answer
                errors.append(on_error(name, exc))
                continue
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
            yield sink.take()
        if errors:
            archive.writestr(zipfile.ZipInfo("ERRORS.txt", date_time=stamp), "\n".join(errors) + "\n")
    yield sink.take()
