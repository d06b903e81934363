"""Run the benchmarks under the repository's .venv when the Python they were started with lacks the server."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def ensure_interpreter(modules: tuple[str, ...] = ("gunicorn", "PIL", "yaml", "image_repo")) -> None:
    """Re-exec under .venv/bin/python when one of ``modules`` cannot be imported here; exit saying how if none is there."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as e:
        venv_python = REPO / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
            os.execv(str(venv_python), [str(venv_python), str(Path(sys.argv[0]).resolve()), *sys.argv[1:]])
        sys.exit(f"bench: {e}. Install the server first: ./run test (or python3 -m venv .venv && .venv/bin/pip install -e .)")
