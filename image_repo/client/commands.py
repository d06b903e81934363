"""``image_repo upload`` and ``image_repo ingest``: the client side of the command line.

The token comes from ``--token``, else ``IMAGE_REPO_TOKEN``, else the client config file
(YAML ``token:`` and ``server:``). The environment rule of DESIGN.md (only config/loading.py reads
it) is about the server; this is the client, and click's ``envvar=`` reads it here. The token
is never printed or logged.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import click
import yaml

from .cancel import cancel_job
from .http import RepoClient, RequestFailed, file_sha256
from .ingest import Ingest, Summary, scan
from .jobfile import JobFile, default_job_dir, job_id
from .naming import NameMapper, upload_target
from .progress import Progress, _size

log = logging.getLogger("image_repo.client")


def client_config(path: str | None) -> dict[str, Any]:
    """The client config file (``--client-config``, else ~/.config/image_repo/client.yml), or {}."""
    where = Path(path) if path else Path.home() / ".config" / "image_repo" / "client.yml"
    try:
        loaded = yaml.safe_load(where.read_text())
    except FileNotFoundError:
        if path:
            raise click.UsageError(f"client config {path}: no such file") from None
        return {}
    except (OSError, yaml.YAMLError) as e:
        raise click.UsageError(f"client config {where}: {e}") from None
    return loaded if isinstance(loaded, dict) else {}


def connection_options(f: Any) -> Any:
    for decorator in reversed([
        click.option("--server", envvar="IMAGE_REPO_SERVER", metavar="URL", help="The server's root URL."),
        # The client may read the environment (click's envvar): the config/loading.py rule is for the server.
        click.option("--token", envvar="IMAGE_REPO_TOKEN", metavar="TOKEN", show_envvar=True,
                     help="Bearer token (else IMAGE_REPO_TOKEN, else the client config file)."),
        click.option("--client-config", metavar="FILE", help="Client YAML with token: and server:."),
        click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True,
                     help="Retries of a request on connection errors and 5xx."),
        click.option("--log-file", metavar="FILE", help="Also log to FILE."),
        click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
                     show_default=True),
    ]):
        f = decorator(f)
    return f


def make_client(server: str | None, token: str | None, config_file: str | None, retries: int) -> RepoClient:
    config = client_config(config_file)
    server = server or config.get("server")
    if not server:
        raise click.UsageError("--server URL is required (or IMAGE_REPO_SERVER, or server: in the client config)")
    return RepoClient(str(server), token or config.get("token"), retries=retries)


def setup_logging(level: str, log_file: str | None, bar: bool) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for handler in root.handlers:
        # On a terminal the bar shows progress: only warnings and errors go above it.
        handler.setLevel(logging.WARNING if bar else level.upper())
        handler.setFormatter(fmt)
    if log_file:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(fmt)
        root.addHandler(handler)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("name")
@click.option("--replace", is_flag=True, help="Replace an image holding other bytes (PUT) instead of refusing (409).")
@connection_options
def upload(file: Path, name: str, replace: bool, server: str | None, token: str | None, client_config: str | None,
           retries: int, log_file: str | None, log_level: str) -> None:
    """Upload FILE as the image NAME, with its SHA-256 for the server to check."""
    setup_logging(log_level, log_file, bar=False)
    client = make_client(server, token, client_config, retries)
    sha = file_sha256(file)
    try:
        stored = client.upload(file, upload_target(name, PurePosixPath(file.name)), sha, replace=replace)
    except RequestFailed as e:
        raise click.ClickException(str(e)) from None
    if stored and stored != sha:
        raise click.ClickException(f"the server reports SHA-256 {stored}, not {sha}")
    click.echo(f"{name} {sha}")


@click.command()
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--prefix", default="", help="Put every name under this directory of names.")
@click.option("-p", "--parallel", type=click.IntRange(1, 256), default=4, show_default=True, help="Files at once.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (path or file name; repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out files matching (repeatable).")
@click.option("--name-template", metavar="TEMPLATE", help="Format of the name: {path} {rel} {dir} {stem} {ext} {parts[i]}.")
@click.option("--name-function", metavar="MODULE:FUNCTION", help="A function(relative PurePosixPath) -> name or None.")
@click.option("--replace", is_flag=True, help="Replace images holding other bytes instead of failing them (409).")
@click.option("--plain", is_flag=True, help="Plain uploads even if the server offers direct imports.")
@click.option("--job-file", type=click.Path(dir_okay=False, path_type=Path), help="Where progress is recorded.")
@click.option("--cancel", "cancel", metavar="JOB", help="Stop job JOB (its id or job file) and remove its staging.")
@connection_options
def ingest(directory: Path | None, prefix: str, parallel: int, include: tuple[str, ...], exclude: tuple[str, ...],
           name_template: str | None, name_function: str | None, replace: bool, plain: bool, job_file: Path | None,
           cancel: str | None, server: str | None, token: str | None, client_config: str | None, retries: int,
           log_file: str | None, log_level: str) -> None:
    """Upload every image under DIRECTORY; run the same command again to resume."""
    bar = sys.stderr.isatty() and cancel is None
    setup_logging(log_level, log_file, bar)
    client = make_client(server, token, client_config, retries)
    if cancel is not None:
        path = Path(cancel) if os.sep in cancel or cancel.endswith(".jsonl") else default_job_dir() / f"{cancel}.jsonl"
        if not path.exists():
            raise click.ClickException(f"no job file {path}")
        removed = cancel_job(client, JobFile(path))
        click.echo(f"job {path.stem} cancelled; {removed} unfinished import(s) removed")
        return
    if directory is None:
        raise click.UsageError("DIRECTORY is required (or --cancel JOB)")
    try:
        mapper = NameMapper(prefix, name_template, name_function, include, exclude)
    except (ValueError, ImportError) as e:
        raise click.UsageError(str(e)) from None
    naming = f"{name_template or ''}|{name_function or ''}|{include}|{exclude}"
    jid = job_id(client.server, directory, prefix, naming)
    job = JobFile(job_file or default_job_dir() / f"{jid}.jsonl")
    log.info("job %s (%s)", job.path.stem, job.path)
    if not bar:
        click.echo(f"job {job.path.stem}: {job.path}", err=True)
    items = list(scan(directory, mapper))
    run = Ingest(client, job, workers=parallel, replace=replace, direct=False if plain else None,
                 progress=Progress(enabled=bar))

    def stop(signum: int, _frame: Any) -> None:
        log.warning("stopping after the files in flight; run the same command again to resume")
        run.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        summary = run.run(items)
    finally:
        job.close()
    report(summary, len(items))
    if not summary.ok:
        sys.exit(1)


def report(summary: Summary, total: int) -> None:
    rate = summary.bytes_sent / summary.seconds if summary.seconds else 0.0
    click.echo(f"ingest: {total} files: {summary.stored} stored, {summary.skipped} already stored, "
               f"{len(summary.failed)} failed; {_size(summary.bytes_sent)} sent in {summary.seconds:.1f} s "
               f"({_size(rate)}/s)" + ("; stopped before the end (run again to resume)" if summary.stopped else ""),
               err=True)
    if summary.failed:
        click.echo("failed:", err=True)
        for path, reason in sorted(summary.failed.items()):
            click.echo(f"  {path}: {reason}", err=True)
