"""The store: diskcache index plus memory-mapped arrays, with provenance, in a versioned format."""

from .errors import DamagedEntryError, StoreReadOnlyError
from .format import STORE_FORMAT, StoreFormatError
from .store import (
    EntryInfo,
    EntryKindError,
    MissingEntryError,
    Store,
    StoreError,
    default_store_root,
    provenance,
)

__all__ = [
    "DamagedEntryError",
    "EntryInfo",
    "EntryKindError",
    "MissingEntryError",
    "STORE_FORMAT",
    "Store",
    "StoreError",
    "StoreFormatError",
    "StoreReadOnlyError",
    "default_store_root",
    "provenance",
]
