"""Field-by-field ``__repr__``, ``__eq__`` and ``__hash__`` for neuralset's frozen dataclasses.

``dataclasses.dataclass`` writes these methods for every class it decorates and compiles each
with ``exec`` (about 0.2 ms a method on Python 3.11). With some 130 config and event classes,
that was 60-70 ms of every fresh process that resolves a YAML kind. :class:`Config` and
:class:`~neuralset.events.Event` are declared with ``repr=False, eq=False`` and inherit these
from :class:`Fieldwise`, as do their subclasses declared the same way; a subclass declared
with a plain ``@dataclasses.dataclass`` gets its own generated methods, which behave the same:

* ``repr``: ``Name(field=value, ...)`` over the fields with ``repr=True``;
* ``==``: the same class and equal tuples of the fields with ``compare=True``
  (``NotImplemented`` for another class);
* ``hash``: the hash of the tuple of the fields ``dataclasses`` would hash; where a field holds
  a dict, list or set (``MegExtractor.reader_options``), by its contents, so that a frozen
  config with such a field can still key a dict or join a set (``dataclasses`` raises
  ``TypeError`` there).

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True, repr=False, eq=False)
... class Point(Fieldwise):
...     x: float
...     y: float = dataclasses.field(default=0.0, repr=False)
>>> Point(1.0), Point(1.0) == Point(1.0, 0.0), hash(Point(1.0)) == hash(Point(1.0))
(Point(x=1.0), True, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Fieldwise"]

#: class -> (names shown by repr, names compared, names hashed)
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    names = _NAMES.get(cls)
    if names is None:
        fields = dataclasses.fields(cls)
        names = _NAMES[cls] = (
            tuple(f.name for f in fields if f.repr),
            tuple(f.name for f in fields if f.compare),
            tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)),
        )
    return names


class Fieldwise:
    """``repr``, equality and hash from a dataclass's fields, as ``dataclasses`` writes them."""

    __slots__ = ()

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(type(self))[0])
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        compared = _names(type(self))[1]
        return _values(self, compared) == _values(other, compared)

    def __hash__(self) -> int:
        values = _values(self, _names(type(self))[2])
        try:
            return hash(values)
        except TypeError:  # a dict, list or set field: hashed by its contents
            return hash(_contents(values))


def _values(obj: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(obj, n) for n in names)


def _contents(value: Any) -> Any:
    """A hashable stand-in for ``value`` that is equal wherever ``value`` is (dicts, lists,
    tuples and sets taken apart recursively)."""
    if isinstance(value, dict):
        return (dict, frozenset((k, _contents(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_contents(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_contents(v) for v in value)
    return value
