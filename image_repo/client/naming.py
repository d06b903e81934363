"""Which image name a file of an ingested tree gets.

By default a file's name is its path relative to the tree with the extension dropped
(``plate1/A01/f2.tif`` -> ``plate1/A01/f2``): the server decides the kind from the bytes,
so the extension is only sent along to be stripped. ``--prefix`` puts everything under a
directory of names. For other layouts, a ``--name-template`` (Python format fields below)
or a ``module:function`` taking the relative path (a PurePosixPath) and returning a name,
or None to skip the file.

Template fields: ``{path}`` relative path less extension, ``{rel}`` relative path,
``{dir}`` its directory (``""`` at the top), ``{stem}``, ``{ext}`` (lower case, no dot),
``{parts[i]}`` path segments (the last without extension).
"""
from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from ..imaging.formats import kind_for_extension

IMAGE_GLOBS = ("*.jpg", "*.jpeg", "*.png", "*.tif", "*.tiff", "*.bmp", "*.gif", "*.webp")
"""Files ingested when no --include is given (matched case-insensitively)."""


class NameMapper:
    """Maps a relative path to an image name (or None: not ingested)."""

    def __init__(self, prefix: str = "", template: str | None = None, function: str | None = None,
                 include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        if template and function:
            raise ValueError("give a name template or a name function, not both")
        self.prefix = prefix.strip("/")
        self.template = template
        self.function: Callable[[PurePosixPath], str | None] | None = load_function(function) if function else None
        self.include = [g.lower() for g in include] or list(IMAGE_GLOBS)
        self.exclude = [g.lower() for g in exclude]

    def wanted(self, rel: PurePosixPath) -> bool:
        """Whether the include/exclude globs select ``rel`` (matched against the path and its file name)."""
        text, base = str(rel).lower(), rel.name.lower()

        def hit(globs: list[str]) -> bool:
            return any(fnmatch.fnmatchcase(text, g) or fnmatch.fnmatchcase(base, g) for g in globs)

        return hit(self.include) and not hit(self.exclude)

    def name(self, rel: PurePosixPath) -> str | None:
        """The image name for ``rel``, prefix included; None to skip it."""
        if self.function is not None:
            name = self.function(rel)
        else:
            stem_path = str(rel.with_suffix("")) if rel.suffix else str(rel)
            if self.template:
                parts = [*rel.parts[:-1], rel.stem]
                parent = str(rel.parent)
                name = self.template.format(path=stem_path, rel=str(rel), dir="" if parent == "." else parent,
                                            stem=rel.stem, ext=rel.suffix[1:].lower(), parts=parts)
            else:
                name = stem_path
        if name is None:
            return None
        name = name.strip("/")
        return f"{self.prefix}/{name}" if self.prefix else name


def upload_target(name: str, rel: PurePosixPath) -> str:
    """What to send as the path: the name plus an image extension, which the server strips.

    Always adding one keeps a name that itself ends in ``.png`` (say) intact.
    """
    ext = rel.suffix[1:].lower()
    return f"{name}.{ext if kind_for_extension(ext) is not None else 'jpg'}"


def load_function(spec: str) -> Callable[[PurePosixPath], str | None]:
    """``package.module:function`` -> the function."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"name function {spec!r}: expected module:function")
    fn = getattr(importlib.import_module(module), attr, None)
    if not callable(fn):
        raise ValueError(f"name function {spec!r}: {attr} is not a function in {module}")  # noqa: TRY004
    return fn
