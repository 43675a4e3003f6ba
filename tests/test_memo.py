"""neuralset.memo: typed caches owned by their object; frozen configs' private memo."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

from neuralset.config import Config, config
from neuralset.extractors.neural.mne.meeg import MegExtractor
from neuralset.hashing import structural_key
from neuralset.memo import Memo, Slot, frozen_memo

SQUARES: Slot[dict[int, int]] = Slot("squares")
TOTAL: Slot[int] = Slot("total")


@config
class _Point(Config):
    x: float = 0.0


def test_get_or_set_computes_once_per_slot_and_qualifier() -> None:
    memo = Memo()
    calls: list[str] = []

    def make(tag: str) -> int:
        calls.append(tag)
        return len(calls)

    assert memo.get_or_set(TOTAL, lambda: make("plain")) == 1
    assert memo.get_or_set(TOTAL, lambda: make("again")) == 1
    assert memo.get_or_set(TOTAL, lambda: make("a"), "a") == 2
    assert memo.get_or_set(TOTAL, lambda: make("b"), "b") == 3
    assert memo.get_or_set(TOTAL, lambda: make("a2"), "a") == 2
    assert calls == ["plain", "a", "b"]
    assert (memo.get(TOTAL), memo.get(TOTAL, "b"), memo.get(TOTAL, "c")) == (1, 3, None)
    assert len(memo) == 3
    memo.clear()
    assert len(memo) == 0 and memo.get(TOTAL) is None


def test_tables_and_slots_compare_by_identity() -> None:
    memo = Memo()
    memo.table(SQUARES, "k")[3] = 9
    assert memo.table(SQUARES, "k") == {3: 9} and memo.table(SQUARES, "other") == {}
    twin: Slot[dict[int, int]] = Slot("squares")  # same name, another slot
    assert memo.table(twin, "k") == {}
    assert repr(SQUARES) == "Slot('squares')" and repr(memo) == "Memo(3 entries)"


def test_a_memo_never_travels() -> None:
    memo = Memo()
    memo.get_or_set(TOTAL, lambda: 5)
    for clone in (pickle.loads(pickle.dumps(memo)), copy.copy(memo), copy.deepcopy(memo)):
        assert isinstance(clone, Memo) and len(clone) == 0


def test_frozen_memo_leaves_fields_equality_and_keys_alone() -> None:
    p = _Point(x=2.0)
    before = (p.key, p.to_dict(), repr(p))
    assert frozen_memo(p) is frozen_memo(p)
    frozen_memo(p).get_or_set(TOTAL, lambda: 7)
    assert (p.key, p.to_dict(), repr(p)) == before
    assert p == _Point(x=2.0) and hash(p) == hash(_Point(x=2.0))
    assert p.key == structural_key(_Point(x=2.0))
    assert [f.name for f in dataclasses.fields(p)] == ["x"]
    # replace() builds a new instance with its own (empty) memo
    q = p.replace(x=3.0)
    assert frozen_memo(q).get(TOTAL) is None and q.key != p.key
    # a pickled config comes back equal, with an empty memo
    clone = pickle.loads(pickle.dumps(p))
    assert clone == p and frozen_memo(clone).get(TOTAL) is None and clone.key == p.key
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 5.0  # type: ignore[misc]


def test_extractor_keys_are_memoised_once_per_instance() -> None:
    meg = MegExtractor(frequency=100.0)
    assert meg.prepare_key is meg.prepare_key  # the same str object: computed once
    assert meg.prepare_key == meg.replace(output="static").prepare_key  # read fields left out
    assert meg.prepare_key != meg.replace(frequency=50.0).prepare_key
    assert len(frozen_memo(meg)) == 1


def test_index_memo_is_shared_by_selections(tmp_path) -> None:
    import pandas as pd

    from neuralset import segment_on_triggers, validate_events

    events = validate_events(
        pd.DataFrame({"type": "Word", "start": np.arange(6.0), "timeline": "t", "text": "a"})
    )
    segs = segment_on_triggers(events, "Word", duration=0.5)
    assert segs._index is None  # built on first use only
    index = segs.index
    sub = segs.select([1, 2])
    assert sub.index is index and sub.select([0]).index is index
    shifted = sub.with_windows(sub.start + 0.1, sub.duration)
    assert shifted.index is index and shifted.start.tolist() == [1.1, 2.1]
    assert (shifted.trigger == sub.trigger).all() and (shifted.timeline == sub.timeline).all()
    index.memo.table(SQUARES)[1] = 1
    assert sub.index.memo.table(SQUARES) == {1: 1}
    # an index built on another table is never carried over
    other = validate_events(events.copy())
    moved = dataclasses.replace(sub, events=other)
    assert moved._index is None and moved.index is not index and moved.index.events is other
    # a selection of unindexed segments builds its own index
    fresh = segment_on_triggers(events, "Word", duration=0.5)
    assert fresh.select([0]).index is not fresh.index
