"""Serving under Gunicorn from inside the package, so an installed wheel needs no config file.

``docker/gunicorn.conf.py`` sets the same values for ``gunicorn -c ... image_repo.web.wsgi:app``.
"""
from __future__ import annotations

import gc
import logging.config
import os
from typing import Any

from gunicorn.app.base import BaseApplication

from ..config.settings import Settings
from ..metrics import multiproc

LINE_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
ACCESS_FORMAT = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'

BALANCED = "image_repo.web.balanced.BalancedThreadWorker"
"""gthread taking new connections in turn by how many each worker holds (web/balanced.py)."""

DEFAULTS: dict[str, Any] = {
    # Threads share one worker's memory cache and overlap store I/O; processes (one per
    # core, from settings) give the CPU-bound derivations real parallelism. Plain gthread
    # with balance_connections off; else BALANCED, gthread taking connections in turn.
    "worker_class": "gthread",
    # gthread heartbeats from its main loop, so a long derivation does not trip this; it
    # only catches a worker that is truly stuck.
    "timeout": 30,
    # In-flight requests (a big upload, a zip stream) get this long to finish on SIGTERM.
    "graceful_timeout": 30,
    # Longer than a load balancer's usual 60 s idle timeout, so the balancer closes idle
    # connections first (else it can send a request on one we just closed: a 502).
    # gthread parks idle connections in its poller; they hold no thread.
    "keepalive": 65,
    # Recycle a worker after this many requests (+ up to the jitter, so workers do not all
    # restart at once and drop every memory cache together). Measured: worker RSS stays flat
    # on 48 MP originals (bench "48 MP mix": 1.00x from 1,000 to 5,000 requests), so this is
    # only a guard against slow growth in C libraries. Set high: a restart costs ~1 s of CPU
    # (imports, app) and the worker's memory cache, and at 50,000 the bench saw cache-hit
    # workers recycled every few seconds, halving throughput while the new one started.
    "max_requests": 1_000_000,
    "max_requests_jitter": 100_000,
    # The app is made in each worker after fork (load()), so no worker inherits another's
    # store connections or locks.
    "preload_app": False,
    "accesslog": "-",
    "access_log_format": ACCESS_FORMAT,
    "errorlog": "-",
    "proc_name": "image_repo",
    # Gunicorn 23+ opens a control socket at one per-user path: two servers on a host would
    # fight over it, and a container's home may be read-only. Signals do the same job.
    "control_socket_disable": True,
    # Gunicorn trusts X-Forwarded-Proto from loopback by default; the trust_forwarded_headers
    # setting decides instead (werkzeug's ProxyFix in web/app.py), for every header alike.
    "secure_scheme_headers": {},
}


def freeze_after_load(worker: Any) -> None:
    """Gunicorn's post_worker_init hook: move what the app made at start out of the collector's sight.

    A worker holds a few hundred thousand long-lived objects (Flask, Pillow, boto3...); every
    full collection walked them all, a cost paid by whichever cache hit triggered it.
    """
    gc.collect()
    gc.freeze()


def forget_worker(server: Any, worker: Any) -> None:
    """Gunicorn's child_exit hook (in the master): the dead worker's live gauges leave /metrics."""
    multiproc.worker_exited(worker.pid)


DEFAULTS["post_worker_init"] = freeze_after_load
DEFAULTS["child_exit"] = forget_worker
# Counts every request into /metrics (Gunicorn's access hook sees fast-path answers too).
DEFAULTS["logger_class"] = "image_repo.web.accesslog.AccessLogger"
JSON_LOGGER = "image_repo.web.accesslog.JsonAccessLogger"


def _worker_tmp_dir() -> str | None:
    """The heartbeat files on tmpfs: on a container's overlay disk they can block for seconds."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def logging_config(level: str, log_file: str | None = None, access: bool = True) -> dict[str, Any]:
    """One-line logs for the app and Gunicorn alike; access lines to stdout (or the log file)."""
    if log_file:
        errors: dict[str, Any] = {"class": "logging.FileHandler", "filename": log_file, "formatter": "line"}
        access_handler: dict[str, Any] = {"class": "logging.FileHandler", "filename": log_file, "formatter": "access"}
    else:
        errors = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "line"}
        access_handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "access"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "line": {"format": LINE_FORMAT},
            "access": {"format": "%(message)s"},  # Gunicorn's access line already has its time
        },
        "handlers": {"errors": errors, "access": access_handler},
        "root": {"level": level.upper(), "handlers": ["errors"]},
        "loggers": {
            # Gunicorn's own messages go through the root handler: one format for every line.
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {
                "level": "INFO" if access else "WARNING",
                "handlers": ["access"],
                "propagate": False,
            },
        },
    }


def configure_logging(level: str, log_file: str | None = None) -> None:
    """Configure this process's logging (the CLI before Gunicorn starts, with the same format)."""
    logging.config.dictConfig(logging_config(level, log_file))


def gunicorn_options(settings: Settings, log_file: str | None = None, access_log: bool = True) -> dict[str, Any]:
    """Gunicorn's settings for ``settings``: the defaults above plus bind, workers, threads, logging."""
    options = dict(DEFAULTS)
    options.update(
        bind=[settings.bind],
        workers=settings.workers or os.cpu_count() or 1,
        threads=settings.threads,
        worker_class=BALANCED if settings.balance_connections else DEFAULTS["worker_class"],
        loglevel=settings.log_level,
        logconfig_dict=logging_config(settings.log_level, log_file, access_log),
        worker_tmp_dir=_worker_tmp_dir(),
    )
    if settings.access_log_json:
        options["logger_class"] = JSON_LOGGER
    return options


def prepare_metrics(settings: Settings) -> Any:
    """In the master, before any worker: the workers' shared figures directory, emptied.

    Returns Gunicorn's on_exit hook, which removes the directory if it was made here.
    """
    directory, made = multiproc.prepare(settings.metrics_dir)

    def on_exit(server: Any) -> None:
        if made:
            multiproc.remove(directory)

    return on_exit


class ImageRepoApplication(BaseApplication):
    """Gunicorn running ``create_app(settings)`` in each worker."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from .app import create_app

        return create_app(self.settings, start_builders=True)


def serve(settings: Settings, log_file: str | None = None, access_log: bool = True) -> None:
    """Serve until Gunicorn is told to stop (SIGTERM/SIGINT); exits the process on failure."""
    options = gunicorn_options(settings, log_file, access_log)
    options["on_exit"] = prepare_metrics(settings)
    ImageRepoApplication(settings, options).run()
