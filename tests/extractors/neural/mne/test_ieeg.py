"""iEEG extractor against MNE's own results on the synthetic BrainVision files."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.neural.channel_sets import ChannelOutput
from neuralset.extractors.neural.mne.ieeg import IeegExtractor, bipolar_pairs, shank_contacts
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy
from tests.extractors.neural.mne.mne_reference import assert_close, word_epochs, word_onsets

TMIN = -0.1
DURATION = 0.5
RTOL = 1e-5  # float32 storage, relative to each channel's peak


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("ieeg"), n_subjects=2, duration=8.0, modalities=("ieeg",)
    )
    study.build()
    return study


@pytest.fixture(scope="module")
def words(events: pd.DataFrame):  # noqa: ANN201
    return segment_on_triggers(events, "Word", offset=TMIN, duration=DURATION)


def _raw(study: SyntheticStudy, events: pd.DataFrame, timeline: str) -> mne.io.BaseRaw:
    rel = events.loc[
        (events["type"] == "Ieeg") & (events["timeline"] == timeline), "filepath"
    ].iloc[0]
    return mne.io.read_raw(study.path / rel, preload=True, verbose="error")


def _epochs(raw: mne.io.BaseRaw, events: pd.DataFrame, timeline: str, sfreq: float) -> np.ndarray:
    """mne.Epochs of every word, windows starting at the sample nearest to onset + TMIN."""
    return word_epochs(raw, word_onsets(events, timeline), sfreq, TMIN, DURATION)


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert_close(ours, ref, RTOL)


def _hand_pairs(names: list[str]) -> tuple[list[str], list[str]]:
    """Neighbouring contacts written out independently of the library (2-letter shank names)."""
    anodes, cathodes = [], []
    for name in names:
        nxt = f"{name[:2]}{int(name[2:]) + 1}"
        if nxt in names:
            anodes.append(name)
            cathodes.append(nxt)
    return anodes, cathodes


def test_shank_parsing() -> None:
    names = ["LA1", "LA 2", "LA03", "LA5", "LA6", "RH10", "RH11", "RAMP", "ECG"]
    assert shank_contacts(names) == {
        "LA": [(1, "LA1"), (2, "LA 2"), (3, "LA03"), (5, "LA5"), (6, "LA6")],
        "RH": [(10, "RH10"), (11, "RH11")],
    }
    assert bipolar_pairs(names) == (["LA1", "LA 2", "LA5", "RH10"], ["LA 2", "LA03", "LA6", "RH11"])


@pytest.mark.parametrize("timeline", ["sub-01", "sub-02"])
def test_bipolar_matches_mne(study, events, words, store, timeline: str) -> None:  # noqa: ANN001
    ieeg = IeegExtractor(reference="bipolar", frequency=500.0)
    ieeg.prepare(events, store, progress=False)
    sel = words.select(words.timeline_names == timeline)
    out = ieeg.read(sel, store)
    raw = _raw(study, events, timeline).pick("eeg")
    anodes, cathodes = _hand_pairs(raw.ch_names)
    mne.set_bipolar_reference(raw, anodes, cathodes, copy=False, verbose="error")
    raw.resample(500.0, verbose="error")
    ref = _epochs(raw, events, timeline, 500.0)
    assert out.data.shape == (len(sel), len(anodes), 250)  # 0.5 s at 500 Hz exactly
    assert out.channels == tuple(f"{a}-{c}" for a, c in zip(anodes, cathodes))
    _close(out.data, ref)


def test_average_reference_matches_mne(study, events, words, store) -> None:  # noqa: ANN001
    ieeg = IeegExtractor(reference="average", frequency=1000.0, filter=(1.0, None))
    ieeg.prepare(events, store, progress=False)
    sel = words.select(words.timeline_names == "sub-02")
    out = ieeg.read(sel, store)
    raw = _raw(study, events, "sub-02").pick("eeg")  # RAMP is misc: not in the average
    raw.set_eeg_reference("average", verbose="error").filter(1.0, None, verbose="error")
    _close(out.data, _epochs(raw, events, "sub-02", 1000.0))
    np.testing.assert_allclose(out.data.sum(axis=1), 0, atol=1e-9)


def test_high_gamma_envelope_matches_mne(study, events, words, store) -> None:  # noqa: ANN001
    ieeg = IeegExtractor(
        reference="bipolar", notch=(50.0, 100.0, 150.0), envelope=(70.0, 150.0), frequency=100.0
    )
    ieeg.prepare(events, store, progress=False)
    sel = words.select(words.timeline_names == "sub-01")
    out = ieeg.read(sel, store)
    raw = _raw(study, events, "sub-01").pick("eeg")
    anodes, cathodes = _hand_pairs(raw.ch_names)
    mne.set_bipolar_reference(raw, anodes, cathodes, copy=False, verbose="error")
    raw.notch_filter([50.0, 100.0, 150.0], verbose="error")  # before the envelope
    raw.filter(70.0, 150.0, verbose="error").apply_hilbert(envelope=True, verbose="error")
    raw.resample(100.0, verbose="error")
    ref = _epochs(raw, events, "sub-01", 100.0)
    assert out.data.shape == (len(sel), len(anodes), 50)
    _close(out.data, ref)
    # known structure: a 110 Hz burst 0.05-0.15 s after each word on the first shank
    first_shank = [i for i, name in enumerate(out.channels) if name[:2] == out.channels[0][:2]]
    during = out.data[:, first_shank, 17:23].mean(axis=(0, 2))  # 0.07-0.13 s after onset
    before = out.data[:, first_shank, 5:10].mean(axis=(0, 2))  # 0.05-0 s before onset
    assert (during > 3 * before).all()


def test_ramp_alignment(events, words, store) -> None:  # noqa: ANN001
    ramp = IeegExtractor(picks=("misc",), frequency=1000.0, channels="union")
    ramp.prepare(events, store, progress=False)
    out = ramp.read(words, store)
    assert out.channels == ("RAMP",)
    expected = (words.start[:, None] + np.arange(500)[None, :] / 1000.0) * 1e-6
    np.testing.assert_allclose(out.data[:, 0], expected, rtol=0, atol=1e-11)  # << 1 sample


def test_channel_sets(events, words, store) -> None:  # noqa: ANN001
    per = IeegExtractor(reference="bipolar", frequency=500.0)
    per.prepare(events, store, progress=False)
    with pytest.raises(
        ValueError,
        match=r"IeegExtractor\(channels='per_recording'\): this batch mixes recordings with different "
        r"channel lists: sub-01/sub-01_ieeg.vhdr \(\d+ channels\), sub-02/sub-02_ieeg.vhdr \(\d+ channels\)",
    ):
        per.read(words, store)
    union = IeegExtractor(reference="bipolar", frequency=500.0, channels="union")
    out = union.read(words, store)
    assert isinstance(out, ChannelOutput) and out.channel_mask is not None
    assert out.data.shape == (len(words), len(out.channels), 250)
    assert union.output_channels(words, store) == out.channels
    for code, tl in enumerate(("sub-01", "sub-02")):
        sel = words.timeline == code
        single = per.read(words.select(sel), store)
        cols = [out.channels.index(c) for c in single.channels]
        np.testing.assert_array_equal(out.data[sel][:, cols], single.data)
        expected_mask = np.isin(out.channels, single.channels)
        assert (out.channel_mask[sel] == expected_mask).all(), tl
        assert (out.data[sel][:, ~expected_mask] == 0).all()
    # drop: keeps the order of the surviving segments, mask shrinks with them
    late = segment_on_triggers(events, "Word", offset=7.8 - 0.1, duration=DURATION)
    dropped = union.read(late, store, out_of_bounds="drop")
    assert dropped.keep is not None and not dropped.keep.any()
    assert dropped.data.shape[0] == 0 and dropped.channel_mask is not None


def test_errors(events) -> None:  # noqa: ANN001
    with pytest.raises(
        ConfigError, match=r"IeegExtractor.envelope: expected \(low, high\) with 0 < low < high"
    ):
        IeegExtractor(envelope=(150.0, 70.0))
    with pytest.raises(
        ConfigError, match="IeegExtractor.reference: expected one of 'bipolar', 'average', 'none'"
    ):
        IeegExtractor(reference="laplacian")
    with pytest.raises(
        ConfigError, match="IeegExtractor.channels: expected one of 'per_recording', 'union'"
    ):
        IeegExtractor(channels="all")
    item = IeegExtractor(frequency=1000.0).items(events)[0]
    with pytest.raises(
        ValueError,
        match=r"IeegExtractor.reference='bipolar': no iEEG channel \(types seeg, ecog, dbs, eeg\) among the selected channels RAMP",
    ):
        IeegExtractor(picks=("misc",), reference="bipolar").compute_recording(item.payload)
    with pytest.raises(
        ValueError,
        match="IeegExtractor.reference='bipolar': no neighbouring contacts among LA1, RA2",
    ):
        IeegExtractor(reference="bipolar", ch_names=("LA1", "RA2")).compute_recording(item.payload)
    with pytest.raises(
        ValueError, match=r"high cut-off 600.0 Hz is not below the Nyquist frequency \(500 Hz\)"
    ):
        IeegExtractor(envelope=(70.0, 600.0)).compute_recording(item.payload)


def test_union_with_baseline_equals_per_recording(events, words, store) -> None:  # noqa: ANN001
    kw = dict(reference="bipolar", frequency=500.0, baseline=(-0.1, 0.0))
    per = IeegExtractor(**kw)
    per.prepare(events, store, progress=False)
    union = IeegExtractor(**kw, channels="union").read(words, store, out_of_bounds="pad")
    for code in (0, 1):
        sel = words.timeline == code
        single = per.read(words.select(sel), store)
        cols = [union.channels.index(c) for c in single.channels]
        np.testing.assert_array_equal(union.data[sel][:, cols], single.data)
        # baseline-corrected: the mean over the baseline samples is zero
        np.testing.assert_allclose(single.data[..., :51].mean(axis=-1), 0, atol=1e-9)
    assert union.mask is not None and union.mask.all()


def test_causal_refuses_the_envelope() -> None:
    # the envelope's FIR band-pass and Hilbert transform are zero-phase: stored values used to
    # depend on later samples although causal=True promises none do
    with pytest.raises(ConfigError) as err:
        IeegExtractor(causal=True, envelope=(70.0, 150.0), frequency=100.0)
    assert str(err.value) == (
        "IeegExtractor.causal: envelope=(70.0, 150.0) has no causal form (its zero-phase "
        "band-pass and the Hilbert transform use later samples), so causal=True would store "
        "non-causal values; use envelope=None or causal=False"
    )
    assert IeegExtractor(causal=True, reference="bipolar", notch=(50.0,), frequency=100.0).causal


def test_bipolar_without_neighbours_fails_in_preflight(study, events, tmp_path) -> None:  # noqa: ANN001
    # one recording keeps only odd contacts: it used to fail mid-prepare, after the others ran
    raw = _raw(study, events, "sub-02")
    raw.pick([n for n in raw.ch_names if n == "RAMP" or int(n[2:]) % 2]).save(
        tmp_path / "odd_raw.fif", verbose="error"
    )
    odd = events.copy()
    row = odd.index[(odd["type"] == "Ieeg") & (odd["timeline"] == "sub-02")][0]
    odd.loc[row, "filepath"] = str(tmp_path / "odd_raw.fif")
    good = ", ".join(n for n in raw.ch_names if n != "RAMP" and int(n[2:]) % 2)
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError) as err:
        IeegExtractor(reference="bipolar", channels="union").prepare(odd, store, progress=False)
    assert str(err.value) == (
        f"IeegExtractor.reference='bipolar': no neighbouring contacts among {good} of Ieeg event "
        f"{odd.index.get_loc(row)} (timeline sub-02, file {tmp_path}/odd_raw.fif) (names must end "
        "with the contact number of their shank, e.g. LA1, LA2); use reference='average' or 'none'"
    )
    assert list(store.keys()) == []
