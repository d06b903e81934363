"""Pure image work: bytes + DerivationSpec -> bytes; metadata."""

from .derive import Derived, ImageInfo, derive, probe
from .metadata import read_metadata
from .spec import DerivationSpec

__all__ = ["DerivationSpec", "Derived", "ImageInfo", "derive", "probe", "read_metadata"]
