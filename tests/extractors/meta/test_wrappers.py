"""Concat, Crop, Aggregate and ToStatic: each equals the same numpy operation on the inner reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.extractors.events import EventField, Pulse
from neuralset.extractors.meta import Aggregate, Concat, Crop, ToStatic
from neuralset.extractors.meta.wrapper import aggregate_time, with_windows
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.loaders import SegmentDataset
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

MEG = MegExtractor(frequency=100.0, picks=("meg",))
PULSE = Pulse(event_type="Word", frequency=100.0)


@pytest.fixture(scope="module")
def prepared(small_events: pd.DataFrame, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("wrappers"))
    MEG.prepare(small_events, store, progress=False)
    return store


@pytest.fixture(scope="module")
def segments(small_events):
    return segment_on_triggers(small_events, "Word", offset=-0.1, duration=0.5).require("Meg")


def test_concat_dynamic_and_static(small_events, segments, prepared):
    both = Concat(extractors=(MEG, PULSE))
    # the inner MEG, prepared alone before, is found in the store: nothing is recomputed
    report = both.prepare(small_events, prepared, progress=False)
    assert report.computed == 0 and report.cached == report.total > 0
    got = both.read(segments, prepared).data
    ref = np.concatenate(
        [MEG.read(segments, prepared).data, PULSE.read(segments, prepared).data], axis=1
    )
    np.testing.assert_array_equal(got, ref)
    assert (
        got.shape == (len(segments), 7, 50) and both.output == "dynamic" and both.frequency == 100.0
    )
    static = Concat(
        extractors=(
            EventField(event_type="Stimulus", field="code"),
            EventField(event_type="Stimulus", field="code", aggregation="trigger"),
        )
    )
    stim = segment_on_triggers(small_events, "Stimulus", duration=0.3)
    codes = small_events["code"].to_numpy()[stim.trigger]
    np.testing.assert_array_equal(static.read(stim, prepared).data, np.stack([codes, codes], 1))
    # pad: the mask is the conjunction; drop: a segment dropped by any is dropped
    late = with_windows(
        segments, np.where(np.arange(len(segments)) % 2, 11.7, 5.0), segments.duration
    )
    padded = both.read(late, prepared, out_of_bounds="pad")
    np.testing.assert_array_equal(padded.mask, MEG.read(late, prepared, out_of_bounds="pad").mask)
    dropped = both.read(late, prepared, out_of_bounds="drop")
    assert (
        dropped.keep is not None
        and not dropped.keep.all()
        and len(dropped.data) == dropped.keep.sum()
    )


def test_concat_errors():
    with pytest.raises(ConfigError, match=r"^Concat.extractors: give at least two extractors"):
        Concat(extractors=(MEG,))
    with pytest.raises(ConfigError, match=r"^Concat.extractors: mix static and dynamic outputs"):
        Concat(extractors=(MEG, EventField(event_type="Stimulus", field="code")))
    with pytest.raises(
        ConfigError, match=r"^Concat.extractors: dynamic outputs need one shared frequency"
    ):
        Concat(extractors=(MEG, PULSE.replace(frequency=50.0)))
    with pytest.raises(
        ConfigError, match=r"^Concat.event_type: a wrapper reads the events of its inner"
    ):
        Concat(extractors=(MEG, PULSE), event_type="Word")
    both = Concat(extractors=(MEG, PULSE))
    back = from_dict(both.to_dict())
    assert back == both and back.prepare_key == both.prepare_key
    assert both.prepare_key != Concat(extractors=(PULSE, MEG)).prepare_key
    assert both.prepare_key != Concat(extractors=(MEG.replace(notch=(50.0,)), PULSE)).prepare_key


def test_crop_is_the_shifted_read(segments, prepared):
    crop = Crop(extractor=MEG, start=0.1, duration=0.2)
    whole = MEG.read(segments, prepared).data
    np.testing.assert_array_equal(crop.read(segments, prepared).data, whole[..., 10:30])
    to_end = Crop(extractor=MEG, start=0.3)
    np.testing.assert_array_equal(to_end.read(segments, prepared).data, whole[..., 30:])
    with pytest.raises(
        ValueError, match=r"^Crop.start: 0.6 s is past the end of segments \[0, 1, 2\]"
    ):
        Crop(extractor=MEG, start=0.6).read(segments, prepared)
    with pytest.raises(ConfigError, match=r"^Crop.duration: must be > 0 seconds"):
        Crop(extractor=MEG, duration=0.0)


@pytest.mark.parametrize("how", ["mean", "max", "sum", "first", "last"])
def test_aggregate_equals_numpy(segments, prepared, how):
    dyn = MEG.read(segments, prepared).data
    ref = {
        "mean": dyn.mean(-1),
        "max": dyn.max(-1),
        "sum": dyn.sum(-1),
        "first": dyn[..., 0],
        "last": dyn[..., -1],
    }[how]
    got = Aggregate(extractor=MEG, how=how).read(segments, prepared).data
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def test_aggregate_padded_windows_use_real_samples(segments, prepared):
    late = with_windows(
        segments, np.where(np.arange(len(segments)) % 2, 11.7, 5.0), segments.duration
    )
    out = MEG.read(late, prepared, out_of_bounds="pad")
    agg = Aggregate(extractor=MEG, how="mean").read(late, prepared, out_of_bounds="pad")
    i = int(np.flatnonzero(~out.mask.all(axis=1))[0])
    real = out.mask[i]
    np.testing.assert_allclose(agg.data[i], out.data[i][:, real].mean(-1), rtol=1e-5)
    assert agg.mask.shape == (len(late), 1)
    # first/last valid sample
    data = np.arange(12.0).reshape(2, 1, 6)
    mask = np.array([[False, True, True, True, False, False], [False] * 6])
    np.testing.assert_array_equal(aggregate_time(data, mask, "first")[:, 0], [1.0, 0.0])
    np.testing.assert_array_equal(aggregate_time(data, mask, "last")[:, 0], [3.0, 0.0])
    np.testing.assert_array_equal(aggregate_time(data, mask, "max")[:, 0], [3.0, 0.0])


def test_to_static_reads_each_trigger_span(small_events, prepared):
    segs = segment_on_triggers(small_events, "Word", duration=1.0).require("Meg")
    got = ToStatic(extractor=MEG, how="mean").read(segs, prepared).data
    words = small_events.iloc[segs.trigger]
    spans = with_windows(segs, words["start"].to_numpy(), words["duration"].to_numpy())
    ref = MEG.read(spans, prepared).data.mean(-1)  # every word lasts 0.2 s: one read
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # independent of the window: a longer window gives the same values
    longer = with_windows(segs, segs.start - 0.1, segs.duration + 0.5)
    np.testing.assert_array_equal(ToStatic(extractor=MEG).read(longer, prepared).data, got)
    with pytest.raises(
        ConfigError, match=r"^ToStatic.extractor: needs a dynamic extractor with a frequency"
    ):
        ToStatic(extractor=EventField(event_type="Stimulus", field="code"))


def test_to_static_counts_every_sample_of_the_span(tmp_path):
    """An event [start, stop) covers the samples start + k / f < stop: ceil(duration * f) of
    them (as painted), so a sum of a Pulse counts them all (round() dropped the last one)."""
    from neuralset.events import validate_events

    events = validate_events(
        pd.DataFrame(
            {
                "type": "Stimulus",
                "start": [1.0, 2.0, 3.0, 4.0, 5.0],
                "duration": [0.24, 0.25, 0.5, 0.0, 0.31],
                "timeline": "run-1",
            }
        )
    )
    segs = segment_on_triggers(events, "Stimulus", duration=1.0)
    pulse = Pulse(event_type="Stimulus", frequency=10.0)
    got = ToStatic(extractor=pulse, how="sum").read(segs, Store(tmp_path)).data
    expected = [np.ceil(d * 10.0 - 1e-6) or 1.0 for d in events["duration"]]  # [3, 3, 5, 1, 4]
    np.testing.assert_array_equal(got[:, 0], expected)
    # the same count as the painted pulse over each event's window
    painted = pulse.read(segs, Store(tmp_path)).data[:, 0].sum(-1)
    np.testing.assert_array_equal(got[:, 0], painted)


def test_through_a_dataset(small_events, segments, prepared):
    ds = SegmentDataset(
        segments,
        {"meg": Crop(extractor=MEG, start=0.1, duration=0.2), "mean": Aggregate(extractor=MEG)},
        prepared,
    )
    ds.prepare(progress=False)
    batch = ds.__getitems__([0, 1, 2, 3])
    assert tuple(batch["meg"].shape) == (4, 6, 20) and tuple(batch["mean"].shape) == (4, 6)
