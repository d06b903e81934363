"""image_repo: a stateless image repository server."""
__version__ = "0.1.0"
__all__ = ["__version__"]
