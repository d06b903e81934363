"""Renderings of multichannel images: which channels, tinted how, stretched between which values.

A rendering is an ordered list of channel windows, each an index, a colour ``RRGGBB``, a
``low`` and a ``high`` sample value and an optional gamma. The composite is additive, as
Minerva's: per channel ``t = clip((v - low) / (high - low), 0, 1)``, raised to the
channel's gamma (1 when not given: then this step does nothing), times the colour; the
channels summed, clipped to 0..1, then 8 bits. The gamma belongs to its channel (one
channel may be stretched, another not), so it is applied to that channel's own window
before the sum; with every gamma 1, this is the sum-clip-8-bits formula exactly.

Pure: numpy on the stored (16-bit) samples, no PIL modes. Its text form
``0:0000FF:500:4000,3:FF0000:200:9000`` (``:gamma`` may follow a high) is what the
``channels=`` parameter and the IIIF quality ``channels:...`` carry; the canonical text
(and its hash, ``key()``) names every derivative made with it.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidRequest

MAX_CHANNELS = 16
"""Most channels one rendering composites (each costs a ranged read per tile)."""
MAX_VALUE = 4_294_967_295.0
GAMMA_RANGE = (0.05, 20.0)
DEFAULT_CHANNELS = 4
"""The default rendering shows up to this many of the first channels."""
PALETTE = ("0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00")
"""Distinguishable when added: blue (usually the nuclear stain, channel 0), green, red, magenta."""
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"""A saved rendering's name: what an IIIF quality may be."""
_HEX = re.compile(r"[0-9A-Fa-f]{6}")
_NUMBER = re.compile(r"\d{1,10}(?:\.\d{1,6})?")


@dataclass(frozen=True)
class Window:
    """One channel of a rendering."""

    index: int
    colour: str
    """``RRGGBB``, upper case."""
    low: float
    high: float
    gamma: float = 1.0

    def text(self) -> str:
        parts = [str(self.index), self.colour, _number(self.low), _number(self.high)]
        if self.gamma != 1.0:
            parts.append(_number(self.gamma))
        return ":".join(parts)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "colour": self.colour, "low": self.low, "high": self.high}
        if self.gamma != 1.0:
            out["gamma"] = self.gamma
        return out

    @property
    def rgb(self) -> tuple[float, float, float]:
        value = int(self.colour, 16)
        return (value >> 16 & 255) / 255.0, (value >> 8 & 255) / 255.0, (value & 255) / 255.0


@dataclass(frozen=True)
class Rendering:
    """An ordered list of channel windows, composited additively."""

    channels: tuple[Window, ...]

    def text(self) -> str:
        """The canonical inline form, e.g. ``0:0000FF:500:4000,3:FF0000:200:9000``."""
        return ",".join(w.text() for w in self.channels)

    def key(self) -> str:
        """What derived keys and ETags carry: a hash of the canonical form (two spellings, one key)."""
        return "r" + hashlib.sha256(self.text().encode()).hexdigest()[:20]

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(w.index for w in self.channels)

    def as_json(self) -> dict[str, Any]:
        return {"channels": [w.as_json() for w in self.channels]}

    def check(self, n_channels: int, part: str = "channels") -> None:
        """400 naming the first channel index this image does not have."""
        for w in self.channels:
            if not 0 <= w.index < n_channels:
                raise InvalidRequest(f"{part}: channel index {w.index} is out of range; "
                                     f"the image has channels 0..{n_channels - 1}")


def _number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def window(index: int, colour: str, low: float, high: float, gamma: float = 1.0, *, part: str = "channels",
           which: str = "") -> Window:
    """A validated window (400s name ``part`` and the channel)."""
    at = f"{part}: {which or f'channel {index}'}"
    if not _HEX.fullmatch(colour):
        raise InvalidRequest(f"{at}: colour {colour!r} is not 6 hex digits (RRGGBB)")
    for label, v in (("low", low), ("high", high)):
        if not (math.isfinite(v) and 0 <= v <= MAX_VALUE):
            raise InvalidRequest(f"{at}: {label} {v!r} is not a sample value (0 to {MAX_VALUE:.0f})")
    if not high > low:
        raise InvalidRequest(f"{at}: high {_number(high)} is not above low {_number(low)}")
    if not (math.isfinite(gamma) and GAMMA_RANGE[0] <= gamma <= GAMMA_RANGE[1]):
        raise InvalidRequest(f"{at}: gamma {gamma!r} is not a number from {GAMMA_RANGE[0]} to {GAMMA_RANGE[1]:g}")
    return Window(index, colour.upper(), float(low), float(high), float(gamma))


def _checked(windows: Sequence[Window], part: str) -> Rendering:
    if not windows:
        raise InvalidRequest(f"{part}: a rendering needs at least one channel")
    if len(windows) > MAX_CHANNELS:
        raise InvalidRequest(f"{part}: {len(windows)} channels; a rendering has at most {MAX_CHANNELS}")
    seen: set[int] = set()
    for w in windows:
        if w.index in seen:
            raise InvalidRequest(f"{part}: channel {w.index} is given twice")
        seen.add(w.index)
    return Rendering(tuple(windows))


def parse_inline(text: str, part: str = "channels") -> Rendering:
    """``index:RRGGBB:low:high[:gamma],...`` checked for syntax and sense (not yet against an image)."""
    entries = text.split(",")
    if len(entries) > MAX_CHANNELS:
        raise InvalidRequest(f"{part}: {len(entries)} channels; a rendering has at most {MAX_CHANNELS}")
    windows = []
    for n, entry in enumerate(entries, 1):
        fields = entry.split(":")
        which = f"entry {n} ({entry[:40]!r})"
        if len(fields) not in (4, 5):
            raise InvalidRequest(f"{part}: {which} is not index:RRGGBB:low:high[:gamma]")
        index, colour, low, high = fields[:4]
        if not (index.isascii() and index.isdigit() and len(index) <= 4):
            raise InvalidRequest(f"{part}: {which}: index {index!r} is not a channel number")
        for label, v in (("low", low), ("high", high)):
            if not _NUMBER.fullmatch(v):
                raise InvalidRequest(f"{part}: {which}: {label} {v!r} is not a number (0 or more)")
        gamma = fields[4] if len(fields) == 5 else "1"
        if not _NUMBER.fullmatch(gamma):
            raise InvalidRequest(f"{part}: {which}: gamma {gamma!r} is not a number")
        windows.append(window(int(index), colour, float(low), float(high), float(gamma), part=part, which=which))
    return _checked(windows, part)


def from_json(doc: Any, part: str = "body") -> Rendering:
    """A rendering from its JSON: ``{"channels": [{"index", "colour", "low", "high", "gamma"?}, ...]}``."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("channels"), list):
        raise InvalidRequest(f'{part}: expected {{"channels": [{{"index", "colour", "low", "high", "gamma"}}...]}}')
    unknown = set(doc) - {"channels", "name"}
    if unknown:
        raise InvalidRequest(f"{part}: unknown field {sorted(unknown)[0]!r}")
    windows = []
    for n, item in enumerate(doc["channels"]):
        which = f"channels[{n}]"
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"{part}: {which} is not an object")
        extra = set(item) - {"index", "colour", "color", "low", "high", "gamma"}
        if extra:
            raise InvalidRequest(f"{part}: {which}: unknown field {sorted(extra)[0]!r}")
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 10_000:
            raise InvalidRequest(f"{part}: {which}: index must be a channel number")
        colour = item.get("colour", item.get("color"))
        if not isinstance(colour, str):
            raise InvalidRequest(f"{part}: {which}: colour must be a string of 6 hex digits (RRGGBB)")
        values = []
        for label in ("low", "high", "gamma"):
            v = item.get(label, 1.0 if label == "gamma" else None)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidRequest(f"{part}: {which}: {label} must be a number")
            values.append(float(v))
        windows.append(window(index, colour, *values, part=part, which=which))
    return _checked(windows, part)


def default_rendering(channels: Sequence[Any]) -> Rendering:
    """The first channels (up to DEFAULT_CHANNELS), each in its stored colour or the palette's,
    windowed by its own 0.1 and 99.9 percentiles (``Channel``s of pyramids/source.py)."""
    shown = list(channels[:DEFAULT_CHANNELS])
    stored = [c.colour.upper() if c.colour else None for c in shown]
    # Stored colours win, unless they tell the channels apart no better than nothing (all alike).
    use_stored = len(shown) == 1 or len({s for s in stored if s}) > 1 or (len(shown) > 1 and sum(map(bool, stored)) == 1)
    kept = [s if use_stored else None for s in stored]
    # The others from the palette, skipping the colours kept: no two channels look alike.
    free = iter([p for p in PALETTE if p not in kept] + [p for p in PALETTE if p in kept])
    windows = []
    for i, c in enumerate(shown):
        colour = kept[i] or ("FFFFFF" if len(shown) == 1 else next(free))
        top = 255.0 if c.dtype == "uint8" else 65535.0
        stats = c.stats or {}
        low = float(math.floor(stats.get("p0.1", 0.0)))  # whole sample values: a short canonical text
        high = float(math.ceil(stats.get("p99.9", top)))
        if not high > low:
            high = low + 1.0
        windows.append(Window(i, colour, low, high))
    return Rendering(tuple(windows))


def composite(planes: np.ndarray, rendering: Rendering) -> np.ndarray:
    """``planes`` (height x width x channels, in ``rendering``'s order) as 8-bit RGB, additively.

    float32 throughout, one band of the sum contiguous at a time (a strided height x width x 3
    sum costs ~15% more); the 16-bit samples are scaled straight into the window, no PIL mode."""
    if planes.ndim == 2:
        planes = planes[:, :, np.newaxis]
    height, width = planes.shape[:2]
    acc = np.zeros((3, height, width), np.float32)
    t = np.empty((height, width), np.float32)
    for k, w in enumerate(rendering.channels):
        scale = 1.0 / (w.high - w.low)
        np.multiply(planes[:, :, k], np.float32(scale), out=t, dtype=np.float32, casting="unsafe")
        t -= np.float32(w.low * scale)
        np.clip(t, 0.0, 1.0, out=t)
        if w.gamma != 1.0:
            np.power(t, np.float32(w.gamma), out=t)
        for band, weight in enumerate(w.rgb):
            if weight == 1.0:
                acc[band] += t
            elif weight:
                acc[band] += t * np.float32(weight)
    np.clip(acc, 0.0, 1.0, out=acc)
    acc *= np.float32(255.0)
    acc += np.float32(0.5)
    return np.ascontiguousarray(acc.astype(np.uint8).transpose(1, 2, 0))
