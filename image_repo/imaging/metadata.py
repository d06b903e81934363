"""read_metadata(): the facts a photographer expects about an original, JSON-ready.

Reads the header and EXIF only (no pixel decoding). Odd or broken EXIF values are
skipped, never raised. GPS position is personal data: it is returned only when asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PIL import Image

from .decode import DECODE_ERRORS, frame_count, open_image, orientation

_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825

Json = dict[str, Any]
_VALUE_ERRORS: tuple[type[BaseException], ...] = (*DECODE_ERRORS, ArithmeticError, AttributeError)


def read_metadata(source: bytes, *, include_gps: bool) -> Json:
    """Size, format, mode, frames, orientation and selected EXIF; ``gps`` only if ``include_gps``."""
    with open_image(source, max_pixels=None) as (im, kind):
        turn = orientation(im)
        out: Json = {
            "format": kind.name,
            "content_type": kind.content_type,
            "mode": im.mode,
            "width": im.width,
            "height": im.height,
            "orientation": turn,
            "display_width": im.height if turn >= 5 else im.width,
            "display_height": im.width if turn >= 5 else im.height,
            "frames": _frames(im),
        }
        try:
            exif = im.getexif()
            main = dict(exif)
            sub = dict(exif.get_ifd(_IFD_EXIF))
            gps = dict(exif.get_ifd(_IFD_GPS)) if include_gps else {}
        except DECODE_ERRORS:
            return out
    fields: list[tuple[str, dict[int, Any], int, Callable[[Any], Any]]] = [
        ("make", main, 0x010F, _text),
        ("model", main, 0x0110, _text),
        ("lens", sub, 0xA434, _text),
        ("exposure_time", sub, 0x829A, _exposure),
        ("f_number", sub, 0x829D, _decimal),
        ("iso", sub, 0x8827, _integer),
        ("focal_length", sub, 0x920A, _decimal),
        ("datetime_original", sub, 0x9003, _datetime),
        ("software", main, 0x0131, _text),
    ]
    for name, ifd, tag, convert in fields:
        value = _safe(convert, ifd.get(tag))
        if value is not None:
            out[name] = value
    if include_gps and (position := _safe(_gps, gps)) is not None:
        out["gps"] = position
    return out


def _frames(im: Image.Image) -> int:
    try:
        return frame_count(im)
    except DECODE_ERRORS:
        return 1


def _safe(convert: Callable[[Any], Any], value: Any) -> Any:
    """``convert(value)``, or None for a missing or malformed value."""
    if value is None:
        return None
    try:
        return convert(value)
    except _VALUE_ERRORS:
        return None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (tuple, list)) and value else value


def _number(value: Any) -> float | None:
    value = _first(value)
    if isinstance(value, (bytes, str)) or value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    return text[:200] or None


def _decimal(value: Any) -> float | None:
    number = _number(value)
    return round(number, 2) if number is not None and number > 0 else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number > 0 else None


def _exposure(value: Any) -> str | None:
    """Seconds as a photographer writes them: ``1/125``, ``1/3``, ``0.6``, ``2``, ``2.5``."""
    seconds = _number(value)
    if seconds is None or seconds <= 0:
        return None
    if seconds <= 0.5:
        return f"1/{round(1 / seconds)}"
    return f"{round(seconds, 1):g}"


def _datetime(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()


def _degrees(dms: Any, ref: Any) -> float | None:
    if not isinstance(dms, (tuple, list)) or not dms:
        return None
    parts = [float(p) for p in dms[:3]]
    if not all(math.isfinite(p) for p in parts):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    sign = -1 if _text(ref) in ("S", "W") else 1
    return round(sign * degrees, 7)


def _gps(gps: dict[int, Any]) -> dict[str, float] | None:
    """Decimal degrees (and metres) from the GPS IFD, or None without a usable position."""
    latitude = _safe(lambda v: _degrees(v, gps.get(1)), gps.get(2))
    longitude = _safe(lambda v: _degrees(v, gps.get(3)), gps.get(4))
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    position = {"latitude": latitude, "longitude": longitude}
    altitude = _safe(_number, gps.get(6))
    if altitude is not None:
        below = gps.get(5) in (b"\x01", 1, "\x01")
        position["altitude"] = round(-altitude if below else altitude, 2)
    return position
