"""Canonical encoding of values and 128-bit structural keys.

A key is the blake2b digest (16 bytes, 32 hex characters) of a canonical, type-tagged byte
encoding of a value. The encoding is independent of the process (no ``hash()``, no ``id()``),
of dict insertion order and of ``PYTHONHASHSEED``; floats are encoded exactly (``float.hex``);
numpy arrays and pandas frames are encoded by content; dataclasses by their class identity,
class version (``_version`` class attribute) and keyed fields. Fields declared with
``field(metadata={"key": False})`` (workers, device, batch size, ...) are left out; fields
declared with ``field(metadata=KEY_UNLESS_DEFAULT)`` take part only when they differ from their
default (a field added later then leaves the keys of existing configs unchanged).

A class's identity is its registered YAML kind (``kind:meg``, see
:func:`neuralset.config.register`), never its module path: moving a class to another module
keeps every key. A class without a kind (a user's own config) falls back to
``module.QualName``; register it to make its keys survive a move. Store format 1 (neuralset 0.1)
derived keys from module paths; :func:`legacy_keys` recomputes those for migrating a store.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
import hashlib
import math
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "class_identity",
    "legacy_keys",
    "legacy_mode",
    "encode",
    "structural_key",
    "chain_keys",
    "chained_keys",
    "is_keyed_field",
    "keyed_fields",
    "KEY_EXCLUDED",
    "KEY_UNLESS_DEFAULT",
    "file_identity",
]

#: Field metadata that leaves a dataclass field out of the structural key.
KEY_EXCLUDED: dict[str, Any] = {"key": False}


#: Field metadata of a field added to a class whose keys are already in use: the field enters
#: the key only when its value differs from its default (which must reproduce the behaviour of
#: the class before the field existed), so the keys of existing configs do not change.
KEY_UNLESS_DEFAULT: dict[str, Any] = {"key": "unless_default"}

_NO_VALUE: Any = object()


def is_keyed_field(field: dataclasses.Field[Any], value: Any = _NO_VALUE) -> bool:
    """Whether a dataclass field (holding ``value``) takes part in the structural key.

    A field declared with :data:`KEY_UNLESS_DEFAULT` takes part only when ``value`` differs
    from the field's default (always, when no value is given).
    """
    mode = field.metadata.get("key", True)
    if mode == "unless_default":
        if value is _NO_VALUE:
            return True
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            return True
        return encode(value) != encode(default)
    return bool(mode)


def keyed_fields(obj: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{name: value}`` of the fields of dataclass ``obj`` that enter its structural key.

    Leaves out the fields marked :data:`KEY_EXCLUDED`, those marked :data:`KEY_UNLESS_DEFAULT`
    that hold their default (:func:`is_keyed_field`), and the names in ``exclude``.
    """
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name not in exclude and is_keyed_field(f, value):
            out[f.name] = value
    return out


_LEGACY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "neuralset_legacy_keys", default=False
)


def class_identity(cls: type) -> str:
    """How keys name a class: ``kind:<kind>`` when registered, else ``module.QualName``.

    Under :func:`legacy_keys`, the store-format-1 name: ``module.QualName`` with the module
    that defined the class in neuralset 0.1.

    Examples
    --------
    >>> from neuralset.extractors import MegExtractor
    >>> class_identity(MegExtractor)
    'kind:meg'
    """
    if _LEGACY.get():
        from ._moved import DEFINED_IN

        return f"{DEFINED_IN.get(cls.__module__, cls.__module__)}.{cls.__qualname__}"
    kind = cls.__dict__.get("kind")
    if isinstance(kind, str) and kind:
        return f"kind:{kind}"
    return f"{cls.__module__}.{cls.__qualname__}"


def legacy_mode() -> bool:
    """Whether keys are being derived the store-format-1 way (inside :func:`legacy_keys`)."""
    return _LEGACY.get()


@contextlib.contextmanager
def legacy_keys() -> Iterator[None]:
    """Derive keys as neuralset 0.1 did (store format 1: classes named by module path).

    Only for migrating a store (:func:`neuralset.migration.migrate_store`); key caches of
    configs are bypassed inside the block.
    """
    token = _LEGACY.set(True)
    try:
        yield
    finally:
        _LEGACY.reset(token)


def _tagged(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<Q", len(payload)) + payload


def _encode_float(value: float) -> bytes:
    if math.isnan(value):
        return b"nan"
    return value.hex().encode()


def encode(value: Any) -> bytes:
    """Return the canonical, type-tagged byte encoding of ``value``.

    Parameters
    ----------
    value
        None, bool, int, float, str, bytes, paths, enums, tuples, lists, sets, mappings,
        numpy arrays and scalars, pandas Series/DataFrames, dataclasses (recursively), or any
        object exposing ``__neuralset_encode__() -> bytes``.

    Raises
    ------
    TypeError
        For a value without a canonical encoding (an open file, a lambda, ...).
    """
    # exact str, tuple and list first (the same bytes as their branches below, fewer checks)
    kind = type(value)
    if kind is str:
        return _tagged(b"s", value.encode())
    if kind is tuple or kind is list:
        return _tagged(b"l", b"".join([encode(v) for v in value]))
    if value is None:
        return b"N"
    if isinstance(value, bool):
        return _tagged(b"b", b"1" if value else b"0")
    if isinstance(value, enum.Enum):
        return _tagged(b"e", type(value).__qualname__.encode() + b":" + encode(value.value))
    if isinstance(value, int | np.integer):
        return _tagged(b"i", str(int(value)).encode())
    if isinstance(value, float | np.floating):
        return _tagged(b"f", _encode_float(float(value)))
    if isinstance(value, str):
        return _tagged(b"s", value.encode())
    if isinstance(value, bytes):
        return _tagged(b"y", value)
    if isinstance(value, PurePath):
        return _tagged(b"p", value.as_posix().encode())
    custom = getattr(value, "__neuralset_encode__", None)
    if custom is not None and not isinstance(value, type):
        return _tagged(b"c", type(value).__qualname__.encode() + custom())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        header = f"{class_identity(cls)}@{getattr(cls, '_version', 0)}".encode()
        parts = [encode(header.decode())]
        for f in dataclasses.fields(value):
            field_value = getattr(value, f.name)
            if is_keyed_field(f, field_value):
                parts.append(encode(f.name) + encode(field_value))
        return _tagged(b"D", b"".join(parts))
    if isinstance(value, tuple | list):
        return _tagged(b"l", b"".join(encode(v) for v in value))
    if isinstance(value, set | frozenset):
        return _tagged(b"S", b"".join(sorted(encode(v) for v in value)))
    if isinstance(value, Mapping):
        items = sorted((encode(k), encode(v)) for k, v in value.items())
        return _tagged(b"m", b"".join(k + v for k, v in items))
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        if arr.dtype == object:
            return _tagged(b"O", encode(arr.shape) + b"".join(encode(v) for v in arr.ravel()))
        header = f"{arr.dtype.str}|{arr.shape}".encode()
        return _tagged(b"a", header + hashlib.blake2b(arr.tobytes(), digest_size=16).digest())
    if isinstance(value, pd.DataFrame):
        cols = [encode(str(c)) + _encode_series(value[c]) for c in value.columns]
        return _tagged(b"F", b"".join(cols))
    if isinstance(value, pd.Series):
        return _encode_series(value)
    if isinstance(value, np.generic):
        return encode(value.item())
    raise TypeError(
        f"cannot build a structural key from a value of type {type(value).__name__!r}; "
        "use plain values (numbers, strings, paths, tuples, dicts, arrays, frozen dataclasses)"
    )


def _encode_series(series: pd.Series) -> bytes:
    dtype = str(series.dtype)
    if (
        isinstance(series.dtype, pd.CategoricalDtype)
        or series.dtype == object
        or dtype
        in (
            "string",
            "str",
        )
    ):
        values = series.astype(object).where(series.notna(), None).tolist()
        body = b"".join(encode(v) for v in values)
        return _tagged(b"P", b"obj" + hashlib.blake2b(body, digest_size=16).digest())
    arr = series.to_numpy()
    return _tagged(b"P", dtype.encode() + encode(arr))


def structural_key(value: Any) -> str:
    """Return the 128-bit structural key of ``value`` as 32 hexadecimal characters.

    Parameters
    ----------
    value
        A config, or plain data (see the module docstring for the types accepted).

    Examples
    --------
    >>> structural_key({"a": 1.0}) == structural_key({"a": 1.0})
    True
    >>> structural_key(1) == structural_key(1.0)
    False
    """
    return hashlib.blake2b(encode(value), digest_size=16).hexdigest()


def chain_keys(*keys: str) -> str:
    """Fold several keys (e.g. a step's own key and its input's key) into one."""
    return structural_key(("chain", *keys))


def chained_keys(key: str, values: Sequence[Any]) -> list[str]:
    """``[chain_keys(key, structural_key(v)) for v in values]``: the same keys, faster for many.

    The chain's constant prefix is encoded once, not once per value, and a string, or a tuple
    of strings, seen before reuses its key (words repeat: a story of 5,000 words has a few
    hundred distinct ones). Other values are keyed one by one: ``1``, ``1.0`` and ``True`` are
    equal in Python but not the same key.
    """
    head = encode("chain") + encode(key)
    seen: dict[Any, str] = {}
    out = []
    for value in values:
        text = _is_text(value)
        known = seen.get(value) if text else None
        if known is None:
            encoded = _tagged(b"l", head + encode(structural_key(value)))
            known = hashlib.blake2b(encoded, digest_size=16).hexdigest()
            if text:
                seen[value] = known
        out.append(known)
    return out


def _is_text(value: Any) -> bool:
    """A str, or a tuple of str (exact types): values that are equal only when their encodings
    are."""
    kind = type(value)
    if kind is str:
        return True
    if kind is not tuple:
        return False
    for item in value:  # a loop, not all(...): this runs once per word
        if type(item) is not str:
            return False
    return True


def file_identity(
    path: str | PurePath, root: str | PurePath | None = None, *, content_hash: bool = False
) -> tuple[Any, ...]:
    """Identity of a file for cache keys: its path relative to ``root``, size and mtime.

    Paths under ``root`` are keyed relative to it, so a store prepared with data in ``~/data``
    serves a machine whose data lives in ``/scratch/data``. With ``content_hash`` the file's
    blake2b digest replaces size and mtime.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {path}") from None
    rel = str(path)
    if root:
        try:
            rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            rel = str(path)
    if content_hash:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return (rel, digest.hexdigest())
    return (rel, st.st_size, st.st_mtime_ns)
