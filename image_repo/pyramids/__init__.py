"""Tiled pyramids of huge originals: their format, their builds, and reading tiles by ranged GETs."""
