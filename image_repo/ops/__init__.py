"""Operators' commands: ``image_repo doctor`` (doctor.py) and ``image_repo cache prune`` (prune.py)."""
