"""Pure image work: bytes + DerivationSpec -> bytes; metadata."""

from .decode import ImageInfo, probe
from .derive import Derived, derive
from .metadata import read_metadata
from .spec import DerivationSpec

__all__ = ["DerivationSpec", "Derived", "ImageInfo", "derive", "probe", "read_metadata"]
