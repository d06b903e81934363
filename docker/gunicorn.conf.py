"""Gunicorn settings for ``gunicorn -c docker/gunicorn.conf.py image_repo.web.wsgi:app``.

The image itself runs ``image_repo serve``, which applies the same values from
image_repo/web/server.py; this file is for running the WSGI module under a plain
``gunicorn`` command. Settings come from ``IMAGE_REPO_CONFIG`` (a YAML file) and the
``IMAGE_REPO_*`` variables, exactly as for ``image_repo``.
"""
from image_repo.config.loading import load_settings_from_environment
from image_repo.web.server import DEFAULTS, gunicorn_options, prepare_metrics

_settings = load_settings_from_environment()
_options = gunicorn_options(_settings)

# HOST:PORT from the bind setting (IMAGE_REPO_BIND), so both ways of starting agree.
bind = _options["bind"]
# One process per core unless the workers setting says otherwise: derivations are CPU-bound.
workers = _options["workers"]
# A few threads per process overlap store I/O and share that process's memory cache.
threads = _options["threads"]
# gthread (the worker that has threads; sync would serve one request per process), taking
# new connections in turn unless balance_connections is off (image_repo/web/balanced.py).
worker_class = _options["worker_class"]
# gthread heartbeats from its main loop, so this only kills a truly stuck worker.
timeout = DEFAULTS["timeout"]
# Time for in-flight uploads and zip streams to finish after SIGTERM.
graceful_timeout = DEFAULTS["graceful_timeout"]
# Longer than a load balancer's 60 s idle timeout, so it closes idle connections first.
keepalive = DEFAULTS["keepalive"]
# Recycle workers now and then, staggered (why these numbers: image_repo/web/server.py).
max_requests = DEFAULTS["max_requests"]
max_requests_jitter = DEFAULTS["max_requests_jitter"]
# Build the app in each worker after fork: no worker inherits another's connections.
preload_app = DEFAULTS["preload_app"]
# Access log to stdout and errors to stderr, as a container's log driver expects.
accesslog = DEFAULTS["accesslog"]
access_log_format = DEFAULTS["access_log_format"]
errorlog = DEFAULTS["errorlog"]
# One line format for Gunicorn's messages and the app's, at the log_level setting.
loglevel = _options["loglevel"]
logconfig_dict = _options["logconfig_dict"]
# X-Forwarded-* are trusted only when the trust_forwarded_headers setting says so (not by Gunicorn).
secure_scheme_headers = DEFAULTS["secure_scheme_headers"]
# Heartbeat files on tmpfs: on an overlay filesystem they can stall for seconds.
worker_tmp_dir = _options["worker_tmp_dir"]
proc_name = DEFAULTS["proc_name"]
# After the app is made in a worker, gc.freeze() it: full collections stop walking it.
post_worker_init = DEFAULTS["post_worker_init"]
# No per-user control socket: servers sharing a host would fight over its one path.
control_socket_disable = DEFAULTS["control_socket_disable"]
# Count every request into /metrics, and write the access line as text or JSON (access_log_json).
logger_class = _options["logger_class"]
# The workers keep their figures in one directory, made (or emptied) here in the master before
# any worker starts; a dead worker's live gauges are dropped; a directory made here goes at exit.
on_exit = prepare_metrics(_settings)
child_exit = DEFAULTS["child_exit"]
