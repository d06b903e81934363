"""What we read of a file's header ourselves, before Pillow decodes anything.

- ICO: Pillow decodes an icon's largest image while it *opens* the file, before any size
  check of ours could run, and an icon's images are PNGs or bitmaps that may declare any
  size whatever the directory says. ``icon_pixels`` reads every image's declared size.
- JPEG 2000: a codestream holds the image at 1/2, 1/4 ... scale too, and Pillow decodes one
  of them when told (``reduce``), the way a JPEG's DCT scaling works. ``j2k_levels`` reads
  how many there are; ``j2k_reduce`` picks the one a target size needs.
"""
from __future__ import annotations

import struct

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def icon_pixels(source: bytes) -> int:
    """The pixels of the largest image an ICO file's images declare (0 if none can be read)."""
    if len(source) < 6:
        return 0
    count = struct.unpack_from("<H", source, 4)[0]
    largest = 0
    for i in range(count):
        entry = 6 + 16 * i
        if entry + 16 > len(source):
            break
        offset = struct.unpack_from("<I", source, entry + 12)[0]
        largest = max(largest, _icon_image_pixels(source, offset))
    return largest


def _icon_image_pixels(source: bytes, offset: int) -> int:
    if source[offset:offset + 8] == _PNG_MAGIC:
        if offset + 24 > len(source):
            return 0
        width, height = struct.unpack_from(">II", source, offset + 16)  # IHDR, first chunk
        return width * height
    if offset + 12 > len(source):
        return 0
    header_size = struct.unpack_from("<I", source, offset)[0]
    if header_size == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", source, offset + 4)
    else:
        width, height = struct.unpack_from("<ii", source, offset + 4)
    return abs(width) * (abs(height) // 2)  # an icon's bitmap is the image, then its mask


def _codestream_start(source: bytes) -> int | None:
    """Where the codestream begins: at 0 for a raw one, inside the ``jp2c`` box of a JP2 file."""
    if source.startswith(b"\xff\x4f"):
        return 0
    pos = 0
    while pos + 8 <= len(source):
        length, box = struct.unpack_from(">I4s", source, pos)
        header = 8
        if length == 1 and pos + 16 <= len(source):
            length, header = struct.unpack_from(">Q", source, pos + 8)[0], 16
        if box == b"jp2c":
            return pos + header
        if length < header:  # 0: the box runs to the end of the file; anything else is broken
            return None
        pos += length
    return None


def j2k_levels(source: bytes) -> int:
    """The fewest wavelet decomposition levels a codestream's main header gives any component
    (COD, and COC overrides); 0 when unknown, so no reduced decode is tried."""
    start = _codestream_start(source)
    if start is None or source[start:start + 2] != b"\xff\x4f":
        return 0
    pos, components, levels = start + 2, 0, []
    while pos + 4 <= len(source):
        marker, length = struct.unpack_from(">HH", source, pos)
        if marker == 0xFF51 and pos + 40 <= len(source):  # SIZ: the component count
            components = struct.unpack_from(">H", source, pos + 38)[0]
        elif marker == 0xFF52 and pos + 10 <= len(source):  # COD: Scod, SGcod (4), then levels
            levels.append(source[pos + 9])
        elif marker == 0xFF53:  # COC: component index (2 bytes past 256 components), Scoc, levels
            at = pos + 4 + (2 if components > 256 else 1) + 1
            if at < len(source):
                levels.append(source[at])
        elif marker in (0xFF90, 0xFF93, 0xFFD9) or marker >> 8 != 0xFF:  # the first tile: header over
            break
        pos += 2 + length
    return min(levels) if levels else 0


def j2k_reduce(size: tuple[int, int], at_least: tuple[int, int], levels: int) -> int:
    """The most halvings (up to ``levels``) that keep ``size`` at least ``at_least``.

    Only those where Pillow's reduced size (rounded half up) is openjpeg's (rounded up):
    where they differ, the decode fails.
    """
    best = 0
    for r in range(1, levels + 1):
        fits = all((side >> r) >= want for side, want in zip(size, at_least))
        agree = all((side + (1 << r >> 1)) >> r == -(-side >> r) for side in size)
        if not fits:
            break
        if agree:
            best = r
    return best
