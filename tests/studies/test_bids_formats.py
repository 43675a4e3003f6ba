"""BIDS datasets of real EEGLAB, BDF, SNIRF and BrainVision files read end to end.

Each dataset is read through :class:`BidsStudy` and the matching extractor (``EegExtractor``,
``FnirsExtractor``); the windows are compared with MNE's own reading of the same file
(``mne.io.read_raw_*`` + ``mne.Epochs``), with exact sample counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.extractors.neural.mne import EegExtractor
from neuralset.extractors.neural.mne.fnirs import FnirsExtractor
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.studies.bids import BidsStudy
from neuralset.synthetic.recordings import hrf, write_snirf
from tests.extractors.neural.mne.mne_reference import assert_close

SFREQ = 200.0
N_TIMES = 2000  # 10 s: whole 1 s BDF records
ONSETS = (1.0, 4.0, 7.5)
TMIN, DURATION = -0.2, 1.0  # 200 samples per window at 200 Hz
CHANNELS = ["RAMP", "Fz", "Cz", "Pz"]
RTOL = 1e-5  # float32 storage against MNE's float64 epochs, per channel peak

NIRS_SFREQ = 10.0
NIRS_N = 300  # 30 s
NIRS_ONSETS = (5.0, 15.0)
NIRS_TMIN, NIRS_DURATION = -1.0, 6.0  # 60 samples


def _eeg_raw(seed: int) -> mne.io.RawArray:
    """EEG whose channel ``RAMP`` equals its own time in the file (in microvolts)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(len(CHANNELS), N_TIMES)) * 1e-5
    data[0] = np.arange(N_TIMES) / SFREQ * 1e-6
    raw = mne.io.RawArray(data, mne.create_info(CHANNELS, SFREQ, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(list(ONSETS), [0.5] * 3, ["go", "stop", "go"]))
    return raw


def _write_eeg(root: Path, subject: str, fmt: str) -> Path:
    from mne_bids import BIDSPath, write_raw_bids

    bp = BIDSPath(subject=subject, task="x", datatype="eeg", root=root)
    write_raw_bids(
        _eeg_raw(int(subject)), bp, format=fmt, allow_preload=True, overwrite=True, verbose="error"
    )
    return bp.fpath


def _nirs_intensities(rng: np.random.Generator) -> np.ndarray:
    """``(time, 8)`` intensities of 4 pairs at 760/850 nm: cardiac + HRF; pair 3 is noise."""
    times = np.arange(NIRS_N) / NIRS_SFREQ
    response = sum(hrf(times - onset) for onset in NIRS_ONSETS)
    cardiac = np.sin(2 * np.pi * 1.1 * times)
    data = np.empty((NIRS_N, 8))
    for p in range(4):
        for w, gain in enumerate((0.1, 1.0)):
            if p == 2:  # bad scalp coupling: rejected by the scalp-coupling index
                data[:, 2 * p + w] = 1.0 + 0.05 * rng.normal(size=NIRS_N)
            else:
                data[:, 2 * p + w] = (
                    1.0 + 0.01 * cardiac - 0.005 * gain * response + 0.001 * rng.normal(size=NIRS_N)
                )
    return data


def _write_nirs(root: Path, subject: str) -> Path:
    """A BIDS NIRS run: SNIRF data, sidecar (no RecordingDuration), channels and events."""
    folder = root / f"sub-{subject}" / "nirs"
    folder.mkdir(parents=True)
    base = f"sub-{subject}_task-x"
    angles = np.linspace(0.0, np.pi / 2, 4)
    src = np.stack([0.09 * np.cos(angles), 0.09 * np.sin(angles), np.full(4, 0.02)], axis=1)
    det = src + np.array([0.0, 0.0, 0.03])
    pairs = [(i + 1, i + 1) for i in range(4)]
    path = folder / f"{base}_nirs.snirf"
    write_snirf(
        path, _nirs_intensities(np.random.default_rng(7)), NIRS_SFREQ, pairs, (760.0, 850.0),
        src, det, subject,
    )  # fmt: skip
    (folder / f"{base}_nirs.json").write_text(
        json.dumps(
            {
                "TaskName": "x",
                "SamplingFrequency": NIRS_SFREQ,
                "NIRSChannelCount": 8,
                "NIRSSourceOptodeCount": 4,
                "NIRSDetectorOptodeCount": 4,
            }
        )
    )
    pd.DataFrame(
        {
            "name": [f"S{s}_D{d} {w}" for s, d in pairs for w in (760, 850)],
            "type": "NIRSCWAMPLITUDE",
            "source": [f"S{s}" for s, _ in pairs for _ in range(2)],
            "detector": [f"D{d}" for _, d in pairs for _ in range(2)],
            "wavelength_nominal": [w for _ in pairs for w in (760, 850)],
            "units": "V",
        }
    ).to_csv(folder / f"{base}_channels.tsv", sep="\t", index=False)
    pd.DataFrame(
        {"onset": list(NIRS_ONSETS), "duration": [1.0, 1.0], "trial_type": ["read", "read"]}
    ).to_csv(folder / f"{base}_events.tsv", sep="\t", index=False)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bids_formats") / "ds"
    _write_eeg(root, "01", "EEGLAB")
    _write_eeg(root, "02", "BDF")
    _write_eeg(root, "03", "BrainVision")
    # Cz is bad in channels.tsv only: BrainVision files cannot carry bads
    channels = root / "sub-03" / "eeg" / "sub-03_task-x_channels.tsv"
    table = pd.read_csv(channels, sep="\t", keep_default_na=False)
    assert set(table["status"]) == {"good"}
    table.loc[table["name"] == "Cz", "status"] = "bad"
    table.to_csv(channels, sep="\t", index=False)
    _write_nirs(root, "04")
    return root


@pytest.fixture(scope="module")
def events(root: Path) -> pd.DataFrame:
    return BidsStudy(path=root).events()


def _epochs(raw: mne.io.BaseRaw, onsets: tuple[float, ...], tmin: float, n: int) -> np.ndarray:
    """``mne.Epochs`` of ``n`` samples from the sample nearest to each ``onset + tmin``."""
    sfreq = raw.info["sfreq"]
    samples = np.round((np.asarray(onsets) + tmin) * sfreq).astype(int) - int(round(tmin * sfreq))
    ev = np.c_[samples, np.zeros_like(samples), np.ones_like(samples)]
    epochs = mne.Epochs(
        raw, ev, tmin=tmin, tmax=tmin + (n - 1) / sfreq, baseline=None, preload=True,
        verbose="error",
    )  # fmt: skip
    return epochs.get_data()


def _windows(events: pd.DataFrame, subject: str, tmin: float, duration: float):  # noqa: ANN202
    seg = segment_on_triggers(events, "Stimulus", offset=tmin, duration=duration)
    return seg.select(seg.timeline_names == f"sub-{subject}_task-x")


def test_discovery_matches_mne_bids(root: Path, events: pd.DataFrame) -> None:
    from mne_bids import BIDSPath, read_raw_bids

    recs = events[events["type"].isin(["Eeg", "Fnirs"])].reset_index(drop=True)
    assert recs["filepath"].tolist() == [
        "sub-01/eeg/sub-01_task-x_eeg.set",
        "sub-02/eeg/sub-02_task-x_eeg.bdf",
        "sub-03/eeg/sub-03_task-x_eeg.vhdr",
        "sub-04/nirs/sub-04_task-x_nirs.snirf",
    ]
    assert recs["type"].astype(str).tolist() == ["Eeg", "Eeg", "Eeg", "Fnirs"]
    assert recs["bads"].fillna("").tolist() == ["", "", "Cz", ""]
    assert (root / recs["filepath"][1]).read_bytes()[:8] == b"\xffBIOSEMI"  # 24-bit BDF
    for _, rec in recs.iterrows():
        subject = rec["timeline"][4:6]
        datatype = "nirs" if rec["type"] == "Fnirs" else "eeg"
        bp = BIDSPath(subject=subject, task="x", datatype=datatype, root=root)
        raw = read_raw_bids(bp, verbose="error")  # the reference reader
        # (the SNIRF sidecar has no RecordingDuration: BidsStudy read the file header)
        assert rec["frequency"] == raw.info["sfreq"]
        assert rec["duration"] == pytest.approx(raw.n_times / raw.info["sfreq"], abs=1e-9)
        assert (rec["bads"].split(",") if rec["bads"] else []) == raw.info["bads"]
    stim = events[events["type"] == "Stimulus"]
    assert stim.groupby("timeline", observed=True)["start"].apply(list).to_dict() == {
        "sub-01_task-x": list(ONSETS),
        "sub-02_task-x": list(ONSETS),
        "sub-03_task-x": list(ONSETS),
        "sub-04_task-x": list(NIRS_ONSETS),
    }


@pytest.mark.parametrize(
    ("subject", "ext", "reader"),
    [("01", ".set", mne.io.read_raw_eeglab), ("02", ".bdf", mne.io.read_raw_bdf)],
)
def test_eeg_formats_match_mne(
    root: Path, events: pd.DataFrame, tmp_path: Path, subject: str, ext: str, reader: Any
) -> None:
    store = Store(tmp_path / "store")
    eeg = EegExtractor(frequency=SFREQ)  # the native rate: no resampling
    eeg.prepare(events[events["timeline"] == f"sub-{subject}_task-x"], store, progress=False)
    seg = _windows(events, subject, TMIN, DURATION)
    out = eeg.read(seg, store)
    n = int(round(DURATION * SFREQ))
    assert out.data.shape == (3, len(CHANNELS), n)
    assert eeg.output_channels(seg, store) == tuple(CHANNELS)
    raw = reader(
        root / f"sub-{subject}" / "eeg" / f"sub-{subject}_task-x_eeg{ext}", verbose="error"
    )
    assert raw.n_times == N_TIMES
    assert_close(out.data, _epochs(raw.load_data(verbose="error"), ONSETS, TMIN, n), RTOL)
    # the ramp holds its own time: every window starts at the sample of onset + tmin
    expected = (np.round((np.array(ONSETS) + TMIN) * SFREQ)[:, None] + np.arange(n)) / SFREQ
    # (to 1e-4 uV: a 16-bit EDF of this signal errs by up to 6e-4 uV, 24-bit BDF by 2e-6)
    np.testing.assert_allclose(out.data[:, 0] * 1e6, expected, atol=1e-4)


def test_eeg_formats_filtered_resampled_match_mne(
    root: Path, events: pd.DataFrame, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    eeg = EegExtractor(frequency=100.0, filter=(1.0, 40.0), reference="average")
    eeg.prepare(events, store, progress=False)
    for subject, reader, ext in (
        ("01", mne.io.read_raw_eeglab, ".set"),
        ("02", mne.io.read_raw_bdf, ".bdf"),
    ):
        seg = _windows(events, subject, TMIN, DURATION)
        out = eeg.read(seg, store)
        raw = reader(
            root / f"sub-{subject}" / "eeg" / f"sub-{subject}_task-x_eeg{ext}",
            preload=True,
            verbose="error",
        )
        raw.set_eeg_reference("average", projection=False, verbose="error")
        raw.filter(1.0, 40.0, verbose="error").resample(100.0, verbose="error")
        assert out.data.shape == (3, len(CHANNELS), 100)
        assert_close(out.data, _epochs(raw, ONSETS, TMIN, 100), RTOL)


def test_channels_tsv_bads_dropped(root: Path, events: pd.DataFrame, tmp_path: Path) -> None:
    """Cz, bad in channels.tsv only, is dropped with drop_bads and left out of the reference."""
    from mne_bids import BIDSPath, read_raw_bids

    vhdr = root / "sub-03" / "eeg" / "sub-03_task-x_eeg.vhdr"
    assert mne.io.read_raw_brainvision(vhdr, verbose="error").info["bads"] == []  # not in file
    ref_raw = read_raw_bids(
        BIDSPath(subject="03", task="x", datatype="eeg", root=root), verbose="error"
    ).load_data(verbose="error")
    assert ref_raw.info["bads"] == ["Cz"]
    store = Store(tmp_path / "store")
    sub = events[events["timeline"] == "sub-03_task-x"].reset_index(drop=True)
    seg = _windows(sub, "03", TMIN, DURATION)
    n = int(round(DURATION * SFREQ))

    dropped = EegExtractor(frequency=SFREQ, drop_bads=True, reference="average")
    dropped.prepare(sub, store, progress=False)
    out = dropped.read(seg, store)
    assert dropped.output_channels(seg, store) == ("RAMP", "Fz", "Pz")
    ref = ref_raw.copy().pick("eeg", exclude="bads")
    ref.set_eeg_reference("average", projection=False, verbose="error")
    assert out.data.shape == (3, 3, n)
    assert_close(out.data, _epochs(ref, ONSETS, TMIN, n), RTOL)

    kept = EegExtractor(frequency=SFREQ, drop_bads=False, reference="average")
    kept.prepare(sub, store, progress=False)
    out = kept.read(seg, store)
    assert kept.output_channels(seg, store) == tuple(CHANNELS)
    assert store.meta(kept.items(sub)[0].key)["bads"] == ["Cz"]
    ref = ref_raw.copy().pick("eeg")  # average reference over the good channels only
    ref.set_eeg_reference("average", projection=False, verbose="error")
    assert_close(out.data, _epochs(ref, ONSETS, TMIN, n), RTOL)
    # the event's bads are part of the item key: without them, another entry
    no_bads = sub.assign(bads="")
    assert kept.items(no_bads)[0].key != kept.items(sub)[0].key


def test_snirf_through_fnirs_extractor(root: Path, events: pd.DataFrame, tmp_path: Path) -> None:
    from mne.preprocessing import nirs

    store = Store(tmp_path / "store")
    sub = events[events["timeline"] == "sub-04_task-x"]
    ex = FnirsExtractor(frequency=NIRS_SFREQ)
    ex.prepare(sub, store, progress=False)
    seg = _windows(events, "04", NIRS_TMIN, NIRS_DURATION)
    out = ex.read(seg, store)

    raw = mne.io.read_raw_snirf(
        root / "sub-04" / "nirs" / "sub-04_task-x_nirs.snirf", preload=True, verbose="error"
    )
    assert raw.n_times == NIRS_N and raw.info["sfreq"] == NIRS_SFREQ
    od = nirs.optical_density(raw, verbose="error")
    sci = nirs.scalp_coupling_index(od, verbose="error")
    od.drop_channels([c for c, v in zip(od.ch_names, sci) if v < 0.5])
    hb = nirs.beer_lambert_law(od, ppf=6.0)
    assert ex.output_channels(seg, store) == tuple(hb.ch_names)
    assert len(hb.ch_names) == 6 and not any(c.startswith("S3_D3") for c in hb.ch_names)
    n = int(round(NIRS_DURATION * NIRS_SFREQ))
    assert out.data.shape == (2, 6, n)
    assert_close(out.data, _epochs(hb, NIRS_ONSETS, NIRS_TMIN, n), RTOL)
    meta = store.meta(ex.items(sub)[0].key)
    assert meta["rejected"] == ["S3_D3 760", "S3_D3 850"]
