"""Where a store lives by default, and what each entry records about how it was made."""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["default_store_root", "provenance", "EntryInfo"]


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


def pickled_size(value: Any) -> int:
    """Bytes of ``value`` pickled (what a value entry holds), for :class:`EntryInfo`."""
    import pickle

    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


@dataclass(frozen=True)
class EntryInfo:
    """Summary of one store entry.

    Attributes
    ----------
    key, kind, label
        The entry's key, ``"arrays"`` or ``"value"``, and its label (a file, a study...).
    nbytes
        Bytes of its array files, or of its value pickled (0 for a value stored by an earlier version).
    created
        Creation time (seconds since the epoch).
    """

    key: str
    kind: str
    nbytes: int
    created: float
    label: str
