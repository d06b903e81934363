"""The ``image_repo`` command: serve under Gunicorn, dump or check the configuration.

``image_repo -Yt`` prints every setting; ``image_repo -y FILE`` (or ``image_repo -y FILE
serve``) serves. Subcommands are added to the ``main`` group (``@main.command()``) and
get their settings with ``cli_settings(ctx)``.

The 2016 flags that still mean something keep their meaning. ``-C``, ``-c``, ``-a`` and
``-i`` did nothing in 2016 and are ignored with a warning. ``-B``, ``-R``, ``-S`` and ``-T``
are refused: running a server where the user asked to stop one would be worse than an
error.
"""
from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from . import __version__
from .config.dump import dump_yaml
from .config.loading import load_settings
from .config.settings import Settings
from .errors import ConfigError

log = logging.getLogger("image_repo.cli")

F = TypeVar("F", bound=Callable[..., Any])

_IGNORED_2016 = {
    "critical": "-C/--critical",
    "config_log_file": "-c/--config_log_file",
    "attached": "-a/--attached",
    "intolerant": "-i/--intolerant",
}
_REFUSED_2016 = {
    "background": ("-B/--background", "run it under your service manager or Docker instead"),
    "restart": ("-R/--restart", "send SIGHUP to the Gunicorn master to reload workers"),
    "stop": ("-S/--stop", "send SIGTERM to the Gunicorn master"),
    "test_run": ("-T/--test_run", "run the test suite with ./run test"),
}


@dataclass
class Options:
    """What the command line says, group and subcommand options merged (the later wins)."""

    yaml_config: str | None = None
    dump_yaml: bool = False
    trial_run: bool = False
    verbose: bool = False
    debug: bool = False
    quiet: bool = False
    log_file: str | None = None
    bind: str | None = None
    workers: int | None = None
    threads: int | None = None

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name in _IGNORED_2016 and value:
                log.warning("%s is ignored (it did nothing in 2016 either)", _IGNORED_2016[name])
            elif name in _REFUSED_2016 and value:
                flag, instead = _REFUSED_2016[name]
                raise click.UsageError(f"{flag} is not supported: {instead}")
            elif hasattr(self, name) and value not in (None, False):
                setattr(self, name, value)

    def log_level(self, settings: Settings) -> str:
        if self.debug:
            return "debug"
        if self.verbose:
            return "info"
        if self.quiet:
            return "error"
        return settings.log_level


def common_options(f: F) -> F:
    """The options both ``image_repo`` and ``image_repo serve`` take."""
    decorators = [
        click.option("-y", "--yaml_config", "--config", "yaml_config", metavar="FILE", type=click.Path(dir_okay=False),
                     help="YAML configuration over the defaults."),
        click.option("-Y", "--dump_yaml", "dump_yaml", is_flag=True,
                     help="Print the effective settings as commented YAML (secrets hidden), then go on."),
        click.option("-t", "--trial_run", "trial_run", is_flag=True, help="Check the configuration and exit."),
        click.option("-v", "--verbose", is_flag=True, help="Log level info."),
        click.option("-V", "--debug", is_flag=True, help="Log level debug."),
        click.option("-q", "--quiet", is_flag=True, help="Log level error, and no access log."),
        click.option("-l", "--log_file", "log_file", metavar="FILE", help="Log to FILE instead of stderr/stdout."),
        click.option("--bind", metavar="HOST:PORT", help="Listen here (overrides the bind setting)."),
        click.option("--workers", type=click.IntRange(min=0), help="Worker processes; 0: one per core."),
        click.option("--threads", type=click.IntRange(min=1), help="Threads per worker."),
    ]
    for name, flag in (("critical", "-C"), ("config_log_file", "-c"), ("attached", "-a"), ("intolerant", "-i"),
                       ("background", "-B"), ("restart", "-R"), ("stop", "-S"), ("test_run", "-T")):
        decorators.append(click.option(flag, "--" + name, name, is_flag=True, hidden=True))
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


class _Group(click.Group):
    """A group that answers a configuration error with one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as e:
            click.echo(f"image_repo: {e}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(__version__, "--version", prog_name="image_repo")
@click.pass_context
def main(ctx: click.Context, **values: Any) -> None:
    """A stateless image repository server. With no command: serve."""
    _early_logging()
    options = ctx.ensure_object(Options)
    options.update(values)
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)
    elif ctx.invoked_subcommand != "serve" and (options.dump_yaml or options.trial_run):
        # -Y/-t before another command still mean "show" / "check, then stop".
        settings = cli_settings(ctx)
        if options.dump_yaml:
            click.echo(dump_yaml(settings), nl=False)
        if options.trial_run:
            ctx.exit(0)


@main.command()
@common_options
@click.pass_context
def serve(ctx: click.Context, **values: Any) -> None:
    """Serve HTTP under Gunicorn (what bare `image_repo` does)."""
    options = ctx.ensure_object(Options)
    options.update(values)
    settings = cli_settings(ctx)
    if options.dump_yaml:
        click.echo(dump_yaml(settings), nl=False)
    if options.trial_run:
        ctx.exit(0)
    from .web.server import configure_logging
    from .web.server import serve as run

    configure_logging(settings.log_level, options.log_file)
    log.info("serving on %s (store %s, cache %s)", settings.bind, _safe_url(settings.store_url()),
             _safe_url(settings.cache_store_url()))
    if not settings.write_tokens and not is_loopback(settings.bind):
        log.warning("serving on %s without write_tokens: anyone who can reach it can upload, replace and "
                    "delete images (set write_tokens, or bind to 127.0.0.1)", settings.bind)
    run(settings, options.log_file, access_log=not options.quiet)


def cli_settings(ctx: click.Context) -> Settings:
    """The settings the command line names: ``-y`` file, environment, then flags."""
    options = ctx.ensure_object(Options)
    settings = load_settings(options.yaml_config)
    settings.log_level = options.log_level(settings)
    if options.bind is not None:
        settings.bind = options.bind
    if options.workers is not None:
        settings.workers = options.workers
    if options.threads is not None:
        settings.threads = options.threads
    return settings


def _early_logging() -> None:
    """One-line warnings (e.g. ignored 2016 keys) before the settings say more."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        from .web.server import LINE_FORMAT

        handler.setFormatter(logging.Formatter(LINE_FORMAT))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def is_loopback(bind: str) -> bool:
    """Whether ``bind`` (HOST:PORT, [v6]:PORT or unix:PATH) is reachable from this host only."""
    if bind.startswith(("unix:", "fd://")):
        return True
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or an empty host (every interface): assume reachable


def _safe_url(url: str) -> str:
    """A store URL for the log, without any user:password it may carry."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else url


@main.group("imports")
def imports_group() -> None:
    """Direct-to-store imports: housekeeping."""


@imports_group.command("clean")
@click.pass_context
def imports_clean(ctx: click.Context) -> None:
    """Expire unfinished imports (removing their staging objects) and finish ones a stopped server left."""
    from .web.app import create_app

    app = create_app(cli_settings(ctx))
    counts = app.extensions["image_repo_imports"].clean(wait=True)
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()))


@main.group("pyramids")
def pyramids_group() -> None:
    """Tiled pyramids of huge images."""


@pyramids_group.command("build")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every original larger than pyramid_min_side, and every queued build.")
@click.option("-p", "--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Builds at once on this machine.")
@click.pass_context
def pyramids_build(ctx: click.Context, names: tuple[str, ...], all_: bool, parallel: int) -> None:
    """Build the pyramids of NAMES (or --all) here, with the same store and cache store as the servers.

    A build another machine holds the lease of is left to it; one that fails says why.
    """
    from .pyramids.batch import run_batch
    from .web.app import create_app

    if bool(names) == all_:
        raise click.UsageError("give image names, or --all")
    app = create_app(cli_settings(ctx))
    failed = run_batch(app.extensions["image_repo"], list(names), all_, parallel)
    ctx.exit(1 if failed else 0)


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the configuration, each store (a probe written, read and removed), temporary URLs,
    codecs and data directories: one line per check; exit status 1 if any failed."""
    from .ops import doctor as checks

    options = ctx.ensure_object(Options)
    try:
        settings = cli_settings(ctx)
    except ConfigError as e:
        click.echo(checks.Check(checks.FAIL, "config", str(e).removeprefix("config: ")).line())
        ctx.exit(1)
    source = options.yaml_config or "no file"
    lines = [checks.Check(checks.OK, "config", f"{source}, with the IMAGE_REPO_* variables: valid")]
    if not settings.write_tokens and not is_loopback(settings.bind):
        lines.append(checks.Check(checks.WARN, "config", f"no write_tokens and bind {settings.bind}: anyone who "
                                                          "can reach the server can upload, replace and delete"))
    for check in lines:
        click.echo(check.line())
    counts = {checks.OK: 0, checks.WARN: 0, checks.FAIL: 0}
    for check in [*lines, *_echoed(checks.run(settings))]:
        counts[check.status] += 1
    click.echo(f"doctor: {counts[checks.OK]} ok, {counts[checks.WARN]} warnings, {counts[checks.FAIL]} failed")
    ctx.exit(1 if counts[checks.FAIL] else 0)


def _echoed(checks: Any) -> Any:
    for check in checks:
        click.echo(check.line())
        yield check


@main.group("cache")
def cache_group() -> None:
    """The cache store: housekeeping."""


@cache_group.command("prune")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Objects listed, then checked against their originals, then removed, at a time.")
@click.option("--prefix", default="", help="Only the images whose names start with this (e.g. 'site1/').")
@click.pass_context
def cache_prune(ctx: click.Context, dry_run: bool, batch_size: int, prefix: str) -> None:
    """Remove derived images (and intermediates, pyramids) whose original is gone or was replaced."""
    from .ops.prune import prune
    from .web.app import create_app

    service = create_app(cli_settings(ctx)).extensions["image_repo"]

    def progress(s: Any) -> None:
        click.echo(f"batch {s.batches}: {s.scanned} listed, {s.removed} {'to remove' if dry_run else 'removed'}",
                   err=True)

    summary = prune(service, dry_run=dry_run, batch_size=batch_size, prefix=prefix, progress=progress)
    for failure in summary.failures[:20]:
        click.echo(f"error: {failure}", err=True)
    click.echo(("dry run: " if dry_run else "") + summary.line())
    ctx.exit(1 if summary.errors else 0)


@main.group("swift")
def swift_group() -> None:
    """Swift helpers."""


@swift_group.command("set-temp-url-key")
@click.option("--on", "on", type=click.Choice(["account", "container"]), default="account", show_default=True,
              help="Set the key on the account (needs an .admin user) or on each store's container.")
@click.pass_context
def swift_set_temp_url_key(ctx: click.Context, on: str) -> None:
    """Make Swift accept the TempURLs this server signs with url_key (url=true, direct imports).

    A url_key list of two sets Temp-URL-Key to the first (the signing key) and Temp-URL-Key-2
    to the second, so URLs signed with the older key still work while it is rotated out.
    """
    from .storage.registry import open_store
    from .storage.swift import SwiftStore, set_temp_url_key

    settings = cli_settings(ctx)
    if not settings.url_keys():
        raise ConfigError("url_key is not set: it is the key Swift must be given")
    stores = [open_store(url, settings) for url in dict.fromkeys([settings.store_url(), settings.cache_store_url()])]
    swift = [s for s in stores if isinstance(s, SwiftStore)]
    if not swift:
        raise ConfigError("neither store nor cache_store is a swift:// store")
    for store in swift[:1] if on == "account" else swift:
        set_temp_url_key(store, settings.url_keys(), on=on)
        count = len(settings.url_keys())
        click.echo(f"TempURL key{'s' if count > 1 else ''} set on the {on}"
                   + (f" (container {store.container})" if on == "container" else ""))


# The client commands live in image_repo/client/ (they need no server settings).
from .client.commands import ingest, upload

main.add_command(upload)
main.add_command(ingest)
