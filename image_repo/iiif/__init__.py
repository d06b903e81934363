"""The IIIF Image API 3.0 and 2.1: parsing requests and making info.json, without Flask."""
from .info import CONTEXT, PROFILE, info_json
from .params import FORMATS, QUALITIES, check_quality
from .request import ImageRequest, Resolved, parse_request

__all__ = ["CONTEXT", "FORMATS", "PROFILE", "QUALITIES", "ImageRequest", "Resolved", "check_quality", "info_json",
           "parse_request"]
