"""Checks of every class in a config's hierarchy run automatically; shared validators."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralset.config import Config, ConfigError, config
from neuralset.extractors import MegExtractor
from neuralset.registry import config_classes
from neuralset.validation import (
    at_least,
    existing_path,
    finite,
    in_range,
    one_of,
    positive,
    require,
    required,
    unique,
)

ORDER: list[str] = []


@config
class Base(Config):
    rate: float = 1.0

    def _check(self) -> None:
        ORDER.append("Base")
        positive(self, "rate", "Hz")


@config
class Middle(Base):
    size: int = 1

    def _check(self) -> None:
        ORDER.append("Middle")
        at_least(self, "size", 1, fix="use 1 for a single item")


@config
class NoRules(Middle):
    extra: str = ""


@config
class Leaf(NoRules):
    names: tuple[str, ...] = ()

    def _check(self) -> None:
        ORDER.append("Leaf")
        unique(self, "names")


def test_every_class_checks_run_base_first_without_super_calls() -> None:
    ORDER.clear()
    Leaf(names=("a", "b"))
    assert ORDER == ["Base", "Middle", "Leaf"]
    with pytest.raises(ConfigError) as info:  # the base's rule, named after the leaf class
        Leaf(rate=0.0)
    assert str(info.value) == "Leaf.rate: must be > 0 Hz, got 0.0"
    with pytest.raises(ConfigError) as info:
        Leaf(size=0)
    assert str(info.value) == "Leaf.size: must be >= 1, got 0; use 1 for a single item"
    with pytest.raises(ConfigError) as info:
        Leaf(names=("a", "b", "a"))
    assert (
        str(info.value) == "Leaf.names: duplicated entries 'a' in ('a', 'b', 'a'); give each once"
    )


def test_a_subclass_with_its_own_rules_keeps_its_parents() -> None:
    @config
    class Strict(MegExtractor):
        def _check(self) -> None:
            require(self.frequency != 123.0, self, "frequency", "123 Hz is unlucky, got 123.0")

    with pytest.raises(ConfigError, match=r"^Strict.frequency: must be > 0 Hz \(or None\)"):
        Strict(frequency=-1.0)
    with pytest.raises(ConfigError, match=r"^Strict.picks: unknown channel type 'x'; allowed"):
        Strict(picks=("x",))
    with pytest.raises(ConfigError, match=r"^Strict.frequency: 123 Hz is unlucky, got 123.0$"):
        Strict(frequency=123.0)


def test_no_check_in_neuralset_calls_super() -> None:
    """The checks of the bases run anyway: a super()._check() would run them twice."""
    calling = [
        c.__qualname__
        for c in config_classes()
        if "_check" in c.__dict__ and "super" in c.__dict__["_check"].__code__.co_names
    ]
    assert calling == [], "remove super()._check(): every class's _check runs, base first"


@config
class Sample(Config):
    low: float | None = None
    count: int = 0
    mode: str = "a"
    items: tuple[str, ...] = ()
    path: Path | None = None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: positive(s, "low", "Hz", optional=True), "Sample.low: must be > 0 Hz (or None), got -1.0"),
        (lambda s: positive(s, "low", what="cut-off"), "Sample.low: cut-off must be > 0, got -1.0"),
        (lambda s: finite(s, "low", "seconds", value=float("nan")), "Sample.low: must be a finite number of seconds, got nan"),
        (lambda s: finite(s, "low", optional=True, value=float("-inf")), "Sample.low: must be a finite number (or None), got -inf"),
        (lambda s: at_least(s, "count", 2, "items"), "Sample.count: must be >= 2 items, got 0"),
        (lambda s: in_range(s, "low", 0, 1, fix="a fraction"), "Sample.low: must be between 0 and 1, got -1.0; a fraction"),
        (lambda s: one_of(s, "mode", ("x", "y"), what="mode"), "Sample.mode: unknown mode 'a'; allowed modes: x, y"),
        (lambda s: one_of(s, "items", ("a",), what="item", fix="see the docs"), "Sample.items: unknown item 'b'; allowed items: a; see the docs"),
        (lambda s: required(s, "path", "give the data folder"), "Sample.path: give the data folder (got None)"),
        (lambda s: required(s, "mode", "x", value=""), "Sample.mode: x (got '')"),
        (lambda s: require(False, s, "count", "count and mode disagree, got 0 and 'a'"), "Sample.count: count and mode disagree, got 0 and 'a'"),
    ],
)  # fmt: skip
def test_validator_messages(call, message: str) -> None:  # noqa: ANN001
    sample = Sample(low=-1.0, items=("a", "b"))
    with pytest.raises(ConfigError) as info:
        call(sample)
    assert str(info.value) == message


def test_validators_pass_valid_values(tmp_path: Path) -> None:
    sample = Sample(low=None, count=3, mode="x", items=("a", "b"), path=tmp_path)
    positive(sample, "low", optional=True)
    at_least(sample, "count", 3)
    finite(sample, "count")
    finite(sample, "low", optional=True)
    in_range(sample, "count", 0, 3)
    one_of(sample, "mode", ("x", "y"))
    unique(sample, "items")
    required(sample, "items", "give items")
    existing_path(sample, "path", "folder")
    require(True, sample, "count", "never shown")


def test_existing_path_names_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    sample = Sample(path=tmp_path / "nope")
    with pytest.raises(ConfigError) as info:
        existing_path(sample, "path", "folder", fix="point it at the data")
    assert (
        str(info.value)
        == f"Sample.path: folder {tmp_path / 'nope'} does not exist; point it at the data"
    )
    with pytest.raises(ConfigError) as info:
        existing_path(sample, "path", "folder", value=tmp_path / "f.txt")
    assert str(info.value) == f"Sample.path: {tmp_path / 'f.txt'} is a file, not a folder"
    with pytest.raises(ConfigError) as info:
        existing_path(sample, "path", "file", value=tmp_path)
    assert str(info.value) == f"Sample.path: {tmp_path} is a folder, not a file"
