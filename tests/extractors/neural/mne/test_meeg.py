"""MEG/EEG extractors against MNE's own results, on real FIF files with known structure."""

from __future__ import annotations

import os
import shutil

import mne
import numpy as np
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.base import ExtractorNotPreparedError, OutOfBoundsError
from neuralset.extractors.neural.mne import EegExtractor, MegExtractor, RecordingMismatchError
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy
from tests.extractors.neural.mne.mne_reference import assert_close

# float32 storage: windows match MNE's float64 epochs to this fraction of each channel's peak
RTOL = 1e-5


@pytest.fixture(scope="module")
def words(small_events):
    return segment_on_triggers(small_events, "Word", offset=-0.2, duration=0.8)


def _mne_epochs(raw, events, timeline, sfreq, baseline):
    onsets = events[(events["type"] == "Word") & (events["timeline"] == timeline)][
        "start"
    ].to_numpy()
    ev = np.c_[
        np.round(onsets * sfreq).astype(int), np.zeros(len(onsets), int), np.ones(len(onsets), int)
    ]
    tmax = -0.2 + 79 / sfreq  # 80 samples
    epochs = mne.Epochs(
        raw, ev, tmin=-0.2, tmax=tmax, baseline=baseline, preload=True, verbose="error"
    )
    return epochs.get_data()


def _assert_close(ours, ref):
    assert_close(ours, ref, RTOL)


def test_meg_matches_mne_epochs(small_study, small_events, words, tmp_path):
    # its own store: other tests of the module prepare the same MEG config in the shared one
    store = Store(tmp_path / "store")
    meg = MegExtractor(frequency=100.0, filter=(0.5, 30.0), baseline=(-0.2, 0.0))
    report = meg.prepare(small_events, store, progress=False)
    assert report.computed == 2
    out = meg.read(words, store)
    assert out.data.dtype == np.float32
    assert out.data.shape == (len(words), 6, 80)
    for tl in ("sub-01", "sub-02"):
        raw = mne.io.read_raw_fif(
            small_study.path / f"{tl}/{tl}_meg.fif", preload=True, verbose="error"
        )
        raw.pick(["mag", "grad"]).filter(0.5, 30.0, verbose="error").resample(
            100.0, verbose="error"
        )
        ref = _mne_epochs(raw, small_events, tl, 100.0, (-0.2, 0.0))
        mine = out.data[words.timeline_names == tl]
        _assert_close(mine, ref)
    assert meg.output_channels(words, store) == tuple(f"MEG {i:03d}" for i in range(1, 7))


def test_eeg_matches_mne_epochs(small_study, small_events, words, store):
    eeg = EegExtractor(
        frequency=100.0,
        reference="average",
        notch=(50.0,),
        filter=(1.0, 40.0),
        baseline=(-0.2, 0.0),
    )
    eeg.prepare(small_events, store, progress=False)
    out = eeg.read(words, store)
    assert out.data.shape == (len(words), 8, 80)
    tl = "sub-02"
    raw = mne.io.read_raw_fif(
        small_study.path / f"{tl}/{tl}_eeg.fif", preload=True, verbose="error"
    )
    raw.pick("eeg").set_eeg_reference("average", verbose="error")
    raw.notch_filter(50.0, picks="all", verbose="error").filter(
        1.0, 40.0, picks="all", verbose="error"
    )
    raw.resample(100.0, verbose="error")
    ref = _mne_epochs(raw, small_events, tl, 100.0, (-0.2, 0.0))
    _assert_close(out.data[words.timeline_names == tl], ref)


def test_ramp_exact_alignment(small_events, words, store):
    for cls, sfreq in ((MegExtractor, 1000.0), (EegExtractor, 500.0)):
        ramp = cls(picks=("misc",), frequency=sfreq)
        ramp.prepare(small_events, store, progress=False)
        data = ramp.read(words, store).data
        n = int(round(0.8 * sfreq))
        assert data.shape == (len(words), 1, n)
        expected = words.start[:, None] + np.arange(n)[None, :] / sfreq  # recordings start at 0
        np.testing.assert_allclose(data[:, 0], expected, rtol=0, atol=1e-4)  # << 1 sample
        # stored length: duration x frequency samples exactly
        key = ramp.items(small_events)[0].key
        assert store.get_arrays(key)["data"].shape == (int(12.0 * sfreq), 1)
        assert store.meta(key)["ch_names"] == ["RAMP"]


def test_offset_and_start_are_honoured(small_events, store):
    ev = small_events.copy()
    meg = (ev["type"] == "Meg").to_numpy()
    # the recording starts 5 s into the timeline and is read from 2 s into the file
    ev.loc[meg, "start"] = 5.0
    ev.loc[meg, "offset"] = 2.0
    ev.loc[meg, "duration"] = 9.0
    ramp = MegExtractor(picks=("misc",), frequency=1000.0)
    ramp.prepare(ev, store, progress=False)
    late = ev["start"].to_numpy() >= 5.5
    seg = segment_on_triggers(
        ev, ((ev["type"] == "Word").to_numpy() & late), offset=-0.2, duration=0.5
    )
    data = ramp.read(seg, store).data[:, 0]
    expected = seg.start[:, None] - 5.0 + 2.0 + np.arange(500)[None, :] / 1000.0
    np.testing.assert_allclose(data, expected, rtol=0, atol=1e-4)
    assert store.get_arrays(ramp.items(ev)[0].key)["data"].shape == (9000, 1)
    # the event's span must fit in the file
    ev.loc[meg, "duration"] = 11.0
    with pytest.raises(
        ValueError, match=r"spans file samples 2000..13000 .* has 12000 samples at 1000 Hz"
    ):
        ramp.prepare(ev, store, progress=False)


def test_static_outputs(small_events, words, store):
    dyn = MegExtractor(frequency=100.0, filter=(0.5, 30.0))
    dyn.prepare(small_events, store, progress=False)
    window = dyn.read(words, store).data
    mean = MegExtractor(frequency=100.0, filter=(0.5, 30.0), output="static")
    trig = MegExtractor(frequency=100.0, filter=(0.5, 30.0), output="static", aggregation="trigger")
    assert mean.prepare_key == dyn.prepare_key == trig.prepare_key  # read options share storage
    np.testing.assert_allclose(
        mean.read(words, store).data, window.mean(axis=-1), rtol=1e-5, atol=1e-20
    )
    np.testing.assert_array_equal(
        trig.read(words, store).data, window[:, :, 20]
    )  # trigger = sample 20
    # a baseline outside the window: same as cutting a window that contains it
    post = segment_on_triggers(small_events, "Word", offset=0.0, duration=0.6)
    based = MegExtractor(frequency=100.0, filter=(0.5, 30.0), baseline=(-0.2, 0.0))
    full = based.read(words, store).data
    np.testing.assert_allclose(based.read(post, store).data, full[:, :, 20:], rtol=1e-6, atol=1e-20)


def test_scaling_and_clamp(small_events, words, store):
    robust = MegExtractor(frequency=100.0, scaling="robust")
    robust.prepare(small_events, store, progress=False)
    stored = np.asarray(
        store.get_arrays(robust.items(small_events)[0].key)["data"], dtype=np.float64
    )
    q25, q50, q75 = np.percentile(stored, [25, 50, 75], axis=0)
    np.testing.assert_allclose(q50, 0, atol=1e-6)
    np.testing.assert_allclose(q75 - q25, 1, atol=1e-5)
    clamped = MegExtractor(frequency=100.0, scaling="standard", clamp=0.5)
    clamped.prepare(small_events, store, progress=False)
    data = clamped.read(words, store).data
    assert np.abs(data).max() == np.float32(0.5)


def test_incremental_and_stale(tmp_path):
    study = SyntheticStudy(
        path=tmp_path / "s", n_subjects=1, duration=6.0, meg_channels=3, modalities=("meg",)
    )
    store = Store(tmp_path / "store")
    meg = MegExtractor(frequency=100.0)
    ev = study.events()
    assert meg.prepare(ev, store, progress=False).computed == 1
    again = meg.prepare(ev, store, progress=False)
    assert (again.computed, again.cached) == (0, 1)
    ev2 = study.replace(n_subjects=2).events()
    report = meg.prepare(ev2, store, progress=False)
    assert (report.computed, report.cached) == (1, 1)
    # the source changes: new key, the stale entry is never served
    path = study.path / "sub-01/sub-01_meg.fif"
    old_key = meg.items(ev2)[0].key
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    raw._data[1:] *= 2
    raw.save(path, overwrite=True, verbose="error")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert meg.items(ev2)[0].key != old_key
    seg = segment_on_triggers(ev2, "Word", offset=-0.2, duration=0.8)
    with pytest.raises(
        ExtractorNotPreparedError, match=r"no stored data for Meg event .*sub-01_meg.fif"
    ):
        meg.read(seg, store)
    assert meg.prepare(ev2, store, progress=False).computed == 1
    assert meg.read(seg, store).data.shape == (len(seg), 3, 80)


def test_missing_and_unreadable_files(tmp_path, small_study, small_events):
    root = tmp_path / "copy"
    shutil.copytree(small_study.path, root)
    ev = small_events.copy()
    ev["study_root"] = str(root)
    store = Store(tmp_path / "store")
    (root / "sub-02/sub-02_meg.fif").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"MegExtractor: recording file not found: .*copy/sub-02/sub-02_meg.fif, for Meg event \d+ \(timeline sub-02",
    ):
        MegExtractor(frequency=100.0).prepare(ev, store, progress=False)
    assert list(store.keys()) == []  # nothing computed before the error
    (root / "sub-02/sub-02_meg.fif").write_bytes(b"not a fif file")
    with pytest.raises(
        ValueError,
        match=r"MegExtractor: cannot read .*sub-02_meg.fif \(Meg event \d+ \(timeline sub-02",
    ):
        MegExtractor(frequency=100.0).prepare(ev, store, progress=False)
    assert list(store.keys()) == []


def test_channel_sets(small_events, words, store):
    # each subject has its own bad EEG channel: dropping bads gives different channel sets
    drop = EegExtractor(frequency=100.0, drop_bads=True)
    with pytest.raises(
        RecordingMismatchError,
        match=r"recordings select different channels: Eeg event .*sub-01.* has 7 .*sub-02.* has 7 .*channels='intersection'",
    ):
        drop.prepare(small_events, store, progress=False)
    inter = EegExtractor(frequency=100.0, drop_bads=True, channels="intersection")
    inter.prepare(small_events, store, progress=False)
    names = inter.output_channels(words, store)
    assert len(names) == 6
    out = inter.read(words, store).data
    assert out.shape == (len(words), 6, 80)
    # equal to reading those channels by name
    named = EegExtractor(frequency=100.0, ch_names=names)
    named.prepare(small_events, store, progress=False)
    np.testing.assert_array_equal(out, named.read(words, store).data)


def test_sampling_rates_must_match_or_resample(small_events, store):
    ev = small_events.copy()
    ev["type"] = ev["type"].astype(str).replace({"Eeg": "Meg"})  # a 1000 Hz and a 500 Hz "Meg"
    ev["timeline"] = ev["timeline"].astype(str)
    eeg = ev["filepath"].astype(str).str.endswith("eeg.fif")
    ev.loc[eeg, "timeline"] = "eeg-" + ev.loc[eeg, "timeline"]  # one recording per timeline
    from neuralset.events import validate_events

    ev = validate_events(ev)
    ramp = MegExtractor(picks=("misc",))
    with pytest.raises(
        RecordingMismatchError,
        match=r"different sampling rates .*1000 Hz.*500 Hz.*set MegExtractor.frequency",
    ):
        ramp.prepare(ev, store, progress=False)
    common = MegExtractor(picks=("misc",), frequency=250.0)
    common.prepare(ev, store, progress=False)
    assert {store.meta(i.key)["sfreq"] for i in common.items(ev)} == {250.0}


def test_out_of_bounds(small_events, store):
    meg = MegExtractor(frequency=100.0, baseline=(-0.5, 0.0))
    meg.prepare(small_events, store, progress=False)
    first = segment_on_triggers(small_events, "Word", offset=-0.2, duration=0.8).select([0])
    np.testing.assert_equal(first.start, [0.8])
    late = segment_on_triggers(small_events, "Word", offset=0.0, duration=2.0)
    late = late.select([len(late) - 1])
    with pytest.raises(OutOfBoundsError, match=r"run past the start or end of Meg event"):
        meg.read(late, store)
    padded = meg.read(late, store, out_of_bounds="pad")
    assert padded.data.shape == (1, 6, 200) and not padded.mask.all()
    assert meg.read(late, store, out_of_bounds="drop").data.shape == (0, 6, 200)
    far = MegExtractor(frequency=100.0, baseline=(-1.5, -1.1))
    with pytest.raises(
        OutOfBoundsError, match=r"the baseline \(-1.5, -1.1\) of segments \[0\] runs past"
    ):
        far.read(first, store)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filter": (-1.0, 40.0)}, r"MegExtractor.filter: low cut-off must be > 0 Hz .*got -1.0"),
        (
            {"filter": (40.0, 1.0)},
            r"MegExtractor.filter: low cut-off \(40.0 Hz\) must be below the high cut-off",
        ),
        ({"filter": (None, 0.0)}, r"MegExtractor.filter: high cut-off must be > 0 Hz"),
        (
            {"picks": ("mag", "magg")},
            r"MegExtractor.picks: unknown channel type 'magg'; allowed channel types: meg, mag, grad",
        ),
        ({"notch": (0.0,)}, r"MegExtractor.notch: line frequencies must be > 0 Hz, got 0.0$"),
        ({"clamp": -1.0}, r"MegExtractor.clamp: must be > 0"),
        ({"baseline": (0.0, -0.2)}, r"MegExtractor.baseline: tmin \(0.0\) must not exceed tmax"),
        ({"scaling": "minmax"}, r"MegExtractor.scaling: expected .*'robust'"),
        ({"channels": "union"}, r"MegExtractor.channels: expected one of 'error', 'intersection'"),
        ({"frequency": 0.0}, r"MegExtractor.frequency: must be > 0 Hz"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MegExtractor(**kwargs)


def test_eeg_reference_errors(small_events, tmp_path):
    from neuralset.extractors.base import events_label

    with pytest.raises(ConfigError, match=r"EegExtractor.reference: expected 'average', a tuple"):
        EegExtractor(reference="avg")
    bad = EegExtractor(frequency=100.0, reference=("Xz",))
    with pytest.raises(ValueError) as info:  # from the header, in the preflight
        bad.prepare(small_events, Store(tmp_path / "store"), progress=False)
    first = int(np.flatnonzero((small_events["type"] == "Eeg").to_numpy())[0])
    assert str(info.value) == (
        "EegExtractor.reference: channel(s) Xz not among the selected channels of "
        f"{events_label(small_events, first)}; add them to picks/ch_names"
    )
    assert not (tmp_path / "store").exists()  # nothing computed


def test_kinds_and_keys():
    from neuralset.config import from_dict

    meg = from_dict({"kind": "meg", "frequency": 100.0, "filter": [0.5, 40.0]})
    assert isinstance(meg, MegExtractor) and meg.filter == (0.5, 40.0)
    assert meg.resolved_picks == ("mag", "grad") and EegExtractor().resolved_picks == ("eeg",)
    # what changes stored data changes the key; read-only options do not
    assert meg.prepare_key != meg.replace(filter=(1.0, 40.0)).prepare_key
    assert meg.prepare_key == meg.replace(baseline=(-0.2, 0.0), batch_size=3).prepare_key


def test_lazy_import():
    import subprocess
    import sys

    code = (
        "import sys, neuralset.extractors.neural.mne, neuralset.extractors.events; "
        "print(sorted(m for m in ('mne', 'scipy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bads_column_is_honoured(small_events, tmp_path):
    """A ``bads`` column (as BidsStudy writes from channels.tsv) adds to the file's bad channels."""
    store = Store(tmp_path / "store")
    meg_rows = small_events.type == "Meg"
    first_meg = MegExtractor(frequency=100.0, drop_bads=True)
    first_meg.prepare(small_events[meg_rows], store, progress=False)
    plain = store.meta(first_meg.items(small_events)[0].key)["ch_names"]
    marked = plain[1]
    events = small_events.assign(bads=np.where(meg_rows, marked, ""))
    first_meg.prepare(events, store, progress=False)
    item = first_meg.items(events)[0]
    assert item.payload["bads"] == [marked]
    names = store.meta(item.key)["ch_names"]
    assert names == [n for n in plain if n != marked]
    # without drop_bads the column changes nothing but the key
    keep = MegExtractor(frequency=100.0)
    keep.prepare(events, store, progress=False)
    assert store.meta(keep.items(events)[0].key)["ch_names"] == plain
