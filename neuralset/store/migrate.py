"""Re-keying the entries of a store of an older format, crash-safely (used by migrations).

:func:`rekey` moves each entry from its legacy key to its new key in three atomic steps: the
array files are hard-linked (copied where links are not supported) into the new entry's
folder, file by file through a temporary name; the new record is committed to the index
(marked ``migrated_from``); then the legacy record is deleted and its folder removed. At any
instant each entry is complete under its legacy key, its new key, or both, so a crash leaves
a usable store, and running the migration again resumes where it stopped.

The store stays in its old format (reads raise
:class:`~neuralset.store.format.StoreFormatError`) until :func:`finish` records the new
format, which it does only when no legacy entry remains (or when told to drop them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .format import STORE_FORMAT, read_format, write_format
from .store import EntryInfo, Store

__all__ = ["RekeyResult", "rekey", "legacy_entries", "finish", "legacy_value", "unchecked"]


@dataclass
class RekeyResult:
    """What :func:`rekey` did: pairs moved, already moved, and absent from the store."""

    migrated: list[tuple[str, str, str]]
    already: int = 0
    absent: int = 0


@contextlib.contextmanager
def unchecked(store: Store) -> Iterator[Store]:
    """``store`` with its format check suspended (for committing a migration's own records)."""
    before = store._format_ok
    store._format_ok = True
    try:
        yield store
    finally:
        store._format_ok = before


def _index(store: Store) -> Any:
    index = store._open_index(create=False)
    if index is None:
        raise FileNotFoundError(f"no store index in {store.root}: nothing to migrate")
    return index


def legacy_value(store: Store, key: str) -> Any:
    """The value stored under ``key`` whatever the store's format (``None`` if absent)."""
    index = store._open_index(create=False)
    record = index.get(key) if index is not None else None
    return None if record is None else record.get("value")


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.link(src, tmp)
    except OSError:  # no hard links here (some network or FAT file systems): copy
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
    os.replace(tmp, dst)


def _move_entry(store: Store, index: Any, old: str, new: str, record: dict[str, Any]) -> None:
    if record.get("kind") == "arrays":
        src, dst = store.array_dir(old), store.array_dir(new)
        dst.mkdir(parents=True, exist_ok=True)
        for name in record.get("files", {}):
            _link_or_copy(src / f"{name}.npy", dst / f"{name}.npy")
    moved = dict(record)
    moved["migrated_from"] = old
    index.set(new, moved)  # step 2: the entry exists under its new key (atomic)
    index.delete(old)  # step 3: and no longer under the legacy one
    shutil.rmtree(store.array_dir(old), ignore_errors=True)


def rekey(store: Store, pairs: Iterable[tuple[str, str, str]]) -> RekeyResult:
    """Move each ``(legacy key, new key, label)`` entry of ``store`` to its new key.

    Pairs whose legacy key is absent count as ``already`` moved when the new key is present
    (the folder a crash may have left behind is removed), else as ``absent``.
    """
    index = _index(store)
    result = RekeyResult(migrated=[])
    for old, new, label in dict.fromkeys(pairs):
        if old == new:
            continue
        record = index.get(old)
        if record is None:
            if new in index:
                result.already += 1
                shutil.rmtree(store.array_dir(old), ignore_errors=True)
            else:
                result.absent += 1
            continue
        if new in index:  # moved before a crash, legacy record not yet deleted
            index.delete(old)
            shutil.rmtree(store.array_dir(old), ignore_errors=True)
            result.already += 1
            continue
        _move_entry(store, index, old, new, record)
        result.migrated.append((old, new, label))
    return result


def legacy_entries(store: Store) -> list[EntryInfo]:
    """Entries of a store of an older format that no migration has re-keyed yet."""
    if read_format(store.root) in (None, STORE_FORMAT):
        return []
    index = _index(store)
    migrated = {
        key for key in index.iterkeys() if (index.get(key) or {}).get("migrated_from") is not None
    }
    return [e for e in store.entries() if e.key not in migrated]


def finish(store: Store, *, drop_legacy: bool = False) -> list[EntryInfo]:
    """Record this version's format once no legacy entry remains; the legacy entries left.

    With ``drop_legacy``, the remaining legacy entries are deleted first (they could never be
    read by this version). Returns the legacy entries that remain (empty once finished).
    """
    remaining = legacy_entries(store)
    if remaining and drop_legacy:
        for entry in remaining:
            store.delete(entry.key)
        remaining = []
    if not remaining and read_format(store.root) != STORE_FORMAT:
        write_format(store.root)
    return remaining
