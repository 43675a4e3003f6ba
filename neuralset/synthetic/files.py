"""File helpers shared by the synthetic writers (modalities and stimuli)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: True inside :func:`dry_run`: writers compute their events but write no file.
_DRY_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("synthetic_dry_run", default=False)


@contextlib.contextmanager
def dry_run() -> Iterator[None]:
    """Within this block the synthetic writers return their events and write nothing."""
    token = _DRY_RUN.set(True)
    try:
        yield
    finally:
        _DRY_RUN.reset(token)


def is_dry_run() -> bool:
    """Whether writers are in :func:`dry_run` mode."""
    return _DRY_RUN.get()


def must_write(path: Path) -> bool:
    """Whether a writer should write ``path``: it is missing and this is not a dry run."""
    return not _DRY_RUN.get() and not path.exists()


def safe_name(name: Any) -> str:
    """``name`` as a file-name part: characters other than letters, digits, ``-``, ``_`` -> ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))


def write_atomic(path: Path, write: Callable[..., object]) -> None:
    """Write ``path`` through ``write(tmp)`` and move it into place (skip if it exists, or in a
    :func:`dry_run`).

    The temporary file is a hidden ``.tmp-*`` sibling with the same ending as ``path``.
    """
    if not must_write(path):
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
