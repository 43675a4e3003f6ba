"""A worker's batch: items computed one by one and stored while the next is computed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from neuralset.execution import records
from neuralset.execution.protocols import PER_ITEM_MARK, computes_per_item
from neuralset.extractors.base import Extractor
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import NoopExtractor, SleepExtractor

from .helpers import failing_setup


def test_the_default_compute_many_is_marked_per_item() -> None:
    assert getattr(Extractor.compute_many, PER_ITEM_MARK) is True
    assert computes_per_item(SleepExtractor())  # the default: one by one
    assert not computes_per_item(NoopExtractor())  # its own compute_many: batched


def test_items_are_stored_while_the_next_is_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, extractor, store, marker, _ = failing_setup(tmp_path, 4, ("sub-02",))
    items = extractor.items(events)
    computing: list[str] = []
    staged_by: list[tuple[str, str, list[str]]] = []
    compute = type(extractor).compute

    def spying_compute(self: Any, item: Any) -> Any:
        computing.append(item.label)
        return compute(self, item)

    stage = Store.stage_arrays

    def spying_stage(self: Store, key: str, *args: Any, **kwargs: Any) -> Any:
        label = kwargs["label"]
        staged_by.append((label, threading.current_thread().name, list(computing)))
        return stage(self, key, *args, **kwargs)

    monkeypatch.setattr(type(extractor), "compute", spying_compute)
    monkeypatch.setattr(Store, "stage_arrays", spying_stage)
    out = records._compute_batch(extractor, store, items)
    # one result per item, in the items' order for those stored; the failure has its traceback
    by_label = {label: (record, error) for _, label, record, error in out}
    assert sorted(by_label) == sorted(i.label for i in items)
    failed = [label for label, (record, _) in by_label.items() if record is None]
    assert len(failed) == 1 and "sub-02" in failed[0]
    assert "RuntimeError: SleepExtractor: failing on" in by_label[failed[0]][1]
    # stored by the staging thread, each item after its own computation
    assert [label for label, _, _ in staged_by] == [
        i.label for i in items if "sub-02" not in i.label
    ]
    assert all(name.startswith("neuralset-stage") for _, name, _ in staged_by)
    assert all(label in seen for label, _, seen in staged_by)
    for key, _label, record, _ in out:
        if record is not None:
            assert record["kind"] != "value" and key in [i.key for i in items]
    marker.unlink()


def test_a_failing_store_step_is_that_item_s_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, extractor, store, marker, _ = failing_setup(tmp_path, 3, ())
    marker.unlink()
    items = extractor.items(events)
    to_storage = type(extractor).to_storage

    def refusing(self: Any, computed: Any, label: str = "") -> Any:
        if "sub-01" in label:
            raise OSError("disk full (simulated)")
        return to_storage(self, computed, label)

    monkeypatch.setattr(type(extractor), "to_storage", refusing)
    out = records._compute_batch(extractor, store, items)
    errors = {label: error for _, label, record, error in out if record is None}
    assert len(errors) == 1 and "sub-01" in next(iter(errors))
    assert "OSError: disk full (simulated)" in next(iter(errors.values()))
    assert sum(record is not None for _, _, record, _ in out) == 2
