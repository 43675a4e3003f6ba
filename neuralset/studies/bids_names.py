"""Checks of what :class:`~neuralset.studies.bids.BidsStudy` discovers: recording names whose
entities cannot be read, and selections (``subjects``, ``tasks``...) that select nothing.

Both would otherwise leave recordings out of the events table, or give them the wrong task,
without a word.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bids_files import BidsError, Recording

#: one ``key-label`` part of a BIDS file name
_KEY_LABEL = re.compile(r"[a-zA-Z]+-[a-zA-Z0-9]+")

__all__ = ["check_entities", "check_selection"]


def check_entities(path: Path, end: str) -> None:
    """Refuse a recording file name (ending with ``end``, e.g. ``_eeg.vhdr``) whose parts before
    the suffix are not all ``key-label``.

    :func:`parse_entities` skips such a part (``task-n-back``, ``task-n_back``, a label with
    ``é`` or ``.``), which would silently give the recording no task, or the wrong one, or
    leave the file out.
    """
    for part in path.name[: -len(end)].split("_"):
        if not _KEY_LABEL.fullmatch(part):
            raise BidsError(
                f"{path}: {part!r} is not a BIDS entity (key-label, the label made of letters "
                "and digits only), so the file's subject, session, task or run cannot be told; "
                "rename it (e.g. 'task-nback' for 'task-n-back' or 'task-n_back')"
            )


#: BidsStudy selection field -> (entity, or "" for the datatype)
_SELECTIONS = {
    "datatypes": "",
    "subjects": "sub",
    "tasks": "task",
    "echoes": "echo",
    "spaces": "space",
}


def check_selection(
    study: Any, found: list[Recording], every: Callable[[], list[Recording]]
) -> None:
    """Refuse a label of ``study``'s ``datatypes``, ``subjects``, ``tasks``, ``echoes`` or
    ``spaces`` that selects no recording of ``found`` (the selected ones), naming the labels
    of ``every()`` recording (a subject or task missing from the table would go unnoticed)."""
    for field, entity in _SELECTIONS.items():
        wanted: tuple[str, ...] = getattr(study, field)
        if not wanted:
            continue
        labels = {r.entities.get(entity) if entity else r.datatype for r in found}
        missing = [w for w in wanted if w not in labels]
        if not missing:
            continue
        every_label = (r.entities.get(entity) if entity else r.datatype for r in every())
        known = sorted({label for label in every_label if label is not None})
        names = ", ".join(map(repr, missing))
        one = len(missing) == 1
        if all(m in known for m in missing):
            others = {f: getattr(study, f) for f in _SELECTIONS if f != field and getattr(study, f)}
            raise BidsError(
                f"BidsStudy.{field}: {names} {'has' if one else 'have'} no recording with the other selections "
                f"({', '.join(f'{f}={v!r}' for f, v in others.items())}) in {study.path}; "
                "remove it, or widen those"
            )
        listed = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
        fix = (
            f"give labels without the '{entity}-' prefix, as file names spell them"
            if entity
            else ""
        )
        if field == "spaces" and study.fmri_derivatives is None:
            fix = "spaces select among fmri_derivatives' runs: set fmri_derivatives"
        raise BidsError(
            f"BidsStudy.{field}: {names} {'is' if one else 'are'} not in {study.path}, which has "
            f"{listed or 'none'}{'; ' + fix if fix else ''}"
        )
