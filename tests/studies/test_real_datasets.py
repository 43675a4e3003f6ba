"""Explore before download, on the real metadata of three OpenNeuro datasets (issue 9, section 1).

The trees in ``../shared/data/openneuro`` are what ``datalad install`` leaves: text files real,
recordings not fetched (each one a git-annex pointer whose key gives its size and checksum).
Expected values are computed here independently (``glob`` + ``pandas.read_csv`` over the same
files) or are facts of the datasets (participant ages, acquisition times, annex key sizes).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.events.index import EventIndex, UnknownDurationError
from neuralset.studies.bids import BidsError, BidsStudy
from neuralset.studies.fetch import MissingFilesError, needed_files, summary

OPENNEURO = Path(__file__).resolve().parents[3] / "shared" / "data" / "openneuro"
if not OPENNEURO.is_dir():  # the worktree layout (/work/wt/<branch>) or a clone next to shared/
    OPENNEURO = Path("/work/shared/data/openneuro")
DS117, DS2345, DS3643 = (OPENNEURO / n for n in ("ds000117", "ds002345", "ds003643"))

pytestmark = pytest.mark.skipif(
    not DS117.is_dir(), reason=f"real OpenNeuro metadata not found at {OPENNEURO}"
)


@pytest.fixture(scope="module")
def faces() -> pd.DataFrame:
    study = BidsStudy(path=DS117, description_column="stim_type", code_column="trigger")
    # the fMRI runs name their conditions in trial_type: their Stimulus events get none
    with pytest.warns(UserWarning, match="144 of 240 events files have no 'stim_type' column"):
        return study.events()


def test_ds000117_runs_subjects_and_sizes(faces: pd.DataFrame) -> None:
    meg = sorted(glob.glob(str(DS117 / "sub-*/ses-*/meg/*_meg.fif")))
    bold = sorted(glob.glob(str(DS117 / "sub-*/ses-*/func/*_bold.nii.gz")))
    assert len(meg) == 104 and len(bold) == 144  # 16 x 6 MEG runs + 8 empty-room, 16 x 9 BOLD
    recs = faces[faces["type"].isin(["Meg", "Fmri"])]
    assert sorted(str(DS117 / p) for p in recs["filepath"]) == sorted(meg + bold)
    assert faces["timeline"].nunique() == len(meg) + len(bold)
    assert sorted(faces["subject"].unique()) == [f"{i:02d}" for i in range(1, 17)] + ["emptyroom"]
    # nothing is fetched: every recording is a pointer whose annex key gives its size
    assert not recs["file_present"].any()
    first = recs[
        recs["filepath"].str.endswith("sub-01_ses-meg_task-facerecognition_run-01_meg.fif")
    ]
    assert first["file_size"].tolist() == [860240688.0]  # MD5E-s860240688--6f39...fif
    assert first["frequency"].tolist() == [1100.0]
    # the sidecars give no RecordingDuration and the files are absent: said explicitly
    assert set(recs["duration_source"]) == {"unknown"} and recs["duration"].isna().all()
    sizes = [int(os.readlink(p).split("-s")[1].split("--")[0]) if os.path.islink(p) else
             int(Path(p).read_text().split("-s")[1].split("--")[0]) for p in meg + bold]  # fmt: skip
    assert recs["file_size"].sum() == pytest.approx(sum(sizes))
    info = summary(needed_files(faces))
    assert info["recordings"] == len(meg) + len(bold) and info["recordings_present"] == 0


def test_ds000117_events_match_the_tsv_files(faces: pd.DataFrame) -> None:
    for tsv in sorted(glob.glob(str(DS117 / "sub-0[1-3]/ses-*/*/*_events.tsv"))):
        if "/beh/" in tsv:
            continue
        table = pd.read_csv(tsv, sep="\t")
        name = os.path.basename(tsv).replace("_events.tsv", "")
        timeline = "_".join(p for p in name.split("_") if not p.startswith("acq-"))
        ev = faces[faces["timeline"] == timeline]
        stim = ev[ev["type"] == "Stimulus"].sort_values("start", kind="stable")
        assert len(stim) == len(table), tsv
        np.testing.assert_allclose(stim["start"], table["onset"])
        desc = "stim_type" if "stim_type" in table else "trial_type"
        if desc == "stim_type":
            assert stim["description"].tolist() == table["stim_type"].tolist()
            assert stim["code"].tolist() == table["trigger"].tolist()
        images = ev[ev["type"] == "Image"]
        assert len(images) == table["stim_file"].notna().sum()
        assert set(images["filepath"]) <= {f"stimuli/{f}" for f in table["stim_file"]}
    counts = faces.groupby("type", observed=True).size().to_dict()
    assert counts == {"Fmri": 144, "Image": 27593, "Meg": 104, "Stimulus": 27593}


def test_ds000117_participants_and_scans_joined(faces: pd.DataFrame) -> None:
    participants = pd.read_csv(DS117 / "participants.tsv", sep="\t").dropna()  # CRLF, n/a row
    assert len(participants) == 16
    for _, row in participants.iterrows():
        sub = faces[faces["subject"] == row["participant_id"][4:]]
        assert set(sub["age"]) == {float(row["age"])}
        assert set(sub["sex"]) == {row["sex"]} and set(sub["first_ses"]) == {row["first_ses"]}
    assert faces.loc[faces["subject"] == "emptyroom", "age"].isna().all()
    run1 = faces[
        (faces["type"] == "Meg")
        & faces["filepath"].str.endswith("sub-01_ses-meg_task-facerecognition_run-01_meg.fif")
    ]
    assert run1["acq_time"].tolist() == ["2009-04-09T12:04:14"]  # sub-01_ses-meg_scans.tsv


def test_ds002345_mess_and_stimuli() -> None:
    events = BidsStudy(path=DS2345).events()
    bold = glob.glob(str(DS2345 / "sub-*/func/*_bold.nii.gz"))
    assert (events["type"] == "Fmri").sum() == len(bold) == 873
    assert events["subject"].nunique() == 345
    # participants.tsv holds one value per task ("22,23"): kept as text, never silently parsed
    sub1 = events[events["subject"] == "001"]
    assert set(sub1["age"]) == {"22,23"} and set(sub1["participant_task"]) == {"pieman,tunnel"}
    assert "task" in events and set(sub1["task"]) == {"pieman", "tunnel"}
    # the story audio: an Audio event at each stim_file onset, its size from the annex key
    audio = events[events["type"] == "Audio"]
    n_rows = sum(
        pd.read_csv(p, sep="\t")["stim_file"].notna().sum()
        for p in glob.glob(str(DS2345 / "sub-*/func/*_events.tsv"))
    )
    assert len(audio) == n_rows
    assert not audio["file_present"].any() and (audio["file_size"] > 0).all()
    fmri = events[events["type"] == "Fmri"]
    np.testing.assert_allclose(fmri.loc[fmri["subject"] == "001", "frequency"], 1 / 1.5)
    # participants.tsv and scans.tsv both have a "condition" column: the scan's is prefixed
    assert set(sub1["condition"]) == {"n/a,n/a"}
    assert fmri.loc[fmri["subject"] == "001", "scan_condition"].isna().all()  # n/a per scan


def test_ds003643_multi_echo_without_events() -> None:
    with pytest.raises(BidsError, match=r"missing events file .*_events.tsv for recording .*bold"):
        BidsStudy(path=DS3643, subjects=("EN057",)).events()
    events = BidsStudy(path=DS3643, require_events=False).events()
    bold = glob.glob(str(DS3643 / "sub-*/func/*_bold.nii.gz"))
    assert len(events) == len(bold) == 3033 and set(events["type"]) == {"Fmri"}
    assert events["subject"].nunique() == 112
    one = events[events["timeline"] == "sub-EN057_task-lppEN_run-15"]
    assert sorted(one["echo"]) == ["1", "2", "3"]
    assert set(one["frequency"]) == {0.5}  # RepetitionTime 2 s
    echo2 = BidsStudy(path=DS3643, require_events=False, echoes=("2",), subjects=("EN057",))
    assert set(echo2.events()["echo"]) == {"2"}
    parts = pd.read_csv(DS3643 / "participants.tsv", sep="\t", encoding="utf-8-sig")
    row = parts[parts["participant_id"] == "sub-EN057"].iloc[0]
    assert set(one["correct_quiz_questions"]) == {float(row["correct_quiz_questions"])}


def test_unknown_durations_refused_with_the_fix(faces: pd.DataFrame) -> None:
    with pytest.raises(UnknownDurationError) as err:
        EventIndex(faces)
    assert str(err.value).startswith("248 events have an unknown duration (NaN, duration_source ")
    assert "study.fetch(events)" in str(err.value) and "duration_source'] != 'unknown'" in str(
        err.value
    )


def test_prepare_names_missing_files_before_any_work(faces: pd.DataFrame, tmp_path: Path) -> None:
    from neuralset.extractors import MegExtractor
    from neuralset.store import Store

    store = Store(tmp_path / "store")
    sub1 = faces[(faces["subject"] == "01") & (faces["type"] == "Meg")]
    with pytest.raises(MissingFilesError) as err:
        MegExtractor(frequency=100.0).prepare(sub1, store)
    message = str(err.value)
    assert message.startswith("MegExtractor: 6 files are not on disk yet (5.2 GB to fetch): ")
    assert "sub-01_ses-meg_task-facerecognition_run-01_meg.fif" in message
    assert message.endswith(
        f"fetch them with study.fetch(events) (or `neuralset fetch CONFIG`), or `datalad get` / "
        f"`git annex get` in {DS117.resolve()}"
    )
    assert list(store.keys()) == []  # nothing was stored


def _one_subject_copy(tmp_path: Path) -> Path:
    root = tmp_path / "ds000117"
    root.mkdir()
    for name in ("dataset_description.json", "participants.tsv", "participants.json"):
        shutil.copy(DS117 / name, root / name)
    shutil.copytree(DS117 / "sub-01" / "ses-meg", root / "sub-01" / "ses-meg")
    for path in (root / "sub-01").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def test_real_world_mess_is_skipped(tmp_path: Path) -> None:
    root = _one_subject_copy(tmp_path)
    meg = root / "sub-01" / "ses-meg" / "meg"
    (meg / "._sub-01_ses-meg_task-facerecognition_run-01_meg.fif").write_bytes(b"\x00\x05\x16")
    (meg / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "._participants.tsv").write_bytes(b"\x00\x05")
    study = BidsStudy(path=root, description_column="stim_type", code_column="trigger")
    events = study.events()
    assert (events["type"] == "Meg").sum() == 6


def test_duration_from_the_header_once_fetched(tmp_path: Path) -> None:
    """A fetched file (a FIF with the header the sidecar declares) gives its duration."""
    import mne

    root = _one_subject_copy(tmp_path)
    study = BidsStudy(path=root, description_column="stim_type", code_column="trigger")
    before = study.events()
    assert before.loc[before["type"] == "Meg", "duration_source"].eq("unknown").all()
    fif = root / "sub-01/ses-meg/meg/sub-01_ses-meg_task-facerecognition_run-01_meg.fif"
    sidecar = json.loads(
        (root / "sub-01/ses-meg/sub-01_ses-meg_task-facerecognition_meg.json").read_text()
    )
    info = mne.create_info(["MEG0111", "MEG0112"], sidecar["SamplingFrequency"], ["mag", "grad"])
    raw = mne.io.RawArray(np.zeros((2, 1100 * 500)), info, verbose="error")
    fif.unlink()
    raw.save(fif, verbose="error")
    after = BidsStudy(path=root, description_column="stim_type", code_column="trigger").events()
    meg = after[after["type"] == "Meg"].set_index("filepath")
    rel = fif.relative_to(root).as_posix()
    assert meg.loc[rel, "duration_source"] == "header" and meg.loc[rel, "duration"] == 500.0
    assert meg.loc[rel, "file_present"] and meg.loc[rel, "file_size"] == fif.stat().st_size
    assert (meg.drop(rel)["duration_source"] == "unknown").all()
