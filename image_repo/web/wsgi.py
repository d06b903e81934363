"""The WSGI application for any server: ``gunicorn -c docker/gunicorn.conf.py image_repo.web.wsgi:app``.

Settings come from the YAML file named by ``IMAGE_REPO_CONFIG`` (if set) and the
``IMAGE_REPO_*`` variables; importing this module builds the app, on purpose.
"""
from __future__ import annotations

from ..config.loading import load_settings_from_environment
from .app import create_app

app = create_app(load_settings_from_environment(), start_builders=True)
