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
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    DamagedEntryError,
    EntryKindError,
    MissingEntryError,
    StoreError,
    StoreReadOnlyError,
    no_space,
    storage_error,
)
from .files import check_key, file_problem, header_problem, write_npy_atomic
from .format import (
    STORE_FORMAT,
    StoreFormatError,
    legacy_message,
    newer_message,
    read_format,
    write_format,
)
from .index import RECORD_ERRORS, ReadOnlyIndex, present_keys, read_record, write_denied
from .mapped import MAPPED
from .provenance import EntryInfo, default_store_root, pickled_size, provenance

__all__ = [
    "Store",
    "EntryInfo",
    "default_store_root",
    "StoreError",
    "MissingEntryError",
    "EntryKindError",
    "DamagedEntryError",
    "StoreReadOnlyError",
    "StoreFormatError",
    "STORE_FORMAT",
    "provenance",
]


class Store:
    """Index + memory-mapped arrays under one folder.

    Parameters
    ----------
    root
        Folder of the store; defaults to :func:`default_store_root`. Nothing is created until
        the first write.
    read_only
        Open the index without writing anything, not even SQLite's side files (what
        ``neuralset inspect`` uses); writing raises :class:`StoreReadOnlyError`. A store in a
        location that takes no write (a shared lab store, a read-only mount, a folder of
        another user) is opened read-only by itself: reads work, and a write raises
        :class:`StoreReadOnlyError` saying where and why.

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
        self._read_only = bool(read_only)
        self._denied: tuple[int, str | None] | None = None  # (pid, why writes are refused)
        self._index: Any = None
        self._index_pid: int | None = None
        self._format_ok = False

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}{', read_only=True' if self._read_only else ''})"

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "read_only": self._read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], read_only=state.get("read_only", False))  # type: ignore[misc]

    # -- read-only -----------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """Whether writes are refused: opened with ``read_only=True``, or a location that
        takes no write (checked once per process, by trying one)."""
        return self._read_only or self.write_denied() is not None

    def write_denied(self) -> str | None:
        """Why this store takes no write (``"opened with read_only=True"``, ``"read-only file
        system: /path"``), or None when it does."""
        if self._read_only:
            return "opened with read_only=True"
        if self._denied is None or self._denied[0] != os.getpid():
            self._denied = (os.getpid(), write_denied(self.root))
        return self._denied[1]

    def check_writable(self) -> None:
        """Raise :class:`StoreReadOnlyError` (where, why, what to do) unless writes work here."""
        why = self.write_denied()
        if why is None:
            return
        if self._read_only:
            raise StoreReadOnlyError(
                f"store is read-only at {self.root} (opened with read_only=True); open it with "
                "Store(root) to write"
            )
        raise StoreReadOnlyError(
            f"store is read-only at {self.root} ({why}); reads work, but nothing can be "
            "prepared or removed there: prepare into a writable store (Store(path) or "
            "NEURALSET_CACHE), or ask whoever maintains this store to prepare what is missing"
        )

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
            try:  # before the index: a store never exists without FORMAT
                write_format(self.root)
            except OSError as err:
                raise storage_error(err, self.root / "FORMAT", self.root) from err
        elif fmt == 1:
            raise StoreFormatError(legacy_message(self.root))
        elif fmt != STORE_FORMAT:
            raise StoreFormatError(newer_message(self.root, fmt))
        self._format_ok = True

    # -- index ---------------------------------------------------------------------------
    def _data_index(self, create: bool) -> Any:
        """The index, for reading or writing entries: the format is checked first."""
        if create:
            self.check_writable()
        self.check_format(create=create)
        return self._open_index(create)

    def _open_index(self, create: bool) -> Any:
        if create:
            self.check_writable()
        if self._index is not None and self._index_pid == os.getpid():
            return self._index
        index_dir = self.root / "index"
        if not create and not (index_dir / "cache.db").exists():
            return None
        if self._read_only or (not create and self.write_denied() is not None):
            self._index, self._index_pid = ReadOnlyIndex(index_dir), os.getpid()
            return self._index
        import diskcache

        try:
            self._index = diskcache.Cache(
                str(index_dir), eviction_policy="none", size_limit=2**62, statistics=False
            )
        except sqlite3.OperationalError as err:  # opening writes its settings: a full disk
            if "full" not in str(err):
                raise
            if create:
                raise storage_error(no_space(), index_dir, self.root) from err
            self._index = ReadOnlyIndex(index_dir)  # reads still work on a full disk
        except OSError as err:
            raise storage_error(err, index_dir, self.root) from err
        self._index_pid = os.getpid()
        return self._index

    def _record(self, key: str, *, check: bool = True) -> dict[str, Any] | None:
        index = self._data_index(create=False) if check else self._open_index(create=False)
        if index is None:
            return None
        try:
            return read_record(index, key)  # type: ignore[no-any-return]
        except RECORD_ERRORS as err:  # a value file of diskcache damaged
            if isinstance(err, PermissionError):
                raise
            raise DamagedEntryError(
                f"the index record of entry {key} is damaged ({type(err).__name__}: {err}); "
                f"{self._remedy(key)}",
                key,
            ) from None

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
        present = present_keys(index, keys)
        return [k for k in keys if k not in present]

    def damaged(self, keys: Iterable[str]) -> dict[str, str]:
        """``{key: what is wrong}`` for the committed entries among ``keys`` whose array files
        are missing, empty, cut short or whose header is garbled (one ``stat`` and one header
        read per file; the data is not read).

        ``prepare`` recomputes these entries; ``neuralset cache verify`` also reads the files.
        """
        out = {}
        for key in keys:
            try:
                record = self._record(key)
            except DamagedEntryError as err:
                out[key] = str(err)
                continue
            if record is None or record.get("kind") != "arrays":
                continue
            for name, spec in record["files"].items():
                path = self.array_dir(key) / f"{name}.npy"
                problem = file_problem(path, spec) or header_problem(path, spec)
                if problem is not None:
                    out[key] = f"array file {path} of entry {key} {problem}"
                    break
        return out

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
            "nbytes": pickled_size(value),
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
        return self.root / "arrays" / check_key(key)[:2] / key

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

        Raises
        ------
        StoreReadOnlyError
            The store takes no write.
        OSError
            A full disk (or quota), naming the file and the fix.
        """
        self.check_writable()
        folder = self.array_dir(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise storage_error(err, folder, self.root) from err
        files = {}
        nbytes = 0
        for name, array in arrays.items():
            if not name.isidentifier():
                raise ValueError(f"array name {name!r} must be an identifier")
            array = np.asarray(array)
            files[name] = write_npy_atomic(folder / f"{name}.npy", array, self.root)
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
        check_key(key)
        index = self._data_index(create=True)
        try:
            index.set(key, dict(record))
        except sqlite3.OperationalError as err:
            if "full" not in str(err):
                raise
            raise storage_error(no_space(), self.root / "index", self.root) from err
        except OSError as err:
            raise storage_error(err, self.root / "index", self.root) from err
        MAPPED.forget(str(self.root), key)  # a map opened before this commit is not reused

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
        """The arrays of an entry, memory-mapped read-only.

        Raises
        ------
        MissingEntryError
            No entry under ``key`` (not prepared).
        DamagedEntryError
            A file of the entry is missing, cut short or garbled (naming it, the key and the
            command that removes the entry; ``prepare`` recomputes it).
        """
        record = self._require(key)
        if record["kind"] != "arrays":
            raise EntryKindError(f"entry {key} holds a value, not arrays; use get_value")
        return {name: self._open_array(key, name, spec) for name, spec in record["files"].items()}

    def _open_array(self, key: str, name: str, spec: dict[str, Any]) -> np.ndarray:
        path = self.array_dir(key) / f"{name}.npy"
        try:  # a PermissionError (naming the file) is raised as itself
            arr = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            raise DamagedEntryError(
                f"array file {path} of entry {key} is missing (deleted outside neuralset?); "
                f"{self._remedy(key)}",
                key,
            ) from None
        except (ValueError, EOFError, OSError) as err:
            if isinstance(err, PermissionError):
                raise
            problem = f"{type(err).__name__}: {err}" if isinstance(err, EOFError) else str(err)
            raise DamagedEntryError(
                f"array file {path} of entry {key} is damaged ({problem or 'empty file'}); "
                f"{self._remedy(key)}",
                key,
            ) from None
        if list(arr.shape) != spec["shape"] or arr.dtype.str != spec["dtype"]:
            raise DamagedEntryError(
                f"array file {path} of entry {key} holds {arr.dtype.str} {list(arr.shape)}, "
                f"not the {spec['dtype']} {spec['shape']} of its index record; "
                f"{self._remedy(key)}",
                key,
            )
        return arr

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
            why = self.write_denied()
            if why is not None and not self._read_only:
                raise MissingEntryError(
                    f"no store entry {key} in {self.root}, a read-only store ({why}): it was "
                    "not prepared there and cannot be; prepare into a writable store "
                    "(Store(path) or NEURALSET_CACHE), or ask whoever maintains this store"
                )
            raise MissingEntryError(f"no store entry {key} in {self.root}; run prepare() first")
        return record

    def _remedy(self, key: str) -> str:
        return (
            f"remove the entry with `neuralset cache clear {key} --store {self.root}` "
            "and prepare again"
        )

    # -- management ----------------------------------------------------------------------
    def entries(self) -> list[EntryInfo]:
        """Summaries of all entries, oldest first (an entry whose record cannot be read is
        listed with kind ``"damaged"``)."""
        index = self._open_index(create=False)
        if index is None:
            return []
        out = []
        for key in index.iterkeys():
            try:
                record = read_record(index, key)
            except RECORD_ERRORS:
                record = {"kind": "damaged"}
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
        self.check_writable()
        if (index := self._open_index(create=False)) is not None:
            index.delete(key)
        MAPPED.forget(str(self.root), key)
        shutil.rmtree(self.array_dir(key), ignore_errors=True)

    def clear(self, *, older_than: float | None = None) -> int:
        """Remove all entries, or those created more than ``older_than`` seconds ago.

        Clearing every entry also removes the results of interrupted runs not committed yet
        (``manifests/``, which the next ``prepare`` would commit) and the error entries.

        Clearing every entry of a store of an older format leaves an empty store of this
        version's format.
        """
        now = time.time()
        removed = 0
        for entry in self.entries():
            if older_than is None or now - entry.created > older_than:
                self.delete(entry.key)
                removed += 1
        if older_than is None:  # and what interrupted runs left, which prepare would commit
            for leftover in ("manifests", "errors"):
                shutil.rmtree(self.root / leftover, ignore_errors=True)
        if older_than is None and read_format(self.root) == 1:
            write_format(self.root)
        return removed

    def verify(self, *, full: bool = False, fix: bool = False) -> Any:
        """Check every entry against its record (``neuralset cache verify``); see
        :func:`neuralset.store.verify.verify_store`."""
        from .verify import verify_store

        return verify_store(self, full=full, fix=fix)

    def size_bytes(self) -> int:
        """Bytes used on disk by the store folder."""
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
