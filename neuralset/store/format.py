"""The on-disk format of a store, recorded in ``<root>/FORMAT`` when the store is created.

======  ==========================================================================================
format  what changed
======  ==========================================================================================
1       neuralset 0.1: no ``FORMAT`` file; keys named classes by module path
2       keys name classes by their YAML kind (``kind:meg``), never by module path
======  ==========================================================================================

A store whose index exists without a ``FORMAT`` file was written by neuralset 0.1 (format 1):
its keys are not the ones this version derives, so every read, ``has`` and ``prepare`` raises
:class:`StoreFormatError` instead of silently recomputing (or serving) the wrong entries.
``neuralset cache migrate`` (:func:`neuralset.migration.migrate_store`) re-keys it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from .errors import StoreError, not_a_folder

__all__ = ["STORE_FORMAT", "StoreFormatError", "read_format", "write_format", "legacy_message"]

#: The format this version of neuralset reads and writes.
STORE_FORMAT = 2

_FILE = "FORMAT"


class StoreFormatError(RuntimeError):
    """The store was written in another format; the message says how to migrate or clear it."""


def read_format(root: Path) -> int | None:
    """The format of the store at ``root``: ``None`` for a store not created yet.

    Raises
    ------
    StoreFormatError
        When ``FORMAT`` exists but cannot be read (naming the file).
    StoreError
        When ``root``, or a folder above it, is a file.
    """
    path = root / _FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 1 if (root / "index").exists() else None
    except NotADirectoryError:
        raise StoreError(f"no store can be read at {root}: {not_a_folder(root)}") from None
    try:
        value = json.loads(text)["format"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"format {value!r} is not an integer")
    except (ValueError, KeyError, TypeError) as err:
        raise StoreFormatError(
            f"store format file {path} is damaged ({err}); it should read "
            f'{{"format": {STORE_FORMAT}}} for a store written by this version'
        ) from None
    return value


def write_format(root: Path, fmt: int = STORE_FORMAT) -> None:
    """Record ``fmt`` as the store's format (atomically: temporary file, then rename)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps({"format": fmt}) + "\n")
    os.replace(tmp, root / _FILE)


def legacy_message(root: Path) -> str:
    """What a format-1 store is and what to do with it."""
    return (
        f"store {root} was written by neuralset 0.1 (store format 1: keys named classes by "
        f"module path) and this version reads format {STORE_FORMAT}, whose keys name classes "
        "by kind; its entries would not be found and would be computed again. Run "
        f"`neuralset cache migrate CONFIG.yaml --store {root}` to re-key the entries each "
        f"pipeline uses (neuralset.migrate_store in Python), or `neuralset cache clear --store "
        f"{root} --yes` to start afresh"
    )


def newer_message(root: Path, fmt: int) -> str:
    """What to do with a store written by a newer neuralset."""
    return (
        f"store {root} has format {fmt}, written by a newer neuralset than this one (which reads "
        f"format {STORE_FORMAT}); upgrade neuralset, or use another store folder"
    )
