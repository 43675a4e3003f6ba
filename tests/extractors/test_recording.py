"""RecordingExtractor reads: laid out time-major in memory (``time_major=True``), and static
outputs at the trigger (on a ramp whose value is the time, so a wrong sample shows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralset.extractors.base import OutOfBoundsError
from neuralset.segments import segment_on_triggers, sliding_windows
from neuralset.store import Store

from ..loaders.conftest import N_CHANNELS, SFREQ, RampExtractor, expected_window, make_events


@pytest.fixture(scope="module")
def ramp_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Store]:
    root = tmp_path_factory.mktemp("ramp_tm")
    events = make_events(root, n_timelines=2, duration=6.0)
    store = Store(root / "store")
    RampExtractor(frequency=SFREQ).prepare(events, store, progress=False)
    return events, store


def _time_first(arr: np.ndarray) -> bool:
    """Whether ``arr`` (batch, *features, time) is a view of a C-ordered (batch, time, *features)."""
    return bool(np.moveaxis(arr, -1, 1).flags.c_contiguous)


def test_time_major_reads_the_same_windows_laid_out_time_first(ramp_store) -> None:
    events, store = ramp_store
    segs = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8)
    segments = segs.select(segs.covering("Meg") >= 0)
    plain = RampExtractor(frequency=SFREQ)
    fast = RampExtractor(frequency=SFREQ, time_major=True)
    assert fast.prepare_key == plain.prepare_key  # the same stored items: nothing to prepare
    assert fast.is_prepared(events, store) == []  # nothing missing
    got, want = fast.read(segments, store).data, plain.read(segments, store).data
    assert got.shape == want.shape == (len(segments), N_CHANNELS, 40)
    np.testing.assert_array_equal(got, want)
    # channel c at sample s holds its own time + 1000 c: any transposition would show
    for j in (0, len(segments) - 1):
        np.testing.assert_allclose(got[j], expected_window(segments.start[j], 40), atol=1e-4)
    assert _time_first(got) and not got.flags.c_contiguous
    assert want.flags.c_contiguous


def test_time_major_windows_past_the_end_are_padded_like_the_default(ramp_store) -> None:
    events, store = ramp_store
    # 2 s windows on words up to the end of each 6 s recording: the last ones run past it
    segments = segment_on_triggers(events, "Word", duration=2.0)
    plain = RampExtractor(frequency=SFREQ)
    fast = RampExtractor(frequency=SFREQ, time_major=True)
    with pytest.raises(Exception, match="run past the start or end"):
        fast.read(segments, store)
    got, want = (e.read(segments, store, out_of_bounds="pad") for e in (fast, plain))
    assert want.mask is not None and not want.mask.all()  # some windows were cut
    np.testing.assert_array_equal(got.mask, want.mask)
    np.testing.assert_array_equal(got.data, want.data)
    assert _time_first(got.data)
    kept = fast.read(segments, store, out_of_bounds="drop")
    np.testing.assert_array_equal(kept.data, plain.read(segments, store, out_of_bounds="drop").data)


def test_time_major_with_a_float16_store(tmp_path: Path) -> None:
    events = make_events(tmp_path, n_timelines=1, duration=4.0)
    store = Store(tmp_path / "store")
    half = RampExtractor(frequency=SFREQ, store_dtype="float16")
    half.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Word", duration=0.4).require("Meg")
    got = half.replace(time_major=True).read(segments, store).data
    assert got.dtype == np.float32 and _time_first(got)
    np.testing.assert_array_equal(got, half.read(segments, store).data)


def test_static_trigger_of_sliding_windows_is_each_window_start(ramp_store) -> None:
    events, store = ramp_store
    at_trigger = RampExtractor(frequency=SFREQ, output="static", aggregation="trigger")
    windows = sliding_windows(events, duration=1.0, stride=0.5, blocks="Meg")
    assert (windows.trigger < 0).all() and len(windows) == 22  # 11 per 6 s recording
    got = at_trigger.read(windows, store).data
    np.testing.assert_allclose(
        got, expected_window(0.0, 1)[:, 0] + windows.start[:, None], atol=1e-4
    )
    words = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8)
    words = words.select(words.covering("Meg") >= 0)
    onsets = events["start"].to_numpy()[words.trigger]  # trigger segments: the word's onset
    got = at_trigger.read(words, store).data
    np.testing.assert_allclose(got, expected_window(0.0, 1)[:, 0] + onsets[:, None], atol=1e-4)


def test_out_of_bounds_error_says_by_how_many_samples(ramp_store) -> None:
    """A window one sample past the recording's end (what rounding a window that ends at the
    end of a file resampled off its grid gives) is named as such; a longer overshoot counts its
    samples. Exact messages."""
    events, store = ramp_store
    ext = RampExtractor(frequency=SFREQ)
    meg = events[events["type"] == "Meg"].iloc[0]  # sub-0: 1.0 s to 7.0 s, 300 samples
    words = segment_on_triggers(events, "Word", duration=0.4).require("Meg")
    first = words.select(np.array([0]))
    head = (
        "segments [0] run past the start or end of Meg event 0 (timeline sub-0, file rec0.npy) "
        "(300 samples at 50 Hz) "
    )
    tail = "pass out_of_bounds='drop' or 'pad' (zeros, masked), or shorten the windows"
    end = float(meg["start"] + meg["duration"])
    for start, message in (
        (
            end - 0.4 + 1 / SFREQ,
            "by one sample of rounding to the 50 Hz grid (the window's "
            "first sample and its length are rounded apart); ",
        ),
        (end - 0.4 + 5 / SFREQ, "by up to 5 samples; "),
    ):
        late = first.with_windows(np.array([start]), np.array([0.4]))
        with pytest.raises(OutOfBoundsError) as err:
            ext.read(late, store)
        assert str(err.value) == head + message + tail
    padded = ext.read(
        first.with_windows(np.array([end - 0.4 + 1 / SFREQ]), np.array([0.4])),
        store,
        out_of_bounds="pad",
    )
    assert padded.mask is not None and padded.mask.sum() == 19 and not padded.mask[0, -1]
