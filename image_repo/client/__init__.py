"""The command-line client: an HTTP client for one server, name mapping, and resumable ingest jobs."""
from __future__ import annotations

from .http import RepoClient, RequestFailed
from .naming import NameMapper

__all__ = ["NameMapper", "RepoClient", "RequestFailed"]
