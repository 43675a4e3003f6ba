"""The store: diskcache index plus memory-mapped arrays, with provenance."""

from .store import EntryInfo, Store, StoreError, default_store_root, provenance

__all__ = ["EntryInfo", "Store", "StoreError", "default_store_root", "provenance"]
