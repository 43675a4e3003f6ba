"""Opening the store index: read-write (diskcache), or read-only for a store that cannot be
written (a shared lab store, a read-only mount, an ``inspect``).

:func:`write_denied` tells whether a folder takes writes by trying one (creating and removing
a small file): permission bits, read-only mounts, dropped privileges and full disks all
answer the same way, which ``os.access`` does not (it ignores mounts for root and
capabilities).
"""

from __future__ import annotations

import errno
import os
import pickle
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ReadOnlyIndex", "write_denied", "present_keys", "read_record", "RECORD_ERRORS"]

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)

#: What reading a record whose value file (``index/xx/yy/*.val``) is gone, emptied or cut short
#: raises: an empty pickle ends early (``EOFError``), a cut one is truncated (``UnpicklingError``)
RECORD_ERRORS = (EOFError, OSError, ValueError, pickle.UnpicklingError)


def write_denied(folder: Path) -> str | None:
    """Why ``folder`` (or, if it does not exist, its nearest existing parent) takes no write,
    as a short reason (``"read-only file system"``, ``"permission denied"``); None if it does."""
    target = folder
    while not target.exists():
        if target.parent == target:
            return None
        target = target.parent
    probe = target / f".neuralset-write-probe.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        if err.errno in _DENIED:
            return f"{os.strerror(err.errno or 0).lower()}: {target}"
        return None  # another problem (a full disk): the write itself will say
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
    return None


def read_record(index: Any, key: str) -> Any:
    """``index.get(key)``; a record whose value file is gone raises ``FileNotFoundError``.

    diskcache's ``get`` reads a record whose value file cannot be opened as no record at all,
    while the key stays in the index: ``has`` would call the entry stored and every read say
    it was never prepared.
    """
    record = index.get(key)
    if record is None and key in index:
        raise FileNotFoundError("its value file is missing (deleted outside neuralset?)")
    return record


def present_keys(index: Any, keys: list[str]) -> set[str]:
    """The keys among ``keys`` in ``index``: indexed SQL lookups, 500 keys per query."""
    sql = getattr(index, "_sql", None)
    if sql is None:  # not the diskcache we know: scan every key
        return set(index.iterkeys())
    unique = [k for k in dict.fromkeys(keys) if isinstance(k, str)]
    present: set[str] = set()
    now = time.time()
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        marks = ",".join("?" * len(chunk))
        rows = sql(
            f"SELECT key FROM Cache WHERE raw = 1 AND key IN ({marks}) "
            "AND (expire_time IS NULL OR expire_time > ?)",
            (*chunk, now),
        ).fetchall()
        present.update(row[0] for row in rows)
    return present


class ReadOnlyIndex:
    """The store index read through a read-only SQLite connection: writes nothing.

    diskcache writes its settings whenever it opens an index, and SQLite creates its ``-wal``
    and ``-shm`` files even for a read-only connection; so when no other connection has them
    (no ``-wal`` file) or the folder takes no write, the database is opened as immutable, else
    read-only beside its writer. Values are decoded by diskcache's own ``Disk``.
    """

    def __init__(self, index_dir: Path, *, immutable: bool = False) -> None:
        import sqlite3
        from urllib.parse import quote

        import diskcache

        db = index_dir / "cache.db"
        self._con: Any = None
        if db.with_name("cache.db-wal").exists() and not immutable:
            # beside a writer (or after one was killed): read the log too, which needs a
            # folder that takes SQLite's shared-memory file; else read the database alone
            con = sqlite3.connect(
                f"file:{quote(str(db))}?mode=ro", uri=True, check_same_thread=False
            )
            try:
                con.execute("SELECT 1 FROM Cache LIMIT 1").fetchall()
                self._con = con
            except sqlite3.OperationalError:
                con.close()
        if self._con is None:
            self._con = sqlite3.connect(
                f"file:{quote(str(db))}?immutable=1", uri=True, check_same_thread=False
            )
        self._disk = diskcache.Disk(str(index_dir))

    def _sql(self, query: str, args: tuple[Any, ...] = ()) -> Any:
        return self._con.execute(query, args)

    def get(self, key: str, default: Any = None) -> Any:
        row = self._sql(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1 "
            "AND (expire_time IS NULL OR expire_time > ?)",
            (key, time.time()),
        ).fetchone()
        if row is None:
            return default
        return self._disk.fetch(row[0], row[1], row[2], False)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(present_keys(self, [key]))

    def iterkeys(self) -> Iterator[str]:
        rows = self._sql("SELECT key FROM Cache WHERE raw = 1 ORDER BY rowid").fetchall()
        return iter([row[0] for row in rows])
