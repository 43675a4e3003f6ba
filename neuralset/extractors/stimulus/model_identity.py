"""What identifies a HuggingFace model's weights in cache keys: :func:`model_identity`."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

__all__ = ["model_identity"]

#: content hashes of local model folders, per (folder, file sizes and mtimes)
_FOLDER_HASHES: dict[tuple[Any, ...], str] = {}
#: ``(model, revision) -> (when, identity)``: the last identity computed for each model
_IDENTITIES: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = {}


def model_identity(model: str, revision: str, max_age: float = 0.0) -> tuple[str, ...]:
    """What identifies a model's weights in cache keys.

    A local folder is identified by a blake2b hash of its files' names and contents (moving the
    folder keeps the key; changing a weight changes it); a hub id by the id and the revision.
    An identity computed less than ``max_age`` seconds ago is reused (reads ask every batch).
    """
    now, seen = time.monotonic(), _IDENTITIES.get((model, revision))
    if seen is None or now - seen[0] >= max_age:
        seen = _IDENTITIES[(model, revision)] = (now, _model_identity(model, revision))
    return seen[1]


def _model_identity(model: str, revision: str) -> tuple[str, ...]:
    path = Path(model).expanduser()
    if not path.is_dir():
        return ("hub", model, revision)
    files = sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
    stamp = tuple(
        (p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    cache_key = (str(path.resolve()), stamp)
    if cache_key not in _FOLDER_HASHES:
        digest = hashlib.blake2b(digest_size=16)
        for p in files:
            digest.update(p.relative_to(path).as_posix().encode() + b"\0")
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        _FOLDER_HASHES[cache_key] = digest.hexdigest()
    return ("local", _FOLDER_HASHES[cache_key])
