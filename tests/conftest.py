"""Fixtures shared by the whole suite live in tests/fixtures/, one module per thing they give."""
pytest_plugins = [
    "tests.fixtures.images",
    "tests.fixtures.swift",
    "tests.fixtures.server",
    "tests.fixtures.browser",
    "tests.fixtures.faultproxy",
    "tests.fixtures.tally",
]
