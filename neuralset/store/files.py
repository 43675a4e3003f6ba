"""The array files of store entries: atomic writes, and the checks that find damaged ones.

Each ``.npy`` file is written under a temporary name, flushed to disk, then renamed
(``os.replace``); its index record keeps the array's shape and dtype, the file's size and a
blake2b digest of the array bytes. :func:`file_problem` compares a file with its record
without reading it (one ``stat``): a file cut short or emptied is found before any read.
:func:`content_problem` reads it whole (``neuralset cache verify --full``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .errors import storage_error

__all__ = [
    "check_key",
    "replacing",
    "write_npy_atomic",
    "file_problem",
    "header_problem",
    "content_problem",
    "array_digest",
]

#: What a store key may hold: it names the entry's folder, never a path out of it
_KEY = re.compile(r"[A-Za-z0-9_-]+")
#: Arrays from this size on are hashed by a thread while they are written.
_THREADED_DIGEST_BYTES = 4 * 2**20
#: numpy aligns the header of an .npy file (magic, version, length and dict) to 64 bytes
_NPY_ALIGN = 64


def check_key(key: str) -> str:
    """``key``, once checked to be a store key (letters, digits, ``_`` and ``-``).

    A key names the folder of its entry's files (``arrays/<key[:2]>/<key>``): ``"."``, ``".."``
    or a key holding ``/`` would name the arrays folder, the folder above the store or a path
    out of it, which removing the entry would delete.

    Raises
    ------
    ValueError
        Naming the key.
    """
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(
            f"store key {key!r} is not a key: keys hold only letters, digits, '_' and '-' (the "
            "32 hex digits of neuralset.hashing.key, say); list the keys with `neuralset cache ls`"
        )
    return key


def array_digest(array: np.ndarray) -> str:
    """blake2b (16 bytes) of a C-contiguous array's bytes."""
    return hashlib.blake2b(array.reshape(-1).view(np.uint8).data, digest_size=16).hexdigest()


@contextlib.contextmanager
def replacing(path: Path, root: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; moved onto ``path`` when the block succeeds.

    On any failure (a full disk, an interruption) the temporary file is removed, so nothing
    partial is ever visible, and an ``OSError`` is raised again as a storage error naming
    ``path`` and the fix (:func:`~neuralset.store.errors.storage_error`).
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise storage_error(err, path, root) from err
        raise


def write_npy_atomic(path: Path, array: np.ndarray, root: Path) -> dict[str, Any]:
    """Write ``array`` to ``path`` atomically; return its record (shape, dtype, bytes, digest).

    Raises
    ------
    OSError
        A full disk, an exceeded quota or a read-only file system, naming ``path`` and the fix
        (see :func:`~neuralset.store.errors.storage_error`); the temporary file is removed.
    """
    array = np.ascontiguousarray(array)
    # a large array is hashed by a thread while its file is written and synced (both release
    # the GIL): the digest then costs next to nothing
    background = array.nbytes >= _THREADED_DIGEST_BYTES
    with ThreadPoolExecutor(1) if background else contextlib.nullcontext() as pool:
        digest = pool.submit(array_digest, array) if pool is not None else None
        with replacing(path, root) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "bytes": os.stat(path).st_size,
        "blake2b": digest.result() if digest is not None else array_digest(array),
    }


def _data_bytes(spec: dict[str, Any]) -> int:
    return int(np.prod(spec["shape"], dtype=np.int64)) * np.dtype(spec["dtype"]).itemsize


def file_problem(path: Path, spec: dict[str, Any]) -> str | None:
    """What is wrong with the array file ``path`` of record ``spec``, from its size alone
    (None when it looks whole). A missing file, an empty one and one cut short are found."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "is missing (deleted outside neuralset?)"
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if "bytes" in spec:
        expected = int(spec["bytes"])
        if size != expected:
            return f"is damaged ({size} bytes on disk, {expected} written: truncated or replaced)"
        return None
    header = size - _data_bytes(spec)  # entries written before sizes were recorded
    if header < _NPY_ALIGN or header % _NPY_ALIGN:
        return f"is damaged ({size} bytes on disk, too short or too long for its array)"
    return None


def header_problem(path: Path, spec: dict[str, Any]) -> str | None:
    """What is wrong with the ``.npy`` header of ``path`` (garbled, or a shape or dtype other
    than its record's); None when it matches. Reads the header only."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as fh:
            version = npy.read_magic(fh)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read(fh)
    except (ValueError, EOFError, OSError, SyntaxError) as err:
        return f"is damaged (its header cannot be read: {err})"
    if list(shape) != list(spec["shape"]) or dtype.str != spec["dtype"] or fortran:
        return (
            f"holds {dtype.str} {list(shape)}, not the {spec['dtype']} {spec['shape']} of its "
            "index record"
        )
    return None


def content_problem(path: Path, spec: dict[str, Any]) -> str | None:
    """:func:`file_problem`, then the header and every byte of the file (its digest, when the
    record has one)."""
    problem = file_problem(path, spec)
    if problem is not None:
        return problem
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, EOFError, OSError) as err:
        return f"is damaged ({err})"
    if list(array.shape) != list(spec["shape"]) or array.dtype.str != spec["dtype"]:
        return (
            f"holds {array.dtype.str} {list(array.shape)}, not the {spec['dtype']} "
            f"{spec['shape']} of its index record"
        )
    try:
        digest = _file_digest(path)
    except (OSError, ValueError) as err:
        return f"cannot be read ({err})"
    if "blake2b" in spec and digest != spec["blake2b"]:
        return "is damaged (its bytes differ from those written: garbled)"
    return None


def _file_digest(path: Path, chunk: int = 1 << 24) -> str:
    """blake2b of the array bytes of an ``.npy`` file (what :func:`array_digest` gave when it
    was written), read in chunks."""
    fmt = np.lib.format
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            fmt.read_array_header_1_0(fh)
        else:
            fmt.read_array_header_2_0(fh)
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
