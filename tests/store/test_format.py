"""The store records its format; stores of another format are refused with what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from neuralset.store import STORE_FORMAT, Store, StoreFormatError
from neuralset.store.format import read_format


def test_the_first_write_records_the_format(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    assert read_format(store.root) is None
    store.put_value("a" * 32, 1)
    assert json.loads((store.root / "FORMAT").read_text()) == {"format": STORE_FORMAT}
    assert STORE_FORMAT == 2 and read_format(store.root) == 2
    assert Store(store.root).get_value("a" * 32) == 1


def test_an_index_without_format_is_format_1(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.put_value("a" * 32, 1)
    (store.root / "FORMAT").unlink()
    other = Store(store.root)
    with pytest.raises(StoreFormatError, match=r"was written by neuralset 0.1 \(store format 1"):
        other.get_value("a" * 32)
    assert [e.key for e in other.entries()] == ["a" * 32]  # listing works on any format


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.put_value("a" * 32, 1)
    (store.root / "FORMAT").write_text('{"format": 3}\n')
    with pytest.raises(StoreFormatError) as info:
        Store(store.root).has("a" * 32)
    assert str(info.value) == (
        f"store {store.root} has format 3, written by a newer neuralset than this one (which "
        "reads format 2); upgrade neuralset, or use another store folder"
    )


def test_a_damaged_format_file_is_named(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.put_value("a" * 32, 1)
    (store.root / "FORMAT").write_text("{not json")
    with pytest.raises(StoreFormatError) as info:
        Store(store.root).has("a" * 32)
    assert str(info.value).startswith(f"store format file {store.root / 'FORMAT'} is damaged (")
    assert str(info.value).endswith(
        'it should read {"format": 2} for a store written by this version'
    )


def test_a_migration_by_another_process_is_seen(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.put_value("a" * 32, 1)
    shutil.move(store.root / "FORMAT", tmp_path / "FORMAT")
    reader = Store(store.root)
    with pytest.raises(StoreFormatError):
        reader.has("a" * 32)
    shutil.move(tmp_path / "FORMAT", store.root / "FORMAT")  # "migrated" meanwhile
    assert reader.has("a" * 32)
