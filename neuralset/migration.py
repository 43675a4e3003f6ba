"""Migrating a store written by neuralset 0.1 (format 1) to this version's keys (format 2).

Format 1 keys named config classes by module path; format 2 keys name them by YAML kind, so
the same config gives another key. A format-1 store is detected (every read raises
:class:`~neuralset.store.StoreFormatError`) and re-keyed here, for the entries that a pipeline
(or a set of extractors over an events table) uses: each item's legacy key is derived the 0.1
way (:func:`neuralset.hashing.legacy_keys`) next to its new key, and the entry is moved
(:func:`neuralset.store.migrate.rekey`: crash-safe, resumable).

The store opens in format 2 once no legacy entry remains: migrate every pipeline that uses
the store, then finish (``finish=True`` / ``--finish``), which removes the legacy entries no
migrated pipeline claimed (their keys cannot be derived any more, so they could never be
read). Command line::

    neuralset cache migrate CONFIG.yaml [CONFIG2.yaml ...] [--store ROOT] [--finish]
    neuralset cache migrate --finish --store ROOT
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .hashing import chain_keys, legacy_keys
from .store import EntryInfo, Store
from .store import migrate as _migrate
from .store.format import STORE_FORMAT, read_format

__all__ = ["MigrationReport", "migrate_store", "finish_migration", "legacy_key_pairs"]


@dataclasses.dataclass
class MigrationReport:
    """What a migration did to a store.

    Attributes
    ----------
    root
        The store folder.
    migrated
        ``(legacy key, new key, label)`` of each entry moved by this run.
    already
        Entries of the pipeline that an earlier (interrupted or other) run had moved.
    absent
        Items of the pipeline that the store does not hold (never prepared).
    remaining
        Legacy entries that no migration has claimed yet.
    format
        The store's format after this run (2 once no legacy entry remains).
    dropped
        Legacy entries removed by finishing (no pipeline claimed them).
    """

    root: Path
    migrated: list[tuple[str, str, str]]
    already: int
    absent: int
    remaining: list[EntryInfo]
    format: int
    dropped: list[EntryInfo] = dataclasses.field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the store is in this version's format (open for reads and prepare)."""
        return self.format == STORE_FORMAT

    def __str__(self) -> str:
        lines = [
            f"store {self.root}: migrated {_entries(len(self.migrated))} "
            f"({self.already} already migrated, {self.absent} not in the store)"
        ]
        lines += [f"  {old} -> {new}  {label}" for old, new, label in self.migrated]
        if self.remaining:
            lines.append(
                f"{_entries(len(self.remaining), 'legacy ')} "
                f"{'remains' if len(self.remaining) == 1 else 'remain'} "
                "(not used by the pipelines migrated so far):"
            )
            lines += [f"  {e.key}  {e.kind:6s}  {e.label}" for e in self.remaining]
        if self.dropped:
            lines.append(f"removed {_entries(len(self.dropped), 'legacy ')} no pipeline claimed:")
            lines += [f"  {e.key}  {e.kind:6s}  {e.label}" for e in self.dropped]
        if self.finished:
            lines.append(f"the store is in format {STORE_FORMAT}: ready")
        else:
            lines.append(
                f"the store stays in format {self.format} (not readable) while legacy entries "
                "remain: migrate the other pipelines that use it, then run "
                f"`neuralset cache migrate --finish --store {self.root}` to remove the rest"
            )
        return "\n".join(lines)


def _entries(count: int, adjective: str = "") -> str:
    return f"{count} {adjective}{'entry' if count == 1 else 'entries'}"


def _as_extractors(source: Any) -> dict[str, Any]:
    from .extractors.base import Extractor

    if isinstance(source, Extractor):
        return {type(source).__name__: source}
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, Sequence):
        return {f"{type(e).__name__}[{i}]": e for i, e in enumerate(source)}
    raise TypeError(
        f"migrate_store: expected a Pipeline, an Extractor or a collection of extractors, "
        f"got {type(source).__name__}"
    )


def _study_events(pipeline: Any, store: Store) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """The pipeline's events as the legacy run saw them, and the study entry's key pair."""
    study = pipeline.study
    new = chain_keys("study-events", study.key)
    with legacy_keys():
        old = chain_keys("study-events", study.key)
    label = f"events of {type(study).__name__}"
    events = _migrate.legacy_value(store, old)
    if events is None:
        events = _migrate.legacy_value(store, new)
    if events is None:  # not stored (or stored for another path): describe the study again
        events = study.events(None)
    for transform in pipeline.transforms:
        events = transform(events)
    return events, [(old, new, label)]


def legacy_key_pairs(
    extractors: Mapping[str, Any] | Sequence[Any], events: pd.DataFrame
) -> list[tuple[str, str, str]]:
    """``(legacy key, new key, label)`` of every item the extractors store for ``events``."""
    pairs: list[tuple[str, str, str]] = []
    for extractor in _as_extractors(extractors).values():
        new_items = extractor.items(events)
        with legacy_keys():
            old_items = extractor.items(events)
        if len(old_items) != len(new_items):  # pragma: no cover - items() is deterministic
            raise RuntimeError(f"{type(extractor).__name__}.items() is not deterministic")
        pairs += [(o.key, n.key, n.label) for o, n in zip(old_items, new_items)]
    return pairs


def _commit_pending(store: Store) -> None:
    """Commit what an interrupted 0.1 prepare left in ``manifests/`` (under legacy keys)."""
    folder = store.root / "manifests"
    if not folder.is_dir():
        return
    from .execution.records import commit_manifests

    with _migrate.unchecked(store):
        commit_manifests(store, [p for p in folder.iterdir() if p.is_dir()], remove_empty=True)


def _rekey_errors(store: Store, pairs: Iterable[tuple[str, str, str]]) -> None:
    """Move the error entries of failed items to their new keys."""
    from .execution.records import clear_errors, read_errors, write_error

    new_of = {old: new for old, new, _ in pairs}
    for error in read_errors(store, new_of):
        write_error(store, dataclasses.replace(error, key=new_of[error.key]))
        clear_errors(store, [error.key])


def migrate_store(
    store: Store | str | Path,
    source: Any,
    events: pd.DataFrame | None = None,
    *,
    finish: bool = False,
) -> MigrationReport:
    """Re-key the entries that ``source`` uses in a store written by neuralset 0.1.

    Parameters
    ----------
    store
        The store (or its folder).
    source
        A :class:`~neuralset.pipeline.Pipeline` (its study's events entry and every
        extractor's items), or extractors (one, a list or a name -> extractor mapping) whose
        items for ``events`` are re-keyed.
    events
        The events table, for extractors (a pipeline computes its own).
    finish
        Then remove the legacy entries that remain and open the store in format 2.

    Returns
    -------
    MigrationReport
        What was migrated and which legacy entries remain; ``str()`` of it is a report.

    Notes
    -----
    Recording keys include each file's size and modification time: migrate where the data
    files are those the store was prepared from. Running it again resumes an interrupted run.
    """
    from .pipeline import Pipeline

    store = store if isinstance(store, Store) else Store(store)
    fmt = read_format(store.root)
    if fmt is None:
        raise FileNotFoundError(f"no store in {store.root}: nothing to migrate")
    if fmt == STORE_FORMAT:
        return MigrationReport(store.root, [], 0, 0, [], fmt)
    _commit_pending(store)
    if isinstance(source, Pipeline):
        events, pairs = _study_events(source, store)
        pairs += legacy_key_pairs(source.extractors, events)
    else:
        if events is None:
            raise ValueError("migrate_store: give the events table the extractors were prepared on")
        pairs = legacy_key_pairs(source, events)
    result = _migrate.rekey(store, pairs)
    _rekey_errors(store, pairs)
    dropped = _migrate.legacy_entries(store) if finish else []
    remaining = _migrate.finish(store, drop_legacy=finish)
    fmt = read_format(store.root) or STORE_FORMAT
    return MigrationReport(
        store.root, result.migrated, result.already, result.absent, remaining, fmt, dropped
    )


def finish_migration(store: Store | str | Path) -> MigrationReport:
    """Remove the legacy entries no migration claimed and open the store in format 2.

    Parameters
    ----------
    store
        The store (or its folder), after :func:`migrate_store`.
    """
    store = store if isinstance(store, Store) else Store(store)
    if read_format(store.root) is None:
        raise FileNotFoundError(f"no store in {store.root}: nothing to migrate")
    dropped = _migrate.legacy_entries(store)
    _migrate.finish(store, drop_legacy=True)
    fmt = read_format(store.root) or STORE_FORMAT
    return MigrationReport(store.root, [], 0, 0, [], fmt, dropped=dropped)
