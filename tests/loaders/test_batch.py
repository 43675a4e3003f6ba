"""Batch: typed fields checked at construction, switchable checks, light metadata."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import torch

from neuralset.loaders import (
    Batch,
    BatchTypeError,
    SegmentDataset,
    set_typecheck,
    typecheck_enabled,
)
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

from .conftest import SFREQ, RampExtractor, make_events


def meta(n: int) -> dict[str, torch.Tensor]:
    return {
        "start": torch.zeros(n, dtype=torch.float64),
        "duration": torch.ones(n, dtype=torch.float64),
        "timeline": torch.zeros(n, dtype=torch.int32),
        "trigger": torch.arange(n),
        "index": torch.arange(n),
    }


LAYOUT = {"meg": "Float batch *meg_features meg_time", "label": "batch *label_features"}


@pytest.fixture(autouse=True)
def _typecheck_follows_env() -> Any:
    set_typecheck(None)
    yield
    set_typecheck(None)


def test_valid_batch() -> None:
    b = Batch(
        {"meg": torch.zeros(4, 3, 10), "label": torch.zeros(4)},
        mask={"meg": torch.ones(4, 10, dtype=torch.bool)},
        layout=LAYOUT,
        **meta(4),
    )
    assert b.size == 4 and len(b) == 2 and list(b) == ["meg", "label"]
    assert "Batch(size=4, meg: (4, 3, 10) float32" in repr(b)
    assert b.to("cpu")["meg"].shape == (4, 3, 10)


@pytest.mark.parametrize(
    ("data", "mask", "metadata", "match"),
    [
        (
            {"meg": torch.zeros(4, 3, 10, dtype=torch.int64)},
            {},
            meta(4),
            r"Batch field 'meg': expected Float\[Tensor, 'batch \*meg_features meg_time'\].*dtype torch.int64",
        ),
        ({"meg": torch.zeros(5, 3, 10)}, {}, meta(4), r"Batch field 'meg'.*shape \(5, 3, 10\)"),
        (
            {"meg": torch.zeros(4, 3, 10)},
            {"meg": torch.ones(4, 9, dtype=torch.bool)},
            meta(4),
            r"Batch mask 'meg': expected Bool\[Tensor, 'batch meg_time'\].*shape \(4, 9\)",
        ),
        (
            {"meg": torch.zeros(4, 3, 10)},
            {"meg": torch.ones(4, 10)},
            meta(4),
            r"Batch mask 'meg'.*dtype torch.float32",
        ),
        (
            {"meg": torch.zeros(4, 3, 10)},
            {},
            {**meta(4), "start": torch.zeros(4)},
            r"Batch metadata does not match.*start: Tensor of shape \(4,\) and dtype torch.float32",
        ),
        (
            {"meg": torch.zeros(4, 3, 10)},
            {},
            {**meta(4), "trigger": torch.zeros(3, dtype=torch.int64)},
            r"Batch metadata does not match",
        ),
        (
            {"meg": torch.zeros(4, 3, 10)},
            {"eeg": torch.ones(4, 10, dtype=torch.bool)},
            meta(4),
            r"masks \['eeg'\] have no matching data field",
        ),
    ],
)
def test_wrong_shapes_and_dtypes_raise(data: Any, mask: Any, metadata: Any, match: str) -> None:
    with pytest.raises(BatchTypeError, match=match):
        Batch(data, mask=mask, layout=LAYOUT, **metadata)


def test_checks_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {"meg": torch.zeros(5, 3, 10, dtype=torch.int64)}
    set_typecheck(False)
    assert not typecheck_enabled()
    Batch(bad, layout=LAYOUT, **meta(4))  # no error
    set_typecheck(None)
    monkeypatch.setenv("NEURALSET_TYPECHECK", "0")
    assert not typecheck_enabled()
    Batch(bad, layout=LAYOUT, **meta(4))
    monkeypatch.setenv("NEURALSET_TYPECHECK", "1")
    with pytest.raises(BatchTypeError):
        Batch(bad, layout=LAYOUT, **meta(4))
    Batch(bad, layout=LAYOUT, check=False, **meta(4))  # per-batch switch


def test_integer_key_explains_collate() -> None:
    b = Batch({"meg": torch.zeros(2, 3, 4)}, **meta(2))
    with pytest.raises(TypeError, match="pass collate_fn=dataset.collate"):
        b[0]  # type: ignore[index]
    with pytest.raises(KeyError, match="no field 'eeg' in this batch; fields: meg"):
        b["eeg"]


def test_concat_and_pickle_roundtrip() -> None:
    a = Batch({"meg": torch.ones(2, 3, 4)}, **meta(2))
    b = Batch({"meg": torch.zeros(3, 3, 4)}, **meta(3))
    c = Batch.concat([a, b])
    assert c.size == 5 and c["meg"][:2].sum() == 24
    d = pickle.loads(pickle.dumps(c))
    assert torch.equal(d["meg"], c["meg"]) and torch.equal(d.index, c.index)


@pytest.mark.parametrize("word_every", [0.5, 0.02])
def test_batch_metadata_pickles_small_whatever_the_events(tmp_path: Any, word_every: float) -> None:
    # 2 timelines x 60 s: ~240 or ~6000 events; the batch metadata must not depend on it
    events = make_events(tmp_path, duration=60.0, word_every=word_every)
    segs = segment_on_triggers(events, "Word", offset=0.0, duration=0.4).require("Meg")
    segs = segs.select(segs.covering("Meg") >= 0)
    ds = SegmentDataset(segs, {"meg": RampExtractor(frequency=SFREQ)}, Store(tmp_path / "store"))
    ds.prepare(progress=False)
    batch = ds.__getitems__(list(range(32)))
    meta_bytes = len(pickle.dumps(batch.metadata()))
    assert meta_bytes < 2_500, meta_bytes
    data_bytes = sum(t.numel() * t.element_size() for t in batch.values())
    whole = len(pickle.dumps(batch))
    assert whole < data_bytes + 6_000, (whole, data_bytes)
