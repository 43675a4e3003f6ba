"""SegmentDataset: batched reads, checks before the first batch, out-of-bounds policies, DataLoader."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from neuralset.config import config
from neuralset.extractors.base import OutOfBoundsError
from neuralset.loaders import Batch, DatasetNotReadyError, SegmentDataset, collate_fn
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

from .conftest import SFREQ, RampExtractor, expected_window, make_events

READS: list[int] = []


@config
class CountingRamp(RampExtractor):
    """RampExtractor that records the size of every read call."""

    def read(self, segments: Any, store: Any, *, out_of_bounds: Any = "error") -> Any:
        READS.append(len(segments))
        return super().read(segments, store, out_of_bounds=out_of_bounds)


def inside(setup: dict[str, Any]) -> Any:
    """The segments whose window lies wholly inside their recording."""
    segs = setup["segments"]
    return segs.select(segs.covering("Meg") >= 0)


@pytest.fixture(scope="module")
def prepared(setup: dict[str, Any]) -> dict[str, Any]:
    ds = SegmentDataset(inside(setup), {"meg": RampExtractor(frequency=SFREQ)}, setup["store"])
    reports = ds.prepare(progress=False)
    return {**setup, "dataset": ds, "reports": reports}


def test_batch_values_match_the_ramp(prepared: dict[str, Any]) -> None:
    ds = prepared["dataset"]
    segs = ds.segments
    idx = [0, 5, len(ds) - 1, 3]
    batch = ds.__getitems__(idx)
    assert isinstance(batch, Batch)
    assert batch["meg"].shape == (4, 3, 40)  # 0.8 s at 50 Hz, exactly
    for j, i in enumerate(idx):
        np.testing.assert_allclose(
            batch["meg"][j].numpy(), expected_window(segs.start[i], 40), atol=2e-3
        )
    assert batch.index.tolist() == idx
    np.testing.assert_array_equal(batch.start.numpy(), segs.start[idx])
    np.testing.assert_array_equal(batch.trigger.numpy(), segs.trigger[idx])
    np.testing.assert_array_equal(batch.timeline.numpy(), segs.timeline[idx])
    assert (segs.events["type"].to_numpy()[batch.trigger.numpy()] == "Word").all()
    one = ds[5]
    assert one.size == 1 and one.index.tolist() == [5]
    np.testing.assert_array_equal(one["meg"][0].numpy(), batch["meg"][1].numpy())


def test_prepare_is_incremental(prepared: dict[str, Any]) -> None:
    assert prepared["reports"]["meg"].computed == 2
    again = prepared["dataset"].prepare(progress=False)
    assert again["meg"].computed == 0 and again["meg"].cached == 2


def test_one_read_per_extractor_per_batch(prepared: dict[str, Any]) -> None:
    ds = SegmentDataset(
        prepared["dataset"].segments,
        {"a": CountingRamp(frequency=SFREQ), "b": CountingRamp(frequency=SFREQ, output="static")},
        prepared["store"],
    )
    ds.prepare(progress=False)
    READS.clear()
    batch = ds.__getitems__(list(range(16)))
    assert READS == [16, 16]
    assert batch["b"].shape == (16, 3)
    np.testing.assert_allclose(batch["b"].numpy(), batch["a"].numpy().mean(axis=-1), rtol=1e-5)


ITEMS_CALLS: list[int] = []


@config
class CountingItems(RampExtractor):
    """A ramp reader counting how many recordings it computes item keys for."""

    def items(self, events: pd.DataFrame) -> list[Any]:
        out = super().items(events)
        ITEMS_CALLS.append(len(out))
        return out


def test_check_and_first_read_compute_the_keys_once(prepared: dict[str, Any]) -> None:
    # check() asks the recording table the reads use: the keys (a hash of each source file's
    # identity) are computed once for the two recordings, not once by each
    ds = SegmentDataset(
        prepared["dataset"].segments, {"meg": CountingItems(frequency=SFREQ)}, prepared["store"]
    )
    ds.prepare(progress=False)
    fresh = SegmentDataset(ds.segments.select(np.arange(len(ds))), ds.extractors, ds.store)
    ITEMS_CALLS.clear()
    fresh.check()
    batch = fresh.__getitems__([0, 1, len(fresh) - 1])
    assert ITEMS_CALLS == [2]
    assert batch["meg"].shape[0] == 3


def test_unprepared_store_says_what_to_call(setup: dict[str, Any], tmp_path: Any) -> None:
    ds = SegmentDataset(
        inside(setup), {"meg": RampExtractor(frequency=SFREQ)}, Store(tmp_path / "empty")
    )
    with pytest.raises(
        DatasetNotReadyError,
        match=r"'meg' \(RampExtractor\) is not prepared.*2 items missing.*rec0\.npy.*call dataset\.prepare\(\) first",
    ):
        ds.__getitems__([0, 1])
    with pytest.raises(DatasetNotReadyError, match="call dataset.prepare"):
        ds.loader(batch_size=4)
    assert not (tmp_path / "empty").exists()  # checking never creates the store


def test_segments_without_the_event_type_are_reported(setup: dict[str, Any]) -> None:
    events = setup["events"]
    extra = pd.DataFrame(
        [dict(type="Word", start=500.0, duration=0.2, timeline="sub-0", text="late")]
    )
    table = pd.concat([events.astype({"type": str, "timeline": str}), extra], ignore_index=True)
    from neuralset.events import validate_events

    table = validate_events(table)
    segs = segment_on_triggers(table, "Word", offset=-0.2, duration=0.8)
    ds = SegmentDataset(segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"])
    with pytest.raises(
        DatasetNotReadyError,
        match=r"reads Meg events, but 1 of \d+ segments have none.*segments\.require\('Meg'\)",
    ):
        ds.check()


def test_out_of_bounds_policies(prepared: dict[str, Any]) -> None:
    segs = prepared["segments"]  # includes the first/last word of each timeline, past the recording
    outside = np.flatnonzero(segs.covering("Meg") < 0)
    assert len(outside) == 4
    ext = {"meg": RampExtractor(frequency=SFREQ)}
    idx = list(range(len(segs)))
    with pytest.raises(
        OutOfBoundsError, match=r"segments \[0, 40\] start outside their Meg recording"
    ):
        SegmentDataset(segs, ext, prepared["store"]).__getitems__(idx)
    dropped = SegmentDataset(segs, ext, prepared["store"], out_of_bounds="drop").__getitems__(idx)
    assert dropped.size == len(segs) - 4
    assert set(dropped.index.tolist()) == set(idx) - set(outside.tolist())
    assert not dropped.mask
    padded = SegmentDataset(segs, ext, prepared["store"], out_of_bounds="pad").__getitems__(idx)
    assert padded.size == len(segs)
    mask = padded.mask["meg"].numpy()
    assert mask.shape == (len(segs), 40)
    # segment 0 starts 0.1 s (5 samples) before its recording; the last runs 0.2 s past its end
    assert mask[0].tolist() == [False] * 5 + [True] * 35
    last = outside[1]
    assert mask[last].sum() == 40 - int(round((segs.stop[last] - (1.0 + 20.0)) * SFREQ))
    data = padded["meg"].numpy()
    assert (data[0][:, :5] == 0).all()
    np.testing.assert_allclose(data[0][:, 5:], expected_window(segs.start[0], 40)[:, 5:], atol=2e-3)
    inside_rows = np.flatnonzero(mask.all(axis=1))
    np.testing.assert_array_equal(data[inside_rows], dropped["meg"].numpy())


@pytest.mark.parametrize("num_workers", [0, 2])
def test_torch_dataloader(prepared: dict[str, Any], num_workers: int) -> None:
    from torch.utils.data import DataLoader

    ds = prepared["dataset"]
    loader = DataLoader(
        ds, batch_size=16, shuffle=False, num_workers=num_workers, collate_fn=collate_fn
    )  # type: ignore[arg-type]
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches)
    assert [b.size for b in batches] == [16] * (len(ds) // 16) + (
        [len(ds) % 16] if len(ds) % 16 else []
    )
    whole = Batch.concat(batches)
    assert whole.index.tolist() == list(range(len(ds)))
    direct = ds.__getitems__(list(range(len(ds))))
    np.testing.assert_array_equal(whole["meg"].numpy(), direct["meg"].numpy())
    shuffled = list(ds.loader(batch_size=8, shuffle=True, num_workers=num_workers))
    assert sorted(np.concatenate([b.index.numpy() for b in shuffled]).tolist()) == list(
        range(len(ds))
    )


def test_collate_of_single_items(prepared: dict[str, Any]) -> None:
    ds = prepared["dataset"]
    merged = ds.collate([ds[1], ds[2], ds[3]])
    np.testing.assert_array_equal(merged["meg"].numpy(), ds.__getitems__([1, 2, 3])["meg"].numpy())
    with pytest.raises(TypeError, match="expects Batch objects, got dict"):
        ds.collate([{"meg": 1}])


def test_dataset_pickles_without_open_arrays(prepared: dict[str, Any]) -> None:
    ds = prepared["dataset"]
    ds.__getitems__([0, 1])
    blob = pickle.dumps(ds)
    assert (
        len(blob) < 200_000
    )  # events + segments, no recording data (2 x 1000 x 3 float32 is 24 kB)
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(
        clone.__getitems__([3])["meg"].numpy(), ds.__getitems__([3])["meg"].numpy()
    )


def test_reads_do_not_mutate_events(prepared: dict[str, Any]) -> None:
    ds = prepared["dataset"]
    before = ds.segments.events.copy()
    ds.__getitems__(list(range(10)))
    pd.testing.assert_frame_equal(ds.segments.events, before)


def test_bad_arguments(setup: dict[str, Any]) -> None:
    segs, store = setup["segments"], setup["store"]
    ext = RampExtractor(frequency=SFREQ)
    with pytest.raises(
        ValueError, match=r"out_of_bounds: expected one of 'error', 'drop', 'pad', got 'clip'"
    ):
        SegmentDataset(segs, {"meg": ext}, store, out_of_bounds="clip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"name 'start' must be a Python identifier other than"):
        SegmentDataset(segs, {"start": ext}, store)
    with pytest.raises(TypeError, match=r"extractors\['meg'\]: expected an Extractor, got str"):
        SegmentDataset(segs, {"meg": "meg"}, store)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="expected Segments, got DataFrame"):
        SegmentDataset(setup["events"], {"meg": ext}, store)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:  # an empty selection never becomes 0 silent batches
        SegmentDataset(segs.select(np.zeros(len(segs), dtype=bool)), {"meg": ext}, store)
    assert str(info.value) == (
        "SegmentDataset.segments: no segment, so no batch; check the selection that built them "
        "(segments.split(name) and segment_on_triggers(...) say what they found)"
    )
    with pytest.raises(IndexError, match="out of range for a dataset of"):
        ds = SegmentDataset(inside(setup), {"meg": ext}, store)
        ds.prepare(progress=False)
        ds.__getitems__([10_000])


def test_make_events_helper(tmp_path: Any) -> None:
    events = make_events(tmp_path, n_timelines=1, duration=5.0)
    assert (events["type"] == "Meg").sum() == 1


def test_deleted_entries_are_not_served_from_the_open_cache(
    setup: dict[str, Any], tmp_path: Any
) -> None:
    from neuralset.extractors.base import ExtractorNotPreparedError

    store = Store(tmp_path / "store")
    ds = SegmentDataset(inside(setup), {"meg": RampExtractor(frequency=SFREQ)}, store)
    ds.prepare(progress=False)
    first = ds.__getitems__([0, 1])["meg"].numpy()
    for entry in store.entries():
        store.delete(entry.key)
    with pytest.raises(
        ExtractorNotPreparedError,
        match=r"RampExtractor has no stored data for Meg event .*call extractor\.prepare",
    ):
        ds.__getitems__([0, 1])
    ds.prepare(progress=False)
    np.testing.assert_array_equal(ds.__getitems__([0, 1])["meg"].numpy(), first)


def test_mixed_extractors_with_integer_labels(prepared: dict[str, Any]) -> None:
    from neuralset.extractors.events import LabelEncoder, Pulse
    from neuralset.loaders import JaxBatchIterator

    segs = prepared["dataset"].segments
    ds = SegmentDataset(
        segs,
        {
            "meg": RampExtractor(frequency=SFREQ),
            "label": LabelEncoder(event_type="Word", field="text"),
            "pulse": Pulse(event_type="Word", frequency=SFREQ),
        },
        prepared["store"],
    )
    ds.prepare(progress=False)
    assert ds.layout["label"] == "Int batch *label_features"
    assert ds.layout["meg"] == "Float batch *meg_features meg_time"
    idx = [0, 7, 20]
    batch = ds.__getitems__(idx)
    texts = segs.events["text"].to_numpy()[segs.trigger[idx]]
    vocab = sorted(set(segs.events.loc[segs.events["type"] == "Word", "text"]))
    assert batch["label"].dtype.is_floating_point is False
    assert batch["label"].tolist() == [vocab.index(t) for t in texts]
    # the trigger word (0.2 s long) starts 0.2 s (10 samples) into each window
    assert batch["pulse"].shape == (3, 1, 40)
    assert (
        batch["pulse"][0, 0].tolist()
        == [0.0] * 10 + [1.0] * 10 + [0.0] * 15 + [1.0] * 5  # next word 0.5 s later
    )
    jb = next(iter(JaxBatchIterator(ds, 3, shuffle=False)))
    np.testing.assert_array_equal(
        np.asarray(jb["label"]), ds.__getitems__([0, 1, 2])["label"].numpy()
    )
