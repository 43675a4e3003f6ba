"""The bounds of the process's open-array cache, read from the environment."""

from __future__ import annotations

import pytest

from neuralset.store.mapped import MappedArrays


def test_bounds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURALSET_MAX_OPEN_ARRAYS", " 12 ")
    monkeypatch.setenv("NEURALSET_MAX_MAPPED_MB", "3")
    monkeypatch.setenv("NEURALSET_RECHECK_S", "0")
    cache = MappedArrays()
    assert (cache.max_count, cache.max_bytes, cache.recheck_s) == (12, 3 * 2**20, 0.0)
    monkeypatch.delenv("NEURALSET_MAX_OPEN_ARRAYS")
    monkeypatch.setenv("NEURALSET_RECHECK_S", "")
    cache = MappedArrays()
    assert (cache.max_count, cache.recheck_s) == (4096, 1.0)  # unset or empty: the defaults


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("NEURALSET_MAX_OPEN_ARRAYS", "0", "a positive integer"),
        ("NEURALSET_MAX_OPEN_ARRAYS", "1.5", "a positive integer"),
        ("NEURALSET_MAX_MAPPED_MB", "lots", "a positive integer"),
        ("NEURALSET_RECHECK_S", "-1", "a number of seconds >= 0"),
        ("NEURALSET_RECHECK_S", "nan", "a number of seconds >= 0"),
    ],
)
def test_bad_bounds_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"^\${name}: expected {expected}, got '{value}'$"):
        MappedArrays()
