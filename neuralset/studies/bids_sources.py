"""Where a :class:`~neuralset.studies.bids.BidsStudy`'s files come from: a remote mirror, subdatasets.

The hooks of ``BidsStudy`` into :mod:`neuralset.studies.fetch`:

* :func:`build_sources` (``BidsStudy.build``, run by ``events()``): mirror the metadata of
  ``remote`` into ``path`` when not done yet (:func:`~neuralset.studies.fetch.mirror.mirror_metadata`),
  and install the DataLad subdatasets discovery reads when ``subdatasets="install"``;
* :func:`check_sources` (before discovery, which writes nothing): refuse an incomplete mirror,
  and subdatasets discovery would read but that are not installed (unless
  ``subdatasets="installed"``), naming them and the fix;
* :func:`sources_key`: with ``subdatasets="installed"``, which subdatasets are installed is part
  of the cached events' key (installing one more gives a new table, never a stale one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .bids_files import BidsError

if TYPE_CHECKING:
    from .bids import BidsStudy

__all__ = ["build_sources", "check_sources", "sources_key", "reads"]


def build_sources(study: BidsStudy) -> None:
    """Mirror ``study.remote`` (once) and install subdatasets when asked (see the module doc)."""
    if study.remote:
        from .fetch.mirror import mirror_info, mirror_metadata

        info = mirror_info(study.path)
        if info is None or not info.get("complete") or info.get("remote") != study.remote:
            mirror_metadata(study.remote, study.path, listing=study.remote_listing)
    if study.subdatasets == "install" and (study.path / ".gitmodules").exists():
        from .fetch.subdatasets import install_for, subdatasets

        wanted = [s.path for s in subdatasets(study.path) if reads(study, s.path)]
        install_for(study.path, wanted)


def check_sources(study: BidsStudy) -> None:
    """Raise before discovery when the files it reads are not there (see the module doc)."""
    from .fetch.mirror import MIRROR_FILE, check_mirror

    if study.remote or (study.path / MIRROR_FILE).exists():
        check_mirror(study.path, study.remote)
    if study.subdatasets != "installed" and (study.path / ".gitmodules").exists():
        from .fetch.subdatasets import uninstalled_error

        root = Path(os.path.abspath(study.path))
        message = uninstalled_error(root, lambda rel: reads(study, root / rel))
        if message:
            raise BidsError(message)


def sources_key(study: BidsStudy) -> str:
    """The installed subdatasets, with ``subdatasets="installed"`` ("" otherwise)."""
    if study.subdatasets != "installed":
        return ""
    from ..hashing import chain_keys
    from .fetch.subdatasets import subdatasets

    root = Path(os.path.abspath(study.path))
    installed = [
        s.path.relative_to(root).as_posix()
        for s in subdatasets(study.path)
        if s.installed and reads(study, s.path)
    ]
    return chain_keys("installed-subdatasets", *installed) if installed else ""


def reads(study: BidsStudy, path: Path) -> bool:
    """Whether discovery reads files under ``path`` (a subdataset's folder).

    Subject folders (those of ``subjects`` when set) and the ``fmri_derivatives`` folder;
    not ``sourcedata``, ``stimuli`` or other derivatives (a fetch installs what it needs).
    """
    root = Path(os.path.abspath(study.path))
    path = Path(os.path.abspath(path))
    try:
        rel = path.relative_to(root).parts
    except ValueError:
        return False
    if not rel:
        return True
    if rel[0].startswith("sub-"):
        return not study.subjects or rel[0][4:] in study.subjects
    if study.fmri_derivatives is not None:
        deriv = Path(os.path.abspath(study._derivatives_root()))
        return path == deriv or deriv in path.parents or path in deriv.parents
    return False
