"""File helpers shared by the synthetic writers (modalities and stimuli)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def safe_name(name: Any) -> str:
    """``name`` as a file-name part: characters other than letters, digits, ``-``, ``_`` -> ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))


def write_atomic(path: Path, write: Callable[..., object]) -> None:
    """Write ``path`` through ``write(tmp)`` and move it into place (skip if it exists).

    The temporary file is a hidden ``.tmp-*`` sibling with the same ending as ``path``.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def study_relative(path: Path, study: Any) -> str:
    """``path`` relative to ``study.path`` (POSIX), or as given when outside it."""
    root = getattr(study, "path", None)
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
