"""fNIRS extractor against MNE's fNIRS functions applied directly to the synthetic SNIRF files."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest
from mne.preprocessing import nirs

from neuralset.config import ConfigError
from neuralset.extractors.neural.mne.fnirs import FnirsExtractor
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy
from neuralset.synthetic.recordings import hrf
from tests.extractors.neural.mne.mne_reference import assert_close, word_epochs, word_onsets

TMIN, DURATION = -1.0, 6.0
RTOL = 1e-5


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    return SyntheticStudy(
        path=tmp_path_factory.mktemp("fnirs"), n_subjects=2, duration=30.0, modalities=("fnirs",)
    )


def _mne_way(
    study: SyntheticStudy, timeline: str, od_only: bool = False, threshold: float = 0.5
) -> mne.io.BaseRaw:
    raw = mne.io.read_raw_snirf(
        study.path / f"{timeline}/{timeline}_nirs.snirf", preload=True, verbose="error"
    )
    od = nirs.optical_density(raw, verbose="error")
    sci = nirs.scalp_coupling_index(od, verbose="error")
    od.drop_channels([n for n, v in zip(od.ch_names, sci) if v < threshold])
    return od if od_only else nirs.beer_lambert_law(od, ppf=6.0)


def _epochs(raw: mne.io.BaseRaw, events: pd.DataFrame, timeline: str, sfreq: float) -> np.ndarray:
    onsets = word_onsets(events, timeline)
    onsets = onsets[(onsets + TMIN >= 0) & (onsets + TMIN + DURATION <= 30.0)]
    return word_epochs(raw, onsets, sfreq, TMIN, DURATION)


def _windows(events: pd.DataFrame, timeline: str):  # noqa: ANN202
    seg = segment_on_triggers(events, "Word", offset=TMIN, duration=DURATION)
    inside = (seg.start >= 0) & (seg.stop <= 30.0) & (seg.timeline_names == timeline)
    return seg.select(inside)


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert_close(ours, ref, RTOL)


@pytest.mark.parametrize("timeline", ["sub-01", "sub-02"])
def test_haemoglobin_matches_mne(study, events, store, timeline: str) -> None:  # noqa: ANN001
    ex = FnirsExtractor(frequency=10.0)
    ex.prepare(events, store, progress=False)
    seg = _windows(events, timeline)
    out = ex.read(seg, store)
    ref_raw = _mne_way(study, timeline)
    assert out.channels == tuple(ref_raw.ch_names) and len(out.channels) == 6  # one pair rejected
    assert out.data.shape == (len(seg), 6, 60)
    _close(out.data, _epochs(ref_raw, events, timeline, 10.0))
    meta = store.meta(ex.items(events)[int(timeline[-1]) - 1].key)
    assert len(meta["rejected"]) == 2 and meta["rejected"][0][:5] == meta["rejected"][1][:5]
    assert all(meta["sci"][c] < 0.5 for c in meta["rejected"]) and len(meta["sci"]) == 8


def test_optical_density_resampled_matches_mne(study, events, store) -> None:  # noqa: ANN001
    ex = FnirsExtractor(signal="od", frequency=5.0, filter=(None, 1.0))
    ex.prepare(events, store, progress=False)
    seg = _windows(events, "sub-02")
    out = ex.read(seg, store)
    ref = (
        _mne_way(study, "sub-02", od_only=True)
        .filter(None, 1.0, verbose="error")
        .resample(5.0, verbose="error")
    )
    assert out.data.shape == (len(seg), 6, 30)
    _close(out.data, _epochs(ref, events, "sub-02", 5.0))


def test_known_response_and_channel_sets(events, store) -> None:  # noqa: ANN001
    keep_all = FnirsExtractor(frequency=10.0, sci_threshold=None, channels="union")
    keep_all.prepare(events, store, progress=False)
    for item in keep_all.items(events):
        data = store.get_arrays(item.key)["data"]
        names = store.meta(item.key)["ch_names"]
        assert len(names) == 8
        onsets = events.loc[
            (events["type"] == "Word") & (events["timeline"] == item.payload["timeline"]), "start"
        ]
        t = np.arange(len(data)) / 10.0
        response = np.sum([hrf(t - o) for o in onsets], axis=0)
        corr = np.array([np.corrcoef(data[:, j], response)[0, 1] for j in range(8)])
        good = np.array(
            [
                store.meta(item.key)["sci"][n.replace("hbo", "760").replace("hbr", "760")] > 0.5
                for n in names
            ]
        )
        hbo = np.array([n.endswith("hbo") for n in names])
        assert (corr[good & hbo] > 0.95).all() and (corr[good & ~hbo] < -0.9).all()
    strict = FnirsExtractor(frequency=10.0)
    strict.prepare(events, store, progress=False)
    seg = segment_on_triggers(events, "Word", offset=0.0, duration=2.0)
    with pytest.raises(
        ValueError, match=r"FnirsExtractor\(channels='per_recording'\): this batch mixes recordings"
    ):
        strict.read(seg, store, out_of_bounds="drop")
    union = FnirsExtractor(frequency=10.0, channels="union").read(seg, store, out_of_bounds="drop")
    assert union.keep is not None and 0 < union.keep.sum() < len(seg) == len(union.keep)
    assert union.channel_mask is not None and len(union.channels) == 8
    assert (union.channel_mask.sum(axis=1) == 6).all()


def test_errors(events) -> None:  # noqa: ANN001
    with pytest.raises(
        ConfigError, match="FnirsExtractor.ppf: partial pathlength factor must be > 0"
    ):
        FnirsExtractor(ppf=0.0)
    with pytest.raises(
        ConfigError,
        match=r"FnirsExtractor.sci_threshold: the scalp-coupling index is a correlation in \[-1, 1\]",
    ):
        FnirsExtractor(sci_threshold=2.0)
    with pytest.raises(
        ConfigError, match="FnirsExtractor.signal: expected one of 'hb', 'hbo', 'hbr', 'od'"
    ):
        FnirsExtractor(signal="hbt")
    item = FnirsExtractor().items(events)[0]
    with pytest.raises(
        ValueError,
        match="FnirsExtractor.sci_threshold: every channel has a scalp-coupling index below 1.0",
    ):
        FnirsExtractor(sci_threshold=1.0).compute_recording(item.payload)
    data, _, meta = FnirsExtractor(signal="hbo").compute_recording(item.payload)
    assert data.shape == (300, 3) and all(n.endswith(" hbo") for n in meta["ch_names"])


def _on_file(events: pd.DataFrame, path) -> pd.DataFrame:  # noqa: ANN001
    """The events of sub-01 with its fNIRS recording replaced by ``path``."""
    out = events[events["timeline"] == "sub-01"].copy()
    out.loc[out["type"] == "Fnirs", "filepath"] = str(path)
    return out


def _hb(od: mne.io.BaseRaw) -> np.ndarray:
    return nirs.beer_lambert_law(od, ppf=6.0).get_data().T


def test_low_rate_file(study, events, tmp_path) -> None:  # noqa: ANN001
    # a 2 Hz recording: the scalp-coupling index's cardiac band (up to 1.5 Hz) is above Nyquist
    raw = mne.io.read_raw_snirf(study.path / "sub-01/sub-01_nirs.snirf", verbose="error")
    low = raw.load_data(verbose="error").resample(2.0, verbose="error")
    low.save(tmp_path / "low_raw.fif", verbose="error")
    ev = _on_file(events, tmp_path / "low_raw.fif")
    ev.loc[ev["type"] == "Fnirs", "frequency"] = 2.0
    store = Store(tmp_path / "store")
    with pytest.raises(
        ValueError,
        match=r"^FnirsExtractor.sci_threshold: the scalp-coupling index band-passes the cardiac "
        r"band \(0.7-1.5 Hz\), at or above the Nyquist frequency \(1 Hz\) of Fnirs event 0 "
        r"\(timeline sub-01, file .*low_raw.fif\), recorded at 2 Hz; use sci_threshold=None "
        r"\(no rejection\) for this file$",
    ):
        FnirsExtractor().preflight(ev, store)
    ex = FnirsExtractor(sci_threshold=None)
    ex.preflight(ev, store)
    data, sfreq, meta = ex.compute_recording(ex.items(ev)[0].payload)
    ref = nirs.optical_density(low.copy(), verbose="error")
    assert sfreq == 2.0 and data.shape == (60, 8) and meta["sci"] == {}
    assert_close(data.T[None], _hb(ref).T[None], RTOL)


def test_pairs_stay_whole(study, events, tmp_path) -> None:  # noqa: ANN001
    raw = mne.io.read_raw_snirf(study.path / "sub-01/sub-01_nirs.snirf", verbose="error")
    raw.load_data(verbose="error").info["bads"] = ["S2_D2 850"]  # one wavelength of a pair
    raw.save(tmp_path / "bad_raw.fif", verbose="error")
    ev = _on_file(events, tmp_path / "bad_raw.fif")
    # drop_bads: the whole pair goes (MNE's beer_lambert_law failed on 7 channels)
    ex = FnirsExtractor(sci_threshold=None, drop_bads=True)
    ex.preflight(ev, Store(tmp_path / "store"))
    data, _, meta = ex.compute_recording(ex.items(ev)[0].payload)
    od = nirs.optical_density(raw.copy().drop_channels(["S2_D2 760", "S2_D2 850"]))
    assert meta["ch_names"] == [f"S{k}_D{k} {h}" for k in (1, 3, 4) for h in ("hbo", "hbr")]
    assert_close(data.T[None], _hb(od).T[None], RTOL)
    # kept: the pair is marked bad as a whole (MNE refused inconsistent labelling)
    ex = FnirsExtractor(sci_threshold=None)
    data, _, meta = ex.compute_recording(ex.items(ev)[0].payload)
    marked = raw.copy()
    marked.info["bads"] = ["S2_D2 760", "S2_D2 850"]
    assert meta["bads"] == ["S2_D2 hbo", "S2_D2 hbr"] and len(meta["ch_names"]) == 8
    assert_close(data.T[None], _hb(nirs.optical_density(marked)).T[None], RTOL)
    # ch_names must name whole pairs: checked before any work
    with pytest.raises(
        ValueError,
        match=r"^FnirsExtractor.ch_names: S1_D1 850 of Fnirs event 0 \(timeline sub-01, file "
        r".*bad_raw.fif\) left out while the other wavelengths of their source-detector pairs "
        r"are kept; the scalp-coupling index and the Beer-Lambert law need every wavelength of "
        r"a pair: name whole pairs in ch_names$",
    ):
        FnirsExtractor(ch_names=("S1_D1 760",)).preflight(ev, Store(tmp_path / "store"))


def test_signal_against_the_file_fails_in_preflight(study, events, tmp_path) -> None:  # noqa: ANN001
    raw = mne.io.read_raw_snirf(study.path / "sub-01/sub-01_nirs.snirf", verbose="error")
    _ = raw.load_data(verbose="error")
    nirs.beer_lambert_law(nirs.optical_density(raw)).save(tmp_path / "hb_raw.fif", verbose="error")
    ev = _on_file(events, tmp_path / "hb_raw.fif")
    with pytest.raises(
        ValueError,
        match=r"^FnirsExtractor.signal='od': Fnirs event 0 \(timeline sub-01, file .*hb_raw.fif\) "
        r"holds haemoglobin \(hbo/hbr\), not intensities or optical density; use signal='hb' "
        r"\(or 'hbo', 'hbr'\)$",
    ):
        FnirsExtractor(signal="od").preflight(ev, Store(tmp_path / "store"))
    with pytest.raises(ValueError) as err:  # MNE's raw.pick('hbo') failed mid-prepare
        FnirsExtractor(signal="hbo", picks=("hbr",)).preflight(ev, Store(tmp_path / "store"))
    assert str(err.value) == (
        f"FnirsExtractor.signal='hbo': no hbo channel among the selected channels of Fnirs event "
        f"0 (timeline sub-01, file {tmp_path}/hb_raw.fif) (types hbr); pick hbo channels (picks, "
        "ch_names) or change signal"
    )
    data, _, meta = FnirsExtractor(signal="hbr").compute_recording(
        FnirsExtractor().items(ev)[0].payload
    )
    assert meta["ch_names"] == [f"S{k}_D{k} hbr" for k in range(1, 5)] and data.shape == (300, 4)
