"""Fetch exactly the files a selection of events needs: git-annex / DataLad, or plain HTTP(S).

:func:`fetch` lists what the selection needs (:func:`~neuralset.studies.fetch.plan.needed_files`),
skips what is already on disk (so it is idempotent), and downloads the rest with one backend:

* ``"annex"`` (:mod:`~neuralset.studies.fetch.annex`): ``git annex get``, for datasets installed
  with DataLad or git-annex (OpenNeuro's DataLad mirrors, lab datasets); resumable and verified
  by git-annex itself;
* an ``http(s)://`` URL prefix (:mod:`~neuralset.studies.fetch.http`): plain downloads, resumed
  with ``Range`` requests and verified against the git-annex key's checksum when the pointer has
  one (OpenNeuro: :func:`~neuralset.studies.fetch.http.openneuro_url`); the default for a
  metadata mirror of a remote dataset (:mod:`~neuralset.studies.fetch.mirror`), from the URL it
  was mirrored from.

In a DataLad superdataset, the subdatasets holding needed files are installed first (metadata
only, :mod:`~neuralset.studies.fetch.subdatasets`), then ``git annex get`` runs in each dataset.

A progress bar counts bytes. Every failure is collected, then reported at once by
:class:`FetchError` (with the reason of each file); files fetched before a failure stay fetched.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import FetchError
from .plan import MissingFilesError, NeededFile, check_present, format_bytes, needed_files, summary

if TYPE_CHECKING:
    from ...segments import Segments

__all__ = [
    "fetch",
    "FetchReport",
    "FetchError",
    "MissingFilesError",
    "NeededFile",
    "needed_files",
    "check_present",
    "summary",
    "format_bytes",
    "resolve_source",
]


@dataclasses.dataclass(frozen=True)
class FetchReport:
    """What :func:`fetch` did."""

    needed: int
    already_present: int
    fetched: int
    bytes_fetched: int
    source: str

    def __str__(self) -> str:
        return (
            f"{self.needed} files needed: {self.already_present} already present, "
            f"{self.fetched} fetched ({format_bytes(self.bytes_fetched)}) from {self.source or '-'}"
        )


def resolve_source(root: Path, source: str, missing: list[NeededFile]) -> str:
    """The backend to use: ``source`` when given, else the URL a metadata mirror was made from,
    else ``"annex"`` in a git-annex repository."""
    if source:
        return source
    from .annex import INSTALL_HINT, is_annex_repo
    from .mirror import mirror_source

    mirrored = mirror_source(root)
    if mirrored:
        return mirrored
    if is_annex_repo(root):
        return "annex"
    annexed = any(f.state.key is not None for f in missing)
    hint = (
        "these are git-annex pointers but the folder is not a git-annex repository (a copy of "
        "one?): pass source='https://...' to download over HTTP(S), or clone it with DataLad"
        if annexed
        else "pass source='https://...' (a URL prefix mirroring the dataset), or copy the files"
    )
    shown = ", ".join(str(f.path) for f in missing[:3])
    raise FetchError(
        f"no source to fetch {len(missing)} missing files from ({shown}...) under {root}: {hint}. "
        f"For git-annex datasets, {INSTALL_HINT}"
    )


def fetch(
    selection: pd.DataFrame | Segments,
    *,
    root: str | Path,
    source: str = "",
    progress: bool = True,
    jobs: int = 1,
) -> FetchReport:
    """Fetch the files ``selection`` needs into the dataset at ``root`` (see the module docs).

    Parameters
    ----------
    selection
        An events table (every data event's files) or segments (the data events they overlap).
    root
        The dataset root (the study's ``path``).
    source
        ``"annex"``, an ``http(s)://`` prefix, or ``""`` (git-annex when ``root`` is a git-annex
        repository).
    progress
        Show a progress bar in bytes.
    jobs
        Parallel transfers.

    Raises
    ------
    FetchError
        Naming every file that could not be fetched and why (missing tool, unreachable server,
        checksum mismatch...).
    """
    root = Path(root)
    files = needed_files(selection)
    missing = [f for f in files if not f.present]
    if not missing:
        return FetchReport(len(files), len(files), 0, 0, source)
    backend = resolve_source(root, source, missing)
    if backend == "annex" and _install_subdatasets(root, missing):
        files = needed_files(selection)  # their pointers (and companions) are there now
        missing = [f for f in files if not f.present]
    total = sum(f.state.size or 0 for f in missing)
    bar, on_bytes = _progress_bar(total, len(missing), progress)
    try:
        failures = _transfer(backend, root, missing, on_bytes, jobs)
    finally:
        if bar is not None:
            bar.close()
    for f in missing:
        if f.path not in failures and not _now_present(f):
            failures[f.path] = "not on disk after the transfer"
    if failures:
        lines = [f"  {path}: {why}" for path, why in list(failures.items())[:20]]
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise FetchError(
            f"{len(failures)} of {len(missing)} files could not be fetched from {backend}:\n"
            + "\n".join(lines)
            + more
            + "\nfiles fetched before the failure stay fetched; run the fetch again to resume"
        )
    fetched_bytes = sum(f.state.size or 0 for f in missing)
    return FetchReport(len(files), len(files) - len(missing), len(missing), fetched_bytes, backend)


def _transfer(
    backend: str, root: Path, missing: list[NeededFile], on_bytes: Any, jobs: int
) -> dict[Path, str]:
    """Run one backend on the missing files; path -> reason of each failure."""
    if backend == "annex":
        from .annex import annex_get, annex_root

        repo = annex_root(root)
        if repo is None:
            raise FetchError(
                f"source='annex' but {root} is not in a git-annex repository; install the "
                "dataset with `datalad install` / `datalad clone`, or use an https:// source"
            )
        failures: dict[Path, str] = {}
        for top, paths in _by_dataset(repo, [f.path for f in missing]).items():
            failures.update(annex_get(top, paths, on_bytes=on_bytes, jobs=jobs))
        return failures
    if backend.startswith(("http://", "https://")):
        from .http import http_get

        return http_get(root, backend, missing, on_bytes=on_bytes, jobs=jobs)
    raise FetchError(f"unknown fetch source {backend!r}: use 'annex' or an http(s):// URL prefix")


def _install_subdatasets(root: Path, missing: list[NeededFile]) -> list[Path]:
    """Install (metadata only) the DataLad subdatasets holding ``missing`` files."""
    from .subdatasets import install_for

    return install_for(root.resolve(), [f.path for f in missing])


def _by_dataset(repo: Path, paths: list[Path]) -> dict[Path, list[Path]]:
    """``paths`` grouped by the (sub)dataset holding each: ``git annex get`` runs in each one."""
    from .annex import annex_root

    out: dict[Path, list[Path]] = {}
    for path in paths:
        out.setdefault(annex_root(path.parent) or repo, []).append(path)
    return out


def _now_present(need: NeededFile) -> bool:
    from ..file_state import file_state

    return file_state(need.path).present


def _progress_bar(total: int, n_files: int, enabled: bool) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total or None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"fetch {n_files} files",
    )
    lock = threading.Lock()

    def on_bytes(n: int) -> None:
        with lock:
            bar.update(n)

    return bar, on_bytes
