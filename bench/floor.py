"""The decode floor: what Pillow needs just to decode the original at the smallest useful scale.

For a JPEG -> 256 px thumbnail the decoder can use DCT scaling (``draft``) down to 1/8, and
what is left is the entropy decode of every coefficient in the file: no server can derive
faster than this per core (shared/reference/perf.md section 3). The resize and the encode
of a 256 px result come on top, so a server at 0.90 of this floor is close to the metal.
"""
from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass, field

from PIL import Image


@dataclass
class Floor:
    file: str
    cpu_ms: float  # median CPU time of one decode
    wall_ms: float  # median wall time of one decode
    decodes: int
    decoded_size: tuple[int, int]
    cpu_samples: list[float] = field(default_factory=list, repr=False)
    wall_samples: list[float] = field(default_factory=list, repr=False)

    @property
    def per_core_rps(self) -> float:
        return 1000.0 / self.cpu_ms


def fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The size a fit-in ``box`` x ``box`` (aspect kept, never upscaled) gives."""
    w, h = size
    scale = min(box / w, box / h, 1.0)
    return max(1, round(w * scale)), max(1, round(h * scale))


def decode_floor(data: bytes, label: str, box: int = 256, duration: float = 3.0, max_decodes: int = 400) -> Floor:
    """Median cost of ``open + draft(fit size) + load`` of ``data``, single-threaded, after a warm-up.

    ``draft`` gets the *fitted* target (e.g. 256x192), not the square box: Pillow picks the
    DCT scale that keeps both sides >= what it is given (perf.md, "Implications").
    """
    with Image.open(io.BytesIO(data)) as probe:
        target = fit(probe.size, box)
    cpu: list[float] = []
    wall: list[float] = []
    size = (0, 0)
    deadline = time.monotonic() + duration
    for i in range(max_decodes + 1):
        w0, c0 = time.perf_counter(), time.thread_time()
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", target)  # no-op for PNG, which has no reduced decode
            im.load()
            size = im.size
        c1, w1 = time.thread_time(), time.perf_counter()
        if i:  # the first one warms caches and imports
            cpu.append((c1 - c0) * 1000)
            wall.append((w1 - w0) * 1000)
        if time.monotonic() > deadline and len(cpu) >= 5:
            break
    return Floor(label, statistics.median(cpu), statistics.median(wall), len(cpu), size, cpu, wall)


def merge(floors: list[Floor]) -> Floor:
    """Floors measured in several slices (interleaved with load runs) as one."""
    cpu = [v for f in floors for v in f.cpu_samples]
    wall = [v for f in floors for v in f.wall_samples]
    return Floor(floors[0].file, statistics.median(cpu), statistics.median(wall), len(cpu), floors[0].decoded_size, cpu, wall)
