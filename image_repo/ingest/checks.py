"""What an import needs of a store beyond ObjectStore: streamed reads and writes, and a header-only probe.

A store that can stream (FileStore.iter_get/put_stream) or hand out a temporary URL
(Swift, S3) is read a chunk at a time, so an original larger than memory is hashed and
checked without ever being held whole. Other stores (memory://) fall back to get/put.
"""
from __future__ import annotations

import hashlib
import io
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from typing import IO

import requests
from PIL import Image, UnidentifiedImageError

from ..errors import PayloadTooLarge, StorageUnavailable, UnprocessableImage, UnsupportedImage
from ..imaging.decode import decoders
from ..imaging.formats import Kind, kind_for_pil_format
from ..storage.base import ObjectInfo, ObjectStore, SupportsTempUrl

CHUNK = 1 << 20

# Bytes per pixel of Pillow's raw modes, to check that an uncompressed image's data is all there.
_RAW_BYTES = {"L": 1, "P": 1, "RGB": 3, "RGBA": 4, "CMYK": 4, "I;16": 2, "I;16B": 2, "I": 4, "F": 4, "RGBX": 4}


def iter_object(store: ObjectStore, key: str) -> Iterator[bytes]:
    """The object's bytes in chunks: streamed where the store can, else whole."""
    iter_get = getattr(store, "iter_get", None)
    if callable(iter_get):
        yield from iter_get(key, CHUNK)
        return
    if isinstance(store, SupportsTempUrl):
        url, _ = store.temp_url(key, "GET", 600)
        try:
            with requests.get(url, stream=True, timeout=60) as r:
                r.raise_for_status()
                yield from r.iter_content(CHUNK)
        except requests.RequestException as e:
            raise StorageUnavailable(f"reading {key!r} from the store: {type(e).__name__}") from None
        return
    yield store.get(key)


def put_chunks(store: ObjectStore, key: str, chunks: Iterable[bytes], content_type: str | None,
               metadata: dict[str, str]) -> ObjectInfo:
    """put() from chunks: streamed where the store can, else joined in memory."""
    put_stream = getattr(store, "put_stream", None)
    if callable(put_stream):
        info: ObjectInfo = put_stream(key, chunks, content_type, metadata)
        return info
    return store.put(key, b"".join(chunks), content_type, metadata)


def spool(store: ObjectStore, key: str) -> tuple[IO[bytes], str, int]:
    """A local temporary copy of the object (deleted on close), its SHA-256 and size; hashed on the way."""
    digest, size = hashlib.sha256(), 0
    f = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    try:
        for chunk in iter_object(store, key):
            digest.update(chunk)
            size += len(chunk)
            f.write(chunk)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f, digest.hexdigest(), size


def probe_file(f: IO[bytes], *, max_pixels: int) -> Kind:
    """The kind of the image in ``f`` from its header, without decoding its pixels.

    For originals too large to decode here: refuses what is not an image we serve (415),
    more than ``max_pixels`` (413), or an image whose data the file cannot hold (422).
    """
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            im = Image.open(f, formats=decoders())
        except Image.DecompressionBombError as exc:
            raise PayloadTooLarge(f"image too large to decode safely: {exc}") from None
        except UnidentifiedImageError:
            raise UnsupportedImage("not an image of a supported kind") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise UnprocessableImage(f"corrupt image header: {exc}") from None
        with im:
            kind = kind_for_pil_format(im.format)
            if kind is None:
                raise UnsupportedImage(f"{im.format} images are not supported here")
            width, height = im.size
            if width * height > max_pixels:
                raise PayloadTooLarge(f"{width}x{height} is more than max_pixels ({max_pixels})")
            for tile in im.tile:
                codec, box, offset, args = tile[0], tile[1], tile[2], tile[3]
                need = offset
                if codec == "raw" and box is not None:
                    raw = args[0] if isinstance(args, tuple) and args else args
                    per_pixel = _RAW_BYTES.get(str(raw), 0)
                    need += (box[2] - box[0]) * (box[3] - box[1]) * per_pixel
                if need > size:
                    raise UnprocessableImage(f"truncated {kind.name} image: its data ends before byte {need}")
    return kind
