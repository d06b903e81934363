"""nginx as the reverse proxy a deployment puts in front: upstream keep-alive to one Gunicorn server.

Debian's ``nginx`` package (apt-get installed when missing and we are root). Each proxy is
started as a non-daemon (``daemon off``) on a free loopback port with its whole prefix (pid,
logs, temp paths) under the run's directory, so it never touches /etc/nginx or /var.
``keepalive N`` is how many idle upstream connections each nginx worker keeps: a busy
proxy opens more while requests overlap and closes those past N, so the upstream sees
a few long-lived connections plus some churn, as it would in production.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from servers import Running, free_port, start

CONFIG = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream app {{
        server 127.0.0.1:{upstream};
        keepalive {keepalive};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering on;
        }}
    }}
}}
"""


def ensure_nginx(log: Callable[[str], None] = print, install: bool = True) -> str | None:
    """Path of nginx, apt-get installing Debian's package when allowed, root and missing; None if not to be had."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("  nginx not found and cannot apt-get install it (not root or no apt): nginx rows SKIP")
        return None
    log("  installing nginx (apt-get install -y nginx)")
    # The package's own service must not start (and take port 80): policy-rc.d would be the
    # usual way, but there is no init system here; we only ever run our own instances.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    for cmd in (["apt-get", "install", "-y", "-qq", "nginx"], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "nginx"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            break
        if shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK):
            break
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def start_nginx(exe: str, upstream_port: int, workdir: Path, keepalive: int, ready_path: str = "/") -> Running:
    """nginx on a free port proxying to ``127.0.0.1:upstream_port`` with ``keepalive`` idle upstream connections."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(CONFIG.format(prefix=workdir, upstream=upstream_port, keepalive=keepalive, port=port))
    cmd = [exe, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]
    return start("nginx", cmd, port, workdir / "nginx.out", ready_path=ready_path, cwd=workdir, min_workers=1)
