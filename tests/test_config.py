from pathlib import Path
from typing import Literal

import pytest

from neuralset.config import (
    Config,
    ConfigError,
    apply_overrides,
    config,
    dump_yaml,
    from_dict,
    register,
)


@config
class Inner(Config):
    filter: tuple[float | None, float | None] = (0.5, 40.0)
    mode: Literal["a", "b"] = "a"


@register("test_outer")
@config
class Outer(Config):
    path: Path
    inner: Inner = Inner()
    names: tuple[str, ...] = ()
    size: int = 1

    def _check(self) -> None:
        if self.size < 1:
            raise ConfigError(f"Outer.size: must be >= 1, got {self.size}")


def test_frozen_and_coerced():
    cfg = Outer(path="~/x", names=["a", "b"])
    assert cfg.path == Path("~/x").expanduser()
    assert cfg.names == ("a", "b")
    with pytest.raises(AttributeError):
        cfg.size = 3  # type: ignore[misc]


def test_type_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^Outer.size: expected int, got 'abc'$"):
        Outer(path="x", size="abc")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"Inner.mode: expected one of 'a', 'b', got 'c'"):
        Inner(mode="c")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"Outer.size: must be >= 1, got 0"):
        Outer(path="x", size=0)


def test_yaml_round_trip_with_kind():
    cfg = Outer(path="/data", inner=Inner(filter=(1.0, None)), names=("x",))
    data = cfg.to_dict()
    assert data["kind"] == "test_outer"
    import yaml

    again = from_dict(yaml.safe_load(dump_yaml(cfg)))
    assert again == cfg and again.key == cfg.key


def test_from_dict_errors_name_the_path():
    with pytest.raises(
        ConfigError, match=r"^inner.filter\[0\]: expected float \| None, got 'abc'$"
    ):
        from_dict({"kind": "test_outer", "path": "/d", "inner": {"filter": ["abc", 1.0]}})
    with pytest.raises(
        ConfigError, match=r"^inner.colour: unknown key for Inner; allowed keys: filter, mode$"
    ):
        from_dict({"kind": "test_outer", "path": "/d", "inner": {"colour": 1}})
    with pytest.raises(ConfigError, match="unknown kind 'nope'"):
        from_dict({"kind": "nope"})


def test_overrides():
    data = {"kind": "test_outer", "path": "/d", "inner": {"mode": "a"}}
    out = apply_overrides(data, ["--inner.mode=b", "--size=3", "--inner.filter=[1, 2]"])
    assert data["inner"]["mode"] == "a"  # input untouched
    cfg = from_dict(out)
    assert cfg.inner.mode == "b" and cfg.size == 3 and cfg.inner.filter == (1.0, 2.0)
    with pytest.raises(ConfigError, match="expected --dotted.path=value"):
        apply_overrides(data, ["--size"])
