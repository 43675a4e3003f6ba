"""Export a study to BIDS and read it back (issue 9, section 5).

The synthetic study (every modality mne-bids writes, plus fMRI written by hand) goes through
``Study.to_bids``; ``BidsStudy`` on the result gives the same events, and each modality's
extractor gives the same windows from the exported files as from the originals (exact for
copied files and FIF; to float32 / EDF resolution after BrainVision / EDF conversion).
"""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.extractors import (
    EegExtractor,
    EmgExtractor,
    FmriExtractor,
    FnirsExtractor,
    IeegExtractor,
    MegExtractor,
)
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.studies.bids import BidsStudy
from neuralset.studies.bids_export import ExportError, to_bids
from neuralset.synthetic import SyntheticStudy

MODALITIES = ("meg", "eeg", "ieeg", "emg", "fnirs", "fmri", "audio", "image")
RECORDINGS = ("Meg", "Eeg", "Ieeg", "Emg", "Fnirs", "Fmri")
FIELDS = ["type", "start", "duration", "description", "code", "text", "language", "sentence"]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("export") / "synthetic",
        n_subjects=2,
        duration=24.0,
        meg_channels=4,
        eeg_channels=4,
        modalities=MODALITIES,
    )
    return study.events()


@pytest.fixture(scope="module")
def exported(original: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return to_bids(original, tmp_path_factory.mktemp("bids") / "ds")


@pytest.fixture(scope="module")
def readback(exported: Path) -> pd.DataFrame:
    return BidsStudy(path=exported, fmri_derivatives="derivatives/neuralset").events()


def _canonical(events: pd.DataFrame, timeline: str) -> pd.DataFrame:
    ev = events[(events["timeline"] == timeline) & ~events["type"].isin(RECORDINGS)]
    table = ev.reindex(columns=FIELDS).copy()
    table["type"] = table["type"].astype(str)
    table["file"] = [Path(p).name if isinstance(p, str) else None for p in ev["filepath"]]
    for col in ("description", "text", "language", "sentence", "file"):
        table[col] = table[col].where(table[col].notna() & (table[col] != ""), None)
    table["code"] = table["code"].fillna(0).astype(int)
    return table.sort_values(["start", "type", "text", "file"], kind="stable").reset_index(
        drop=True
    )


def test_same_events(original: pd.DataFrame, readback: pd.DataFrame) -> None:
    assert sorted(readback["timeline"].unique()) == ["sub-01_task-task", "sub-02_task-task"]
    for old, new in (("sub-01", "sub-01_task-task"), ("sub-02", "sub-02_task-task")):
        a, b = _canonical(original, old), _canonical(readback, new)
        assert len(a) == len(b) > 100
        pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-9, check_dtype=False)
        recs_a = original[(original["timeline"] == old) & original["type"].isin(RECORDINGS)]
        recs_b = readback[(readback["timeline"] == new) & readback["type"].isin(RECORDINGS)]
        key = ["type", "start", "duration", "frequency"]
        left = recs_a[key].astype({"type": str}).sort_values("type").reset_index(drop=True)
        right = recs_b[key].astype({"type": str}).sort_values("type").reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-9)
    fmri = readback[readback["type"] == "Fmri"]
    assert set(fmri["space"]) == set(original.loc[original["type"] == "Fmri", "space"])


CASES = [
    ("Meg", MegExtractor(frequency=100.0, filter=(None, 40.0)), 0.0),
    ("Eeg", EegExtractor(frequency=100.0), 1e-6),
    ("Ieeg", IeegExtractor(frequency=100.0), 1e-6),
    ("Emg", EmgExtractor(frequency=50.0, band=(20.0, 200.0), envelope=10.0), 1e-3),
    ("Fnirs", FnirsExtractor(frequency=5.0), 0.0),
    ("Fmri", FmriExtractor(frequency=0.5), 0.0),
]


@pytest.mark.parametrize(("etype", "extractor", "rtol"), CASES, ids=[c[0] for c in CASES])
def test_same_windows(
    etype: str,
    extractor,  # noqa: ANN001
    rtol: float,
    original: pd.DataFrame,
    readback: pd.DataFrame,
    tmp_path: Path,
) -> None:
    duration = 4.0 if etype == "Fmri" else 0.6
    windows = []
    for events in (original, readback):
        segments = segment_on_triggers(events, "Word", offset=0.0, duration=duration)
        segments = segments.require(etype)
        store = Store(tmp_path / f"store{len(windows)}")
        extractor.prepare(events, store, progress=False)
        per_subject = []  # channel sets differ between subjects: one batch per recording
        for code in np.unique(segments.timeline):
            batch = segments.select(segments.timeline == code)
            out = extractor.read(batch, store, out_of_bounds="drop")
            per_subject.append(out.data)
        windows.append(per_subject)
    for a, b in zip(*windows):
        assert a.shape == b.shape and len(a) > 20
        scale = np.abs(a).max()
        np.testing.assert_allclose(b, a, rtol=0, atol=max(rtol, 1e-7) * scale)


def test_edf_export_and_bads(original: pd.DataFrame, tmp_path: Path) -> None:
    eeg = original[original["timeline"] == "sub-01"].copy()
    eeg = eeg[~eeg["type"].isin(["Meg", "Ieeg", "Emg", "Fnirs", "Fmri"])]
    source = Path(eeg["study_root"].iloc[0]) / eeg.loc[eeg["type"] == "Eeg", "filepath"].iloc[0]
    raw = mne.io.read_raw(source, verbose="error")
    names = tuple(n for n, t in zip(raw.ch_names, raw.get_channel_types()) if t == "eeg")
    eeg["bads"] = np.where(eeg["type"] == "Eeg", names[1], None)
    root = to_bids(eeg, tmp_path / "edf", eeg_format="EDF")
    back = BidsStudy(path=root).events()
    rec = back[back["type"] == "Eeg"].iloc[0]
    assert rec["filepath"].endswith("_eeg.edf") and rec["bads"] == names[1]
    windows = []
    # EDF stores no channel types (channels.tsv does): select the EEG channels by name
    extractor = EegExtractor(frequency=100.0, ch_names=names)
    for events in (eeg, back):
        segments = segment_on_triggers(events, "Word", offset=0.0, duration=0.5).require("Eeg")
        store = Store(tmp_path / f"s{len(windows)}")
        extractor.prepare(events, store, progress=False)
        windows.append(extractor.read(segments, store).data)
    raw = mne.io.read_raw(root / rec["filepath"], verbose="error")
    step = np.abs(np.diff(np.unique(raw.get_data()[0]))).min()  # EDF's digital resolution
    np.testing.assert_allclose(windows[1], windows[0], rtol=0, atol=2 * step)
    with pytest.raises(ExportError, match=r"exists; pass overwrite=True"):
        to_bids(eeg, root)


def test_export_errors(original: pd.DataFrame, tmp_path: Path) -> None:
    words = original[original["type"] == "Word"]
    with pytest.raises(ExportError, match=r"timeline 'sub-01' has no recording event"):
        to_bids(words, tmp_path / "a")
    spikes = pd.concat([original.iloc[:1].assign(type="Spikes")]).astype({"type": "category"})
    with pytest.raises(ExportError, match=r"1 Spikes events: BIDS has no datatype"):
        to_bids(spikes, tmp_path / "b")


def test_mne_bids_reads_the_export(original: pd.DataFrame, exported: Path) -> None:
    """mne-bids reads every exported recording with the run's events as annotations: the same
    onsets, durations and descriptions (``trial_type``: the description, else the type) as the
    study's events, and the header's rate."""
    from mne_bids import BIDSPath, read_raw_bids

    for (subject, datatype), rows in original[original["type"].isin(RECORDINGS[:-1])].groupby(
        ["subject", "type"]
    ):
        rec = rows.iloc[0]
        bp = BIDSPath(
            subject=str(subject),
            task="task",
            datatype={"Fnirs": "nirs"}.get(str(datatype), str(datatype).lower()),
            root=exported,
        )
        raw = read_raw_bids(bp, verbose="error")
        assert raw.info["sfreq"] == rec["frequency"]
        ev = original[
            (original["timeline"] == rec["timeline"]) & ~original["type"].isin(RECORDINGS)
        ]
        expected = sorted(
            zip(
                ev["start"].round(6),
                ev["duration"].round(6),
                [
                    d if isinstance(d, str) and d else t
                    for d, t in zip(ev["description"], ev["type"])
                ],
            )
        )
        annotations = raw.annotations
        got = sorted(
            zip(
                (annotations.onset - raw.first_time).round(6),
                annotations.duration.round(6),
                annotations.description,
            )
        )
        assert got == expected, (subject, datatype)
