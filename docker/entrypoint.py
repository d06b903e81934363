#!/usr/bin/env python3
"""Container entrypoint: turn the 2016 image's environment into a config, then exec image_repo.

Variables (the 2016 names, so an old --env-file still works):
  SWIFT_P    container of originals        -> store: swift://$SWIFT_P
  SWIFT_C    container of derived images   -> cache_store: swift://$SWIFT_C (really used now)
  URL_KEY    TempURL key for url=true      -> url_key (optional; url=true is refused without it)
  Keystone:  OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME or OS_TENANT_NAME (or
             OS_PROJECT_ID / OS_TENANT_ID), optionally OS_USER_DOMAIN_NAME,
             OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME; or OS_APPLICATION_CREDENTIAL_ID and
             OS_APPLICATION_CREDENTIAL_SECRET; or OS_STORAGE_URL and OS_AUTH_TOKEN.
  v1 auth:   ST_AUTH, ST_USER, ST_KEY
  PORT       port to listen on inside the container (default 8080: the server is not root)
  IMAGE_REPO_CONFIG  a mounted YAML file to use instead of the generated one
  IMAGE_REPO_*       any setting (see README); these override the generated file.

Secrets go into the generated file as {"$env": NAME} references, never as values, and no
value of any variable is printed. ``--print-config`` prints the generated YAML and exits.
Any other arguments go to ``image_repo`` (e.g. ``-Yt`` to see the merged settings).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

DEFAULT_PORT = "8080"
CONFIG_PATH = "/tmp/image_repo/config.yml"

_KEYSTONE_NAMES = {
    "auth_url": "OS_AUTH_URL",
    "user": "OS_USERNAME",
    "key": "OS_PASSWORD",
    "auth_version": "OS_IDENTITY_API_VERSION",
    "user_domain_name": "OS_USER_DOMAIN_NAME",
    "project_domain_name": "OS_PROJECT_DOMAIN_NAME",
    "region_name": "OS_REGION_NAME",
    "application_credential_id": "OS_APPLICATION_CREDENTIAL_ID",
    "application_credential_secret": "OS_APPLICATION_CREDENTIAL_SECRET",
    "storage_url": "OS_STORAGE_URL",
    "token": "OS_AUTH_TOKEN",
}
_V1_NAMES = {"auth_url": "ST_AUTH", "user": "ST_USER", "key": "ST_KEY"}
_EXPLAINED = {
    "SWIFT_P": "the container of originals",
    "SWIFT_C": "the container of derived images",
    "OS_AUTH_URL": "the Keystone URL; or set ST_AUTH, ST_USER, ST_KEY for v1 auth",
    "OS_USERNAME": "the Swift user",
    "OS_PASSWORD": "the Swift user's password",
    "OS_PROJECT_NAME": "the project (or OS_TENANT_NAME, OS_PROJECT_ID, OS_TENANT_ID)",
    "ST_USER": "the v1 user",
    "ST_KEY": "the v1 key",
}


class EntrypointError(Exception):
    """Missing or malformed variables: one message line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def _missing(name: str) -> str:
    return f"entrypoint: {name} is not set ({_EXPLAINED[name]})"


def _ref(name: str) -> dict[str, str]:
    return {"$env": name}


def build_config(env: Mapping[str, str]) -> dict[str, object]:
    """The configuration the environment describes, secrets as references; or EntrypointError."""
    errors: list[str] = []
    config: dict[str, object] = {}
    swift_used = False
    for var, key, setting_var in (("SWIFT_P", "store", "IMAGE_REPO_STORE"),
                                  ("SWIFT_C", "cache_store", "IMAGE_REPO_CACHE_STORE")):
        if _set(env, var):
            container = env[var].strip()
            if "/" in container:
                errors.append(f"entrypoint: {var} must be a container name, without '/'")
            config[key] = f"swift://{container}"
            swift_used = True
        elif not _set(env, setting_var):  # IMAGE_REPO_STORE=s3://... needs no SWIFT_P
            errors.append(_missing(var))
    if _set(env, "URL_KEY"):
        config["url_key"] = _ref("URL_KEY")
    if swift_used:
        swift, swift_errors = _swift(env)
        errors += swift_errors
        if swift:
            config["swift"] = swift
    if errors:
        raise EntrypointError(errors)
    return config


def _swift(env: Mapping[str, str]) -> tuple[dict[str, object], list[str]]:
    """The swift section as references to whichever credentials are set; what is missing."""
    swift: dict[str, object] = {}
    if _set(env, "ST_AUTH"):
        for key, name in _V1_NAMES.items():
            if _set(env, name):
                swift[key] = _ref(name)
        swift["auth_version"] = "1"
        return swift, [_missing(n) for n in ("ST_USER", "ST_KEY") if not _set(env, n)]
    for key, name in _KEYSTONE_NAMES.items():
        if _set(env, name):
            swift[key] = _ref(name)
    for key, names in (("tenant_name", ("OS_PROJECT_NAME", "OS_TENANT_NAME")),
                       ("tenant_id", ("OS_PROJECT_ID", "OS_TENANT_ID"))):
        found = next((n for n in names if _set(env, n)), None)
        if found:
            swift[key] = _ref(found)
    if _set(env, "OS_STORAGE_URL") and _set(env, "OS_AUTH_TOKEN"):
        return swift, []  # pre-authenticated: nothing else needed
    if not _set(env, "OS_AUTH_URL"):
        return swift, [_missing("OS_AUTH_URL")]
    if _set(env, "OS_APPLICATION_CREDENTIAL_ID") and _set(env, "OS_APPLICATION_CREDENTIAL_SECRET"):
        return swift, []
    missing = [_missing(n) for n in ("OS_USERNAME", "OS_PASSWORD") if not _set(env, n)]
    if not any(_set(env, n) for n in ("OS_PROJECT_NAME", "OS_TENANT_NAME", "OS_PROJECT_ID", "OS_TENANT_ID")):
        missing.append(_missing("OS_PROJECT_NAME"))
    return swift, missing


def to_yaml(config: Mapping[str, object]) -> str:
    """The config as YAML (JSON is YAML; one key per line keeps it readable)."""
    lines = ["# Generated by docker/entrypoint.py from the container's environment."]
    for key, value in config.items():
        if isinstance(value, dict) and not any(k.startswith("$") for k in value):
            lines.append(f"{key}:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def command(config_path: str, port: str, args: Sequence[str]) -> list[str]:
    """The image_repo command line: serve on the port, unless arguments say otherwise."""
    return ["image_repo", "-y", config_path, "--bind", f"0.0.0.0:{port}", *(args or ["serve"])]


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Check the environment, write the config, exec image_repo (or print the config)."""
    args = list(argv)
    print_only = "--print-config" in args
    args = [a for a in args if a != "--print-config"]
    port = env.get("PORT", "").strip() or DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        print("entrypoint: PORT must be a port number", file=sys.stderr)
        return 1
    if _set(env, "IMAGE_REPO_CONFIG"):
        config_path = env["IMAGE_REPO_CONFIG"]  # a mounted file, used as it is
        if print_only:
            print(f"# using {config_path} as it is")
            return 0
    else:
        try:
            text = to_yaml(build_config(env))
        except EntrypointError as e:
            for line in e.lines:
                print(line, file=sys.stderr)
            return 1
        if print_only:
            sys.stdout.write(text)
            return 0
        config_path = CONFIG_PATH
        os.makedirs(os.path.dirname(config_path), mode=0o700, exist_ok=True)
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    cmd = command(config_path, port, args)
    sys.stdout.flush()
    # exec, not a child: image_repo (Gunicorn's master) becomes PID 1 and gets docker stop's SIGTERM.
    os.execvp(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
