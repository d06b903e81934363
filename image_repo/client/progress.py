"""Progress of an ingest: a tqdm bar (files, bytes, rate, ETA) on a terminal, log lines otherwise."""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

log = logging.getLogger("image_repo.client")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Counts files and bytes; skipped files leave the totals so rate and ETA count only real work."""

    def __init__(self, enabled: bool, every: float = 10.0) -> None:
        self.enabled, self.every = enabled, every
        self._bar: Any = None
        self._lock = threading.Lock()
        self.files = self.total_files = 0
        self.sent = self.total_bytes = 0
        self._started = self._last = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        self.total_files, self.total_bytes = files, total_bytes
        self._started = self._last = time.monotonic()
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True,
                             desc="ingest", postfix={"files": f"0/{files}"})

    def advance(self, size: int, *, sent: bool) -> None:
        with self._lock:
            self.files += 1
            if sent:
                self.sent += size
            else:
                self.total_bytes -= size
            if self._bar is not None:
                if not sent:
                    self._bar.total = self.total_bytes
                    self._bar.refresh()
                else:
                    self._bar.update(size)
                self._bar.set_postfix(files=f"{self.files}/{self.total_files}", refresh=False)
            elif time.monotonic() - self._last >= self.every:
                self._last = time.monotonic()
                log.info("%s", self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self.sent / elapsed
        left = (self.total_bytes - self.sent) / rate if rate > 0 else float("nan")
        eta = f"{int(left // 60)}m{int(left % 60):02d}s" if not math.isnan(left) else "?"
        return (f"{self.files}/{self.total_files} files, {_size(self.sent)}/{_size(self.total_bytes)}, "
                f"{_size(rate)}/s, ETA {eta}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
