"""Spike binning: counts equal a per-unit np.histogram loop, on NWB and npz files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.neural.spikes import SpikesExtractor, bin_spikes, read_spike_times
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy
from neuralset.synthetic.recordings import SPIKE_LATENCY


def _histogram_loop(
    times: np.ndarray, index: np.ndarray, start: float, freq: float, n_bins: int
) -> np.ndarray:
    begins = np.concatenate([[0], index[:-1]])
    edges = start + np.arange(n_bins + 1) / freq
    cols = [np.histogram(times[b:e], bins=edges)[0] for b, e in zip(begins, index)]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("freq", [100.0, 37.5, 1000.0])
def test_bin_spikes_equals_per_unit_histogram(freq: float) -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(0, 200, size=40)
    sizes[3] = 0  # a silent unit
    times = np.concatenate([np.sort(rng.uniform(-1.0, 12.0, s)) for s in sizes])
    index = np.cumsum(sizes)
    n_bins = int(10.0 * freq)
    got = bin_spikes(times, index, start=0.25, frequency=freq, n_bins=n_bins)
    assert got.shape == (n_bins, 40)
    np.testing.assert_array_equal(got, _histogram_loop(times, index, 0.25, freq, n_bins))


def test_spikes_on_bin_edges_fall_in_the_bin_they_start() -> None:
    # spike times of a sorter are whole samples (k / 30 kHz): every 30th lies exactly on a
    # 1 kHz bin edge, where (t - start) * frequency can round down (1.007 * 1000 = 1006.99...)
    t = np.array([1.007, 2.014])
    assert np.floor(t * 1000.0).tolist() == [1006.0, 2013.0]
    got = bin_spikes(t, np.array([2]), start=0.0, frequency=1000.0, n_bins=3000)
    assert np.flatnonzero(got[:, 0]).tolist() == [1007, 2014]
    rng = np.random.default_rng(3)
    sizes = rng.integers(500, 2000, size=6)
    fs = 30_000
    times = np.concatenate([np.sort(rng.integers(0, 9 * fs, k)) / fs for k in sizes])
    index = np.cumsum(sizes)
    for start, freq in [(0.0, 1000.0), (0.1, 1000.0), (1.3, 100.0)]:
        n_bins = int(round((10 - start) * freq))  # past the last spike (histogram's closed edge)
        got = bin_spikes(times, index, start=start, frequency=freq, n_bins=n_bins)
        np.testing.assert_array_equal(got, _histogram_loop(times, index, start, freq, n_bins))


def test_bin_spikes_blocks_and_chunks_match(monkeypatch: pytest.MonkeyPatch) -> None:
    import neuralset.extractors.neural.spikes as spikes

    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 50, size=25)
    times = np.concatenate([np.sort(rng.uniform(0, 5, k)) for k in sizes])
    index = np.cumsum(sizes)
    whole = bin_spikes(times, index, start=0.0, frequency=50.0, n_bins=250)
    np.testing.assert_array_equal(whole, _histogram_loop(times, index, 0.0, 50.0, 250))
    monkeypatch.setattr(spikes, "_BLOCK_CELLS", 25 * 3)  # time blocks of 3 bins
    np.testing.assert_array_equal(
        bin_spikes(times, index, start=0.0, frequency=50.0, n_bins=250), whole
    )
    monkeypatch.setattr(spikes, "_CHUNK_SPIKES", 60)  # chunks of a few units (one if larger)
    np.testing.assert_array_equal(
        bin_spikes(times, index, start=0.0, frequency=50.0, n_bins=250), whole
    )


def test_bin_spikes_unsorted_units() -> None:
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 80, size=12)
    times = rng.uniform(0, 3, sizes.sum())  # not sorted within units
    index = np.cumsum(sizes)
    expected = _histogram_loop(times, index, 0.0, 10.0, 30)
    got = bin_spikes(times, index, start=0.0, frequency=10.0, n_bins=30)
    np.testing.assert_array_equal(got, expected)


def test_bin_spikes_rejects_bad_index() -> None:
    with pytest.raises(ValueError, match="non-decreasing end offsets ending at len"):
        bin_spikes(np.zeros(5), np.array([3, 2, 5]), start=0, frequency=10, n_bins=4)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    return SyntheticStudy(
        path=tmp_path_factory.mktemp("spikes"), n_subjects=2, duration=8.0, modalities=("spikes",)
    )


@pytest.fixture(scope="module")
def prepared(study: SyntheticStudy, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    events = study.events()
    store = Store(tmp_path_factory.mktemp("store"))
    SpikesExtractor(frequency=100.0).prepare(events, store, progress=False)
    return events, store


def test_read_equals_histogram_of_nwb_times(study: SyntheticStudy, prepared: tuple) -> None:
    events, store = prepared
    segments = segment_on_triggers(events, "Word", offset=-0.1, duration=0.5)
    first = segments.select(segments.timeline == 0)
    out = SpikesExtractor(frequency=100.0).read(first, store)
    path = study.path / events.loc[events["type"] == "Spikes", "filepath"].iloc[0]
    times, index, ids = read_spike_times(path)
    assert out.channels == tuple(str(i) for i in ids)
    assert out.data.shape == (len(first), len(ids), 50)  # 0.5 s at 100 Hz, exactly
    for k in range(len(first)):
        # a window starts at the bin nearest to the segment start (recording start 0, offset 0)
        bin_start = np.round(first.start[k] * 100.0) / 100.0
        expected = _histogram_loop(times, index, bin_start, 100.0, 50)
        np.testing.assert_array_equal(out.data[k], expected.T)
    # units 0 and 1 fire SPIKE_LATENCY after each word onset (= segment start + 0.1 s)
    onset = first.start + 0.1
    locked = np.floor((onset + SPIKE_LATENCY) * 100) - np.round(first.start * 100)
    assert (out.data[np.arange(len(first)), :2, locked.astype(int)] >= 1).all()


def test_npz_layouts_match_nwb(study: SyntheticStudy, prepared: tuple, tmp_path: Path) -> None:
    events, _ = prepared
    nwb = study.path / events.loc[events["type"] == "Spikes", "filepath"].iloc[0]
    times, index, ids = read_spike_times(nwb)
    unit_of_spike = np.repeat(ids, np.diff(np.concatenate([[0], index])))
    shuffle = np.random.default_rng(0).permutation(len(times))
    np.savez(tmp_path / "ragged.npz", spike_times=times, spike_times_index=index, unit_ids=ids)
    np.savez(tmp_path / "flat.npz", units=unit_of_spike[shuffle], times=times[shuffle])
    ex = SpikesExtractor(frequency=20.0)
    payload = {"path": str(nwb), "offset": 0.5, "duration": 6.0}
    ref, sfreq, meta = ex.compute_recording(payload)
    assert ref.shape == (120, len(ids)) and sfreq == 20.0
    for name in ("ragged.npz", "flat.npz"):
        got, _, got_meta = ex.compute_recording({**payload, "path": str(tmp_path / name)})
        assert got_meta["ch_names"] == meta["ch_names"]
        np.testing.assert_array_equal(got, ref)
    rate, _, _ = SpikesExtractor(frequency=20.0, scale="rate").compute_recording(payload)
    np.testing.assert_allclose(rate, ref * 20.0)


def test_channel_sets_across_subjects(prepared: tuple) -> None:
    events, store = prepared
    segments = segment_on_triggers(events, "Word", offset=0.0, duration=0.2)
    with pytest.raises(
        ValueError,
        match=r"channels='per_recording'\): this batch mixes recordings with different channel lists: sub-01/sub-01_spikes.nwb \(\d channels\), sub-02",
    ):
        SpikesExtractor(frequency=100.0).read(segments, store)
    union = SpikesExtractor(frequency=100.0, channels="union").read(segments, store)
    sub1 = segments.timeline == 0
    single = SpikesExtractor(frequency=100.0).read(segments.select(sub1), store)
    cols = [union.channels.index(c) for c in single.channels]
    np.testing.assert_array_equal(union.data[sub1][:, cols], single.data)
    assert union.channel_mask is not None
    assert union.channel_mask[sub1][:, cols].all()
    missing = ~union.channel_mask
    assert missing.any() and (union.data[missing] == 0).all()


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="SpikesExtractor.frequency: spike binning needs a bin frequency"
    ):
        SpikesExtractor(frequency=None)
    with pytest.raises(ConfigError, match="SpikesExtractor.frequency: must be > 0 Hz"):
        SpikesExtractor(frequency=-1.0)
    np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
    with pytest.raises(ValueError, match="needs arrays 'spike_times' \\+ 'spike_times_index'"):
        read_spike_times(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="must be NWB \\(.nwb\\) or numpy \\(.npz\\), got '.txt'"):
        read_spike_times(tmp_path / "x.txt")


def test_items_keyed_by_span(prepared: tuple) -> None:
    events, _ = prepared
    ex = SpikesExtractor(frequency=100.0)
    shorter = events.copy()
    spikes = (shorter["type"] == "Spikes").to_numpy()
    shorter.loc[spikes, "duration"] = 4.0
    assert [i.key for i in ex.items(events)] != [i.key for i in ex.items(shorter)]
    no_offset = events.copy()
    no_offset.loc[spikes, "offset"] = np.nan  # a table whose offset column is empty here
    assert [i.payload["offset"] for i in ex.items(no_offset)] == [0.0, 0.0]
    assert [i.key for i in ex.items(no_offset)] == [i.key for i in ex.items(events)]
    assert events.loc[spikes, "duration"].tolist() == [8.0, 8.0]  # input untouched


def test_bad_files_fail_in_preflight(prepared: tuple, tmp_path: Path) -> None:
    events, _ = prepared
    store = Store(tmp_path / "store")
    np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
    # 3 ids for 2 units: the stored names were silently 3 for 2 columns
    np.savez(
        tmp_path / "ids.npz",
        spike_times=np.array([0.1, 0.2, 0.3]),
        spike_times_index=np.array([1, 3]),
        unit_ids=np.array([5, 6, 7]),
    )
    (tmp_path / "x.txt").write_text("")
    expected = {
        "bad.npz": f"{tmp_path}/bad.npz: a spikes .npz needs arrays 'spike_times' + "
        "'spike_times_index' (ragged, NWB layout) or 'units' + 'times' (one per spike); "
        "found ['foo']",
        "ids.npz": f"{tmp_path}/ids.npz: 'unit_ids' has 3 ids for 2 units (entries of "
        "'spike_times_index'); give one id per unit, or leave 'unit_ids' out (0, 1, ...)",
        "x.txt": f"{tmp_path}/x.txt: spike files must be NWB (.nwb) or numpy (.npz), got '.txt'",
    }
    one = events[events["timeline"] == events["timeline"].iloc[0]].copy()
    for name, message in expected.items():
        one.loc[one["type"] == "Spikes", "filepath"] = str(tmp_path / name)
        with pytest.raises(ValueError) as err:
            SpikesExtractor().preflight(one, store)
        assert str(err.value) == message
        with pytest.raises(ValueError) as err:
            read_spike_times(tmp_path / name)
        assert str(err.value) == message
    one.loc[one["type"] == "Spikes", "filepath"] = str(tmp_path / "nope.nwb")
    with pytest.raises(FileNotFoundError) as missing:
        SpikesExtractor().prepare(one, store, progress=False)
    assert str(missing.value) == (
        f"SpikesExtractor: spike file not found: {tmp_path}/nope.nwb, for Spikes event 0 "
        f"(timeline sub-01, file {tmp_path}/nope.nwb); check the study path or remove this event"
    )
    assert list(store.keys()) == []
