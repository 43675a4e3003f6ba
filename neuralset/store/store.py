"""The store: a small diskcache index plus large memory-mapped ``.npy`` arrays.

Layout under the store root::

    FORMAT                 {"format": 2}: the store format (see :mod:`neuralset.store.format`)
    index/                 diskcache (SQLite) index: key -> entry record, eviction off
    arrays/ab/<key>/x.npy  arrays of one entry, written atomically, read with mmap_mode="r"

An entry becomes visible only when its record is committed to the index, which happens after
all its array files are completely written (temporary name, fsync, ``os.replace``). A process
killed mid-write therefore leaves at most orphan temporary files, never an entry that reads
back wrong. Cluster workers call :meth:`Store.stage_arrays` (files only) and hand the returned
record to one driver process that calls :meth:`Store.commit` (SQLite is never written by many
hosts at once).

Reads, presence checks and commits first check the store's format once per instance: a store
written by neuralset 0.1 raises :class:`~neuralset.store.format.StoreFormatError` (migrate it
with ``neuralset cache migrate``); listing, describing and clearing entries work on any format.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .format import (
    STORE_FORMAT,
    StoreFormatError,
    legacy_message,
    newer_message,
    read_format,
    write_format,
)

__all__ = [
    "Store",
    "EntryInfo",
    "default_store_root",
    "StoreError",
    "MissingEntryError",
    "EntryKindError",
    "StoreFormatError",
    "STORE_FORMAT",
    "provenance",
]


class StoreError(RuntimeError):
    """A store entry is missing or damaged; the message says how to recover."""


class MissingEntryError(StoreError):
    """No entry is committed under the key (nothing prepared yet): the one "not prepared" case.

    Damaged or missing files of a committed entry raise :class:`StoreError`, and unreadable
    ones ``PermissionError``, never this: they are not cured by preparing again.
    """


class EntryKindError(StoreError):
    """The entry holds arrays where a value was asked for, or the reverse."""


def default_store_root() -> Path:
    """``$NEURALSET_CACHE`` if set, else ``~/.cache/neuralset`` (created on first write only)."""
    env = os.environ.get("NEURALSET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuralset"


def _library_versions() -> dict[str, str]:
    import sys

    from .. import __version__

    versions = {"python": platform.python_version(), "neuralset": __version__}
    for name in ("numpy", "pandas", "mne", "nilearn", "transformers", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def provenance(config: Any = None, **extra: Any) -> dict[str, Any]:
    """Provenance record: config, library versions, host, time, plus ``extra`` fields."""
    record: dict[str, Any] = {
        "versions": _library_versions(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "created": time.time(),
    }
    if config is not None:
        record["config"] = config.to_dict() if hasattr(config, "to_dict") else repr(config)
        record["config_class"] = f"{type(config).__module__}.{type(config).__qualname__}"
    record.update(extra)
    return record


@dataclass(frozen=True)
class EntryInfo:
    """Summary of one store entry."""

    key: str
    kind: str
    nbytes: int
    created: float
    label: str


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Store:
    """Index + memory-mapped arrays under one folder.

    Parameters
    ----------
    root
        Folder of the store; defaults to :func:`default_store_root`. Nothing is created until
        the first write.
    read_only
        Open the index without writing anything, not even SQLite's side files (what
        ``neuralset inspect`` uses); writing raises :class:`StoreError`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> store = Store(tempfile.mkdtemp())
    >>> store.put_arrays("k" * 32, {"data": np.arange(3.0)}, meta={"sfreq": 1.0})
    >>> store.get_arrays("k" * 32)["data"].tolist()
    [0.0, 1.0, 2.0]
    """

    def __init__(self, root: str | Path | None = None, *, read_only: bool = False) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()
        self.read_only = bool(read_only)
        self._index: Any = None
        self._index_pid: int | None = None
        self._format_ok = False

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}{', read_only=True' if self.read_only else ''})"

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], read_only=state.get("read_only", False))  # type: ignore[misc]

    # -- format --------------------------------------------------------------------------
    def check_format(self, *, create: bool = False) -> None:
        """Raise :class:`StoreFormatError` unless the store is in this version's format.

        A store not created yet passes (and, with ``create``, gets its ``FORMAT`` file). The
        answer is remembered once positive; a format-1 store is checked again on every call, so
        a migration finished by another process is seen at once.
        """
        if self._format_ok:
            return
        fmt = read_format(self.root)
        if fmt is None:
            if not create:
                return
            write_format(self.root)  # before the index: a store never exists without FORMAT
        elif fmt == 1:
            raise StoreFormatError(legacy_message(self.root))
        elif fmt != STORE_FORMAT:
            raise StoreFormatError(newer_message(self.root, fmt))
        self._format_ok = True

    # -- index ---------------------------------------------------------------------------
    def _data_index(self, create: bool) -> Any:
        """The index, for reading or writing entries: the format is checked first."""
        self.check_format(create=create)
        return self._open_index(create)

    def _open_index(self, create: bool) -> Any:
        if create and self.read_only:
            raise StoreError(f"store {self.root} is opened read-only; open it with Store(root)")
        if self._index is not None and self._index_pid == os.getpid():
            return self._index
        index_dir = self.root / "index"
        if self.read_only:
            if not (index_dir / "cache.db").exists():
                return None
            self._index, self._index_pid = _ReadOnlyIndex(index_dir), os.getpid()
            return self._index
        if not create and not index_dir.exists():
            return None
        import diskcache

        self._index = diskcache.Cache(
            str(index_dir), eviction_policy="none", size_limit=2**62, statistics=False
        )
        self._index_pid = os.getpid()
        return self._index

    def _record(self, key: str, *, check: bool = True) -> dict[str, Any] | None:
        index = self._data_index(create=False) if check else self._open_index(create=False)
        if index is None:
            return None
        return index.get(key)

    def has(self, key: str) -> bool:
        """Whether an entry is committed under ``key``."""
        index = self._data_index(create=False)
        return index is not None and key in index

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys among ``keys`` that have no committed entry (batched, indexed lookups)."""
        keys = list(keys)
        index = self._data_index(create=False)
        if index is None or not keys:
            return keys
        present = self._present(index, keys)
        return [k for k in keys if k not in present]

    @staticmethod
    def _present(index: Any, keys: list[str]) -> set[str]:
        """The keys among ``keys`` in the index: indexed SQL lookups, 500 keys per query."""
        sql = getattr(index, "_sql", None)
        if sql is None:  # not the diskcache we know: scan every key
            return set(index.iterkeys())
        unique = list(dict.fromkeys(k for k in keys if isinstance(k, str)))
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

    def keys(self) -> Iterator[str]:
        """All committed keys."""
        index = self._open_index(create=False)
        if index is None:
            return iter(())
        return iter(list(index.iterkeys()))

    # -- small values --------------------------------------------------------------------
    def put_value(
        self, key: str, value: Any, *, label: str = "", prov: Mapping[str, Any] | None = None
    ) -> None:
        """Store a small picklable value (embedding, table, metadata) under ``key``."""
        record = {
            "kind": "value",
            "value": value,
            "label": label,
            "provenance": dict(prov or provenance()),
            "nbytes": 0,
        }
        self.commit(key, record)

    def get_value(self, key: str) -> Any:
        """The small value stored under ``key``."""
        record = self._require(key)
        if record["kind"] != "value":
            raise EntryKindError(f"entry {key} holds arrays, not a value; use get_arrays")
        return record["value"]

    # -- arrays --------------------------------------------------------------------------
    def array_dir(self, key: str) -> Path:
        return self.root / "arrays" / key[:2] / key

    def stage_arrays(
        self,
        key: str,
        arrays: Mapping[str, np.ndarray],
        *,
        meta: Mapping[str, Any] | None = None,
        label: str = "",
        prov: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the array files of an entry (atomically, one by one) without indexing it.

        Returns the record to pass to :meth:`commit`; until then the entry does not exist.
        """
        if self.read_only:
            raise StoreError(f"store {self.root} is opened read-only; open it with Store(root)")
        folder = self.array_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        nbytes = 0
        for name, array in arrays.items():
            if not name.isidentifier():
                raise ValueError(f"array name {name!r} must be an identifier")
            array = np.asarray(array)
            _write_npy_atomic(folder / f"{name}.npy", array)
            files[name] = {"shape": list(array.shape), "dtype": array.dtype.str}
            nbytes += int(array.nbytes)
        return {
            "kind": "arrays",
            "files": files,
            "meta": dict(meta or {}),
            "label": label,
            "provenance": dict(prov or provenance()),
            "nbytes": nbytes,
        }

    def commit(self, key: str, record: Mapping[str, Any]) -> None:
        """Make an entry visible by writing its record to the index (the atomic step)."""
        index = self._data_index(create=True)
        index.set(key, dict(record))

    def put_arrays(
        self,
        key: str,
        arrays: Mapping[str, np.ndarray],
        *,
        meta: Mapping[str, Any] | None = None,
        label: str = "",
        prov: Mapping[str, Any] | None = None,
    ) -> None:
        """Write arrays then commit the entry."""
        self.commit(key, self.stage_arrays(key, arrays, meta=meta, label=label, prov=prov))

    def get_arrays(self, key: str) -> dict[str, np.ndarray]:
        """The arrays of an entry, memory-mapped read-only."""
        record = self._require(key)
        if record["kind"] != "arrays":
            raise EntryKindError(f"entry {key} holds a value, not arrays; use get_value")
        folder = self.array_dir(key)
        out = {}
        for name, spec in record["files"].items():
            path = folder / f"{name}.npy"
            try:  # a PermissionError (naming the file) is raised as itself
                arr = np.load(path, mmap_mode="r")
            except FileNotFoundError:
                raise StoreError(
                    f"array file {path} of entry {key} is missing (deleted outside neuralset?); "
                    f"{self._remedy(key)}"
                ) from None
            except (ValueError, EOFError, OSError) as err:
                if isinstance(err, PermissionError):
                    raise
                raise StoreError(
                    f"array file {path} of entry {key} is damaged ({err}); {self._remedy(key)}"
                ) from None
            if list(arr.shape) != spec["shape"] or arr.dtype.str != spec["dtype"]:
                raise StoreError(
                    f"array file {path} of entry {key} holds {arr.dtype.str} {list(arr.shape)}, "
                    f"not the {spec['dtype']} {spec['shape']} of its index record; "
                    f"{self._remedy(key)}"
                )
            out[name] = arr
        return out

    def meta(self, key: str) -> dict[str, Any]:
        """The metadata dictionary of an array entry."""
        return dict(self._require(key).get("meta", {}))

    def info(self, key: str) -> dict[str, Any]:
        """The whole index record of an entry (kind, files, meta, label, provenance).

        Works on a store of any format (``neuralset cache info``).
        """
        record = dict(self._require(key, check=False))
        record.pop("value", None)
        return record

    def _require(self, key: str, *, check: bool = True) -> dict[str, Any]:
        record = self._record(key, check=check)
        if record is None:
            raise MissingEntryError(f"no store entry {key} in {self.root}; run prepare() first")
        return record

    def _remedy(self, key: str) -> str:
        return (
            f"remove the entry with `neuralset cache clear {key} --store {self.root}` "
            "and prepare again"
        )

    # -- management ----------------------------------------------------------------------
    def entries(self) -> list[EntryInfo]:
        """Summaries of all entries, oldest first."""
        index = self._open_index(create=False)
        if index is None:
            return []
        out = []
        for key in index.iterkeys():
            record = index.get(key)
            if record is None:
                continue
            out.append(
                EntryInfo(
                    key=key,
                    kind=record["kind"],
                    nbytes=int(record.get("nbytes", 0)),
                    created=float(record.get("provenance", {}).get("created", 0.0)),
                    label=str(record.get("label", "")),
                )
            )
        return sorted(out, key=lambda e: e.created)

    def delete(self, key: str) -> None:
        """Remove one entry (index first, then files)."""
        if self.read_only:
            raise StoreError(f"store {self.root} is opened read-only; open it with Store(root)")
        index = self._open_index(create=False)
        if index is not None:
            index.delete(key)
        shutil.rmtree(self.array_dir(key), ignore_errors=True)

    def clear(self, *, older_than: float | None = None) -> int:
        """Remove all entries, or those created more than ``older_than`` seconds ago.

        Clearing every entry of a store of an older format leaves an empty store of this
        version's format.
        """
        now = time.time()
        removed = 0
        for entry in self.entries():
            if older_than is None or now - entry.created > older_than:
                self.delete(entry.key)
                removed += 1
        if older_than is None and read_format(self.root) == 1:
            write_format(self.root)
        return removed

    def size_bytes(self) -> int:
        """Bytes used on disk by the store folder."""
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


class _ReadOnlyIndex:
    """The store index read through a read-only SQLite connection: writes nothing.

    diskcache writes its settings whenever it opens an index, and SQLite creates its ``-wal``
    and ``-shm`` files even for a read-only connection; so when no other connection has them
    (no ``-wal`` file) the database is opened as immutable, else read-only beside its writer.
    Values are decoded by diskcache's own ``Disk``.
    """

    def __init__(self, index_dir: Path) -> None:
        import sqlite3
        from urllib.parse import quote

        import diskcache

        db = index_dir / "cache.db"
        live = db.with_name("cache.db-wal").exists()
        uri = f"file:{quote(str(db))}?{'mode=ro' if live else 'immutable=1'}"
        self._con = sqlite3.connect(uri, uri=True, check_same_thread=False)
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
        return isinstance(key, str) and bool(Store._present(self, [key]))

    def iterkeys(self) -> Iterator[str]:
        rows = self._sql("SELECT key FROM Cache WHERE raw = 1 ORDER BY rowid").fetchall()
        return iter([row[0] for row in rows])
