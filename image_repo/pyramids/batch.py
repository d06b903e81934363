"""``image_repo pyramids build``: builds on this machine, N at once, with a progress bar.

Each build takes its lease like a server's would, so a batch (a Slurm array, a Kubernetes Job)
and the servers never build one image twice at once.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from ..errors import ImageRepoError
from ..storage.base import content_version
from .state import build_id

if TYPE_CHECKING:
    from ..service.images import ImageService

log = logging.getLogger("image_repo.pyramids")


def _record(svc: ImageService, name: str) -> dict[str, Any] | None:
    """The build record of ``name``'s pyramid (made if needed), or None when it needs none."""
    from ..service import huge

    original = svc.get_original(name)
    h = huge.header(svc, original)
    if not svc.pyramids.wanted(h.width, h.height, h.multichannel):
        return None
    version = content_version(original.info)
    rec = svc.pyramids.records.load(build_id(name, version))
    return rec or {"id": build_id(name, version), "name": name, "key": original.ref.key, "version": version,
                   "state": "queued", "reason": None, "attempts": 0}


def run_batch(svc: ImageService, names: list[str], everything: bool, parallel: int) -> int:
    """Build the pyramids of ``names`` (or of every original that wants one); the number that failed."""
    wanted: dict[str, dict[str, Any]] = {}
    if everything:
        for rec in svc.pyramids.pending():
            wanted[rec["name"]] = rec
        names = svc.list_names()
    for name in tqdm(names, desc="looking", unit="image", disable=len(names) < 20, leave=False):
        try:
            found = _record(svc, svc.validate_name(name))
        except ImageRepoError as e:
            if not everything:
                click.echo(f"{name}: {e.message}", err=True)
            continue
        if found is not None:
            wanted[found["name"]] = found
        elif not everything:
            click.echo(f"{name}: no pyramid needed (not larger than pyramid_min_side)", err=True)
    failed = 0
    with ThreadPoolExecutor(parallel) as pool, tqdm(total=len(wanted), desc="pyramids", unit="image") as bar:
        futures = {pool.submit(svc.pyramids.build, rec): name for name, rec in wanted.items()}
        for future in as_completed(futures):
            name = futures[future]
            try:
                status = future.result()
            except ImageRepoError as e:
                status = {"state": "failed", "reason": e.message}
            if status["state"] == "failed":
                failed += 1
                tqdm.write(f"{name}: failed: {status.get('reason')}")
            elif status["state"] == "building":
                tqdm.write(f"{name}: being built elsewhere")
            bar.update(1)
    return failed
