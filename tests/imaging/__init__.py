"""Tests of image_repo.imaging: derive, probe, read_metadata."""
