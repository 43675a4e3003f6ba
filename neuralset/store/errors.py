"""Errors of the store, each saying how to recover (see :mod:`neuralset.store.store`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = [
    "StoreError",
    "MissingEntryError",
    "EntryKindError",
    "DamagedEntryError",
    "StoreReadOnlyError",
    "storage_error",
    "no_space",
    "not_a_folder",
]


class StoreError(RuntimeError):
    """A store entry is missing or damaged; the message says how to recover."""


class MissingEntryError(StoreError):
    """No entry is committed under the key (nothing prepared yet): the one "not prepared" case.

    Damaged or missing files of a committed entry raise :class:`DamagedEntryError`, and
    unreadable ones ``PermissionError``, never this: they are not cured by preparing again.
    """


class EntryKindError(StoreError):
    """The entry holds arrays where a value was asked for, or the reverse."""


class DamagedEntryError(StoreError):
    """A committed entry whose files are missing, truncated or garbled.

    The message names the file, the key and the command that removes the entry;
    ``prepare`` recomputes such entries (it never counts them as stored).
    """

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class StoreReadOnlyError(StoreError):
    """A write to a store that is read-only (a shared lab store, a read-only mount).

    Reads of a read-only store work; the message says where the store is and what to do.
    """


#: errno values that mean "this location cannot take the write", whatever the file.
_STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "the file is larger than this process may write",
    errno.ENOTDIR: "a file stands where the store needs a folder",
}


def storage_error(err: OSError, path: Path | str, root: Path | str) -> OSError:
    """``err`` (raised while writing ``path`` of the store at ``root``) as an ``OSError`` of the
    same type and errno that names the file and the fix; other errors are returned unchanged
    when they already name a file."""
    if not err.errno and " requested and " in str(err):  # numpy's short write: the disk filled
        err = OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (a short write: {err})")
    if err.filename is not None and err.errno not in _STORAGE_ERRNOS:
        return err
    reason = _STORAGE_ERRNOS.get(err.errno or 0, err.strerror or str(err))
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = (
            f"free space on the disk of the store {root} (`neuralset cache clear --older-than "
            "30d` removes old entries), or point NEURALSET_CACHE to a larger disk; what was "
            "stored before is kept and a new prepare resumes"
        )
    elif err.errno == errno.EROFS:
        fix = f"the store {root} is on a read-only file system: prepare into a writable store"
    elif err.errno == errno.ENOTDIR:
        fix = not_a_folder(root)
    else:
        fix = f"check the store folder {root}"
    message = f"{err.strerror or reason} ({reason} while writing the store); {fix}"
    return type(err)(err.errno or 0, message, str(path))


def not_a_folder(root: Path | str) -> str:
    """What to do when the store ``root``, or a folder above it, is a file."""
    return (
        f"the store {root}, or a folder above it, is a file: give a folder as the store "
        "(Store(path), NEURALSET_CACHE or the pipeline's store)"
    )


def no_space() -> OSError:
    """``ENOSPC`` as SQLite reports it (``database or disk is full``), as an ``OSError``."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
