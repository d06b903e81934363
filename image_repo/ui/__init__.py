"""The browse page: gallery, image page with deep zoom, upload, all over the JSON and IIIF APIs."""
from .pages import register

__all__ = ["register"]
