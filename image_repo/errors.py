"""The exception tree: each class carries the HTTP status it is answered with."""
from __future__ import annotations


class ImageRepoError(Exception):
    """Base of every error the server answers with a JSON ``{"message": ...}``."""

    status: int = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)


class InvalidRequest(ImageRepoError):
    status = 400
    default_message = "invalid request"


class Unauthorized(ImageRepoError):
    status = 401
    default_message = "authentication required"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class Forbidden(ImageRepoError):
    status = 403
    default_message = "forbidden"


class NotFound(ImageRepoError):
    status = 404
    default_message = "not found"


class MethodNotAllowed(ImageRepoError):
    status = 405
    default_message = "method not allowed"


class Conflict(ImageRepoError):
    status = 409
    default_message = "conflict"


class PayloadTooLarge(ImageRepoError):
    status = 413
    default_message = "payload too large"


class RangeNotSatisfiable(ImageRepoError):
    """A byte range that starts beyond the end of the answer."""

    status = 416
    default_message = "range not satisfiable"

    def __init__(self, message: str | None = None, *, length: int, headers: dict[str, str] | None = None):
        super().__init__(message, headers={"Content-Range": f"bytes */{length}", **(headers or {})})


class UnsupportedImage(ImageRepoError):
    status = 415
    default_message = "unsupported image"


class UnprocessableImage(ImageRepoError):
    """The bytes are an image of a supported kind, but cannot be used (bomb, corrupt)."""

    status = 422
    default_message = "image cannot be processed"


class StorageUnavailable(ImageRepoError):
    status = 503
    default_message = "storage unavailable"
    retry_after = 5

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message, headers={"Retry-After": str(self.retry_after), **(headers or {})})


class Overloaded(StorageUnavailable):
    """Too many derivations queued: come back shortly."""

    default_message = "server busy, retry shortly"
    retry_after = 2


class Pending(StorageUnavailable):
    """What was asked needs a pyramid that is still being built: come back later."""

    default_message = "this image is being prepared, retry later"
    retry_after = 30


class ConfigError(Exception):
    """A setting is unknown, of the wrong type, or missing; the message names the key."""


class NotConfigured(ImageRepoError):
    """The server is not configured for what was asked (e.g. url=true without url_key).

    A 4xx: the server is working as configured, and the client can do without what it asked.
    """

    status = 400
    default_message = "not configured"
