"""Run bare_wsgi.app under exactly the Gunicorn options image_repo uses.

``python bare_server.py CONFIG.yml HOST:PORT [--quiet]`` builds the options with
image_repo's own ``gunicorn_options(settings)`` (worker class, workers, threads, keep-alive,
logging and the rest) and swaps in the bare app, so the only difference from the real
server is the application itself, even after someone changes those options.
"""
from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gunicorn.app.base import BaseApplication

from image_repo.config.loading import load_settings
from image_repo.web.server import gunicorn_options


class BareApplication(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        import importlib

        # bare_wsgi (one body) by default; the tile benchmark's bare_tiles with BENCH_APP.
        return importlib.import_module(os.environ.get("BENCH_APP", "bare_wsgi")).app


def main() -> None:
    config, bind = sys.argv[1], sys.argv[2]
    quiet = "--quiet" in sys.argv[3:]
    settings = load_settings(config)
    settings.bind = bind
    if quiet:
        settings.log_level = "error"
    options = gunicorn_options(settings, access_log=not quiet)
    options["proc_name"] = "bench-bare-wsgi"
    BareApplication(options).run()


if __name__ == "__main__":
    main()
