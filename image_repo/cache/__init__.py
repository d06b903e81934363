"""Levels of one ObjectStore interface, stacked."""
