"""QOI through the format's reference C decoder (the ``qoi`` package) instead of Pillow's own.

Pillow's QOI decoder is written in Python: 80 s of a worker's CPU for a 12 MP image (4 s
for 1 MP), so one upload could hold a worker for minutes. The reference decoder takes 0.2 s.
Pillow still reads the header (so the size is checked before anything is decoded); only the
pixels come from the C decoder. Without the package QOI is not among the decoders (415).
"""
from __future__ import annotations

import importlib
from typing import Any

from PIL import Image, ImageFile


class QoiDecoder(ImageFile.PyDecoder):
    """Decodes a whole QOI file in one call of the reference decoder."""

    _pulls_fd = True

    def decode(self, buffer: Any) -> tuple[int, int]:
        assert self.fd is not None
        self.fd.seek(0)
        data = self.fd.read()
        try:
            pixels = importlib.import_module("qoi").decode(data)
        except (RuntimeError, ValueError) as exc:
            raise OSError(f"broken QOI data: {exc}") from None
        channels = 4 if self.mode == "RGBA" else 3
        if pixels.shape != (self.state.ysize, self.state.xsize, channels):
            raise OSError(f"QOI data of {pixels.shape} pixels where the header says {self.state.xsize}x{self.state.ysize}")
        self.set_as_raw(pixels.tobytes(), self.mode)
        return -1, 0


def install() -> bool:
    """Use the reference decoder for QOI; False when the ``qoi`` package is missing."""
    try:
        importlib.import_module("qoi")
    except ImportError:
        return False
    Image.register_decoder("qoi", QoiDecoder)
    return True
