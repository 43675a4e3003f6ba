"""Memos: typed caches owned by one object, instead of values written into other objects.

Derived values that are costly to recompute on every batch (the store key of each recording,
a lookup table of recording spans, a config's structural key) are kept by the object they are
derived from, in a :class:`Memo`:

* an :class:`~neuralset.events.index.EventIndex` owns one (``index.memo``). The index is built
  once per events table and shared by every selection of the same
  :class:`~neuralset.segments.Segments` (``segments.select(...)``, ``segments.with_windows(...)``),
  so what an extractor caches there for one batch serves every later batch;
* a frozen config (or any frozen dataclass) gets its private memo from :func:`frozen_memo`, the
  one place where neuralset attaches a value to a frozen instance. Only values derived from the
  instance's own fields belong there (its key, a derived config).

Entries are addressed by :class:`Slot` constants, declared once by the module that uses them:
the slot names what is cached and carries its value type, so ``memo.get_or_set(SLOT, factory)``
is checked by mypy, and two modules never collide on a name (slots compare by identity).
A slot may be qualified by hashable values (an extractor's ``prepare_key``, a store root) when
several values of its kind live side by side.

A memo is only a cache: pickling or copying one gives an empty memo (a worker process rebuilds
what it needs; memory-mapped arrays are never copied into a pickle).

Examples
--------
>>> STARTS: Slot[list[float]] = Slot("event starts")
>>> memo = Memo()
>>> memo.get_or_set(STARTS, lambda: [0.0, 1.5])
[0.0, 1.5]
>>> memo.get_or_set(STARTS, lambda: [])  # computed once
[0.0, 1.5]
>>> KEYS: Slot[dict[int, str]] = Slot("store key per event row")
>>> memo.table(KEYS, "extractor-key")[3] = "abc"  # one table per qualifier
>>> memo.table(KEYS, "extractor-key")
{3: 'abc'}
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar, final

__all__ = ["Memo", "Slot", "frozen_memo"]

V = TypeVar("V")
K = TypeVar("K")
T = TypeVar("T")


@final
class Slot(Generic[V]):
    """A named, typed entry of a :class:`Memo` (declare it once, at module level).

    Parameters
    ----------
    name
        What is cached (shown in ``repr``; slots compare by identity, not by name).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


class Memo:
    """A cache owned by one object; entries are addressed by a :class:`Slot` and qualifiers."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    def get_or_set(self, slot: Slot[V], factory: Callable[[], V], *qualifier: Hashable) -> V:
        """The value of ``slot`` (for ``qualifier``), computed by ``factory()`` the first time."""
        key: Hashable = (slot, *qualifier) if qualifier else slot
        try:
            return self._values[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        value = self._values[key] = factory()
        return value

    def get(self, slot: Slot[V], *qualifier: Hashable) -> V | None:
        """The value of ``slot`` (for ``qualifier``) if it was set, else None."""
        return self._values.get((slot, *qualifier) if qualifier else slot)

    def table(self, slot: Slot[dict[K, T]], *qualifier: Hashable) -> dict[K, T]:
        """The mutable dict of ``slot`` (created empty), for caches filled row by row."""
        key: Hashable = (slot, *qualifier) if qualifier else slot
        try:
            return self._values[key]  # type: ignore[no-any-return]
        except KeyError:
            value: dict[K, T] = {}
            self._values[key] = value
            return value

    def clear(self) -> None:
        """Forget every entry."""
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Memo({len(self._values)} entries)"

    def __reduce__(self) -> tuple[type[Memo], tuple[()]]:
        return (Memo, ())  # a cache does not travel: copies and pickles start empty


_ATTRIBUTE = "_neuralset_memo"


def frozen_memo(owner: object) -> Memo:
    """The private :class:`Memo` of a frozen dataclass instance, created on first use.

    Frozen dataclasses refuse attribute assignment; this is the one documented place where
    neuralset attaches a value to one (with ``object.__setattr__``, outside the dataclass
    fields, so equality, hashing, ``repr``, ``to_dict`` and structural keys ignore it).
    ``dataclasses.replace`` returns an instance with a fresh memo. Cache only values derived
    from the instance's own fields.

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Point:
    ...     x: float
    >>> SQUARE: Slot[float] = Slot("square")
    >>> p = Point(3.0)
    >>> frozen_memo(p).get_or_set(SQUARE, lambda: p.x**2)
    9.0
    >>> frozen_memo(p) is frozen_memo(p)
    True
    """
    memo = vars(owner).get(_ATTRIBUTE)
    if memo is None:
        memo = Memo()
        object.__setattr__(owner, _ATTRIBUTE, memo)
    return memo  # type: ignore[no-any-return]
