"""Configs and events inherit repr, == and hash from Fieldwise: the same as dataclasses writes."""

from __future__ import annotations

import dataclasses
import math

import pytest

import neuralset as ns
from neuralset.config import Config, config
from neuralset.events import Event, event_types
from neuralset.fieldwise import Fieldwise
from neuralset.registry import discover, registered


def _twins() -> tuple[type, type]:
    """One class with dataclasses' own methods, one with Fieldwise's, the same fields."""

    def body(base: type, **flags: bool) -> type:
        @dataclasses.dataclass(frozen=True, kw_only=True, **flags)
        class Record(base):  # type: ignore[valid-type,misc]
            name: str
            value: float = 0.0
            hidden: int = dataclasses.field(default=0, repr=False)
            note: str = dataclasses.field(default="", compare=False)
            unhashed: tuple[int, ...] = dataclasses.field(default=(), hash=False)
            hashed_only: int = dataclasses.field(default=0, compare=False, hash=True)

        return Record

    return body(object), body(Fieldwise, repr=False, eq=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "a"},
        {"name": "a", "value": 1.5, "hidden": 3},
        {"name": "a", "note": "ignored by =="},
        {"name": "a", "value": math.nan},  # the same NaN object: equal, as in a tuple
        {"name": "a", "unhashed": (1, 2)},
        {"name": "a", "hashed_only": 7},
    ],
)
def test_same_methods_as_dataclasses(kwargs):
    generated, fieldwise = _twins()
    assert "__eq__" not in fieldwise.__dict__ and "__repr__" not in fieldwise.__dict__
    other = {"name": "a", "value": 1.5, "hidden": 3, "note": "x", "unhashed": (1, 2)}
    for cls in (generated, fieldwise):
        assert repr(cls(**kwargs)).endswith(repr(generated(**kwargs)).split(".")[-1])
    assert (fieldwise(**kwargs) == fieldwise(**kwargs)) == (
        generated(**kwargs) == generated(**kwargs)
    )
    assert (fieldwise(**kwargs) == fieldwise(**other)) == (
        generated(**kwargs) == generated(**other)
    )
    assert hash(fieldwise(**kwargs)) == hash(generated(**kwargs))
    assert fieldwise(**kwargs).__eq__(generated(**kwargs)) is NotImplemented
    assert fieldwise(**kwargs) != "a"


def test_configs_and_events_compare_by_fields():
    a = ns.MegExtractor(frequency=100.0)
    assert a == ns.MegExtractor(frequency=100.0) != ns.MegExtractor(frequency=50.0)
    assert repr(a).startswith("MegExtractor(event_type='', output='dynamic', frequency=100.0, ")
    assert a != ns.EegExtractor(frequency=100.0)  # another class: never equal
    word = event_types()["Word"]
    w = word(start=1.0, duration=0.5, timeline="t", text="hello")
    assert w == word(start=1.0, duration=0.5, timeline="t", text="hello")
    assert w != word(start=1.0, duration=0.5, timeline="t", text="world")
    assert hash(w) == hash(word(start=1.0, duration=0.5, timeline="t", text="hello"))
    assert (
        repr(w)
        == "Word(start=1.0, timeline='t', duration=0.5, text='hello', language='', context='', sentence='')"
    )


def test_a_config_with_a_dict_field_hashes_by_its_contents():
    # dataclasses would raise TypeError (unhashable type: 'dict'); a frozen config keys a dict
    a = ns.MegExtractor(reader_options={"preload": False, "exclude": "MEG 2443"})
    same = ns.MegExtractor(reader_options={"exclude": "MEG 2443", "preload": False})
    other = ns.MegExtractor(reader_options={"preload": True, "exclude": "MEG 2443"})
    assert a == same and hash(a) == hash(same)
    assert a != other and hash(a) != hash(other)
    assert {a: 1, other: 2}[same] == 1
    assert len({a, same, other, ns.MegExtractor()}) == 3


def _subclasses(cls: type) -> list[type]:
    return [cls] + [c for sub in cls.__subclasses__() for c in _subclasses(sub)]


def test_every_builtin_config_and_event_inherits_the_methods():
    """Each generated method costs an exec at import: none is written for neuralset's own
    classes (a subclass declared with a plain @dataclasses.dataclass still works)."""
    discover()
    classes = [
        c for c in _subclasses(Config) + _subclasses(Event) if c.__module__.startswith("neuralset.")
    ]
    assert len(classes) > 100 and {
        c for c in registered().values() if c.__module__.startswith("neuralset.")
    } <= set(classes)
    written = [
        c.__qualname__
        for c in classes
        for name in ("__eq__", "__repr__", "__hash__")
        if name in c.__dict__
    ]
    assert written == []

    @config
    class Own(Config):
        x: int = 1

    assert Own() == Own() != Own(x=2) and repr(Own()) == f"{Own.__qualname__}(x=1)"

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Plain(Event):  # as users declare event types: dataclasses' own methods
        extra: int = 0

    assert Plain(start=0.0, timeline="t") == Plain(start=0.0, timeline="t")
