"""Discovery of BIDS ``anat/`` files and empty-room recordings as entity tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuralset.entities import EntityError
from neuralset.studies.anatomy import (
    discover_anatomy,
    discover_empty_rooms,
    read_atlas_labels,
    read_participants,
    study_entities,
)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_anatomy_table_from_a_bids_tree(tmp_path):
    _touch(
        tmp_path,
        "sub-01/anat/sub-01_run-2_T1w.nii.gz",
        "sub-01/anat/sub-01_run-1_T1w.nii.gz",
        "sub-01/anat/sub-01_trans.fif",
        "sub-01/anat/sub-01_dseg.mgz",
        "sub-01/anat/sub-01_dseg.tsv",
        "sub-02/ses-1/anat/sub-02_ses-1_trans.fif",
        "sub-02/ses-1/anat/sub-02_ses-1_bem.fif",
        "sub-03/meg/sub-03_task-read_meg.fif",  # no anat folder: no row
        "sub-04/anat/sub-04_FLAIR.nii.gz",  # nothing used: no row
    )
    table = discover_anatomy(tmp_path)
    assert table.keys() == [("01", ""), ("02", "1")]
    row = table.frame.iloc[0]
    assert row["t1w"] == "sub-01/anat/sub-01_run-1_T1w.nii.gz"  # first in name order
    assert row["trans"] == "sub-01/anat/sub-01_trans.fif" and row["bem"] == ""
    assert row["atlas"] == "sub-01/anat/sub-01_dseg.mgz"
    assert row["atlas_labels"] == "sub-01/anat/sub-01_dseg.tsv"
    assert table.frame.iloc[1]["bem"] == "sub-02/ses-1/anat/sub-02_ses-1_bem.fif"
    assert table.path(("02", "1"), "trans") == tmp_path.resolve() / (
        "sub-02/ses-1/anat/sub-02_ses-1_trans.fif"
    )
    assert table.path(("02", "2"), "trans") is None  # session 2 has no anatomy


def test_two_transforms_in_one_folder_is_an_error(tmp_path):
    _touch(tmp_path, "sub-01/anat/sub-01_acq-a_trans.fif", "sub-01/anat/sub-01_acq-b_trans.fif")
    with pytest.raises(EntityError) as err:
        discover_anatomy(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'sub-01' / 'anat'}: several files for the 'trans' entity "
        "(sub-01_acq-a_trans.fif, sub-01_acq-b_trans.fif); keep one per folder (move the others "
        "out of the BIDS tree)"
    )


def test_empty_rooms_per_session(tmp_path):
    _touch(
        tmp_path,
        "sub-01/ses-1/meg/sub-01_ses-1_task-noise_meg.fif",
        "sub-01/ses-1/meg/sub-01_ses-1_task-read_meg.fif",
        "sub-02/meg/sub-02_task-emptyroom_split-01_meg.fif",
        "sub-02/meg/sub-02_task-emptyroom_split-02_meg.fif",
    )
    table = discover_empty_rooms(tmp_path)
    assert table.keys() == [("01", "1"), ("02", "")]
    assert table.frame["empty_room"].tolist() == [
        "sub-01/ses-1/meg/sub-01_ses-1_task-noise_meg.fif",
        "sub-02/meg/sub-02_task-emptyroom_split-01_meg.fif",
    ]
    assert set(study_entities(tmp_path)) == {"anatomy", "empty_room", "participants"}


def test_participants_table_joins_by_subject(tmp_path):
    import pandas as pd

    assert len(read_participants(tmp_path)) == 0
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tage\thand\nsub-01\t31\tR\nsub-02\tn/a\tL\n"
    )
    table = read_participants(tmp_path)
    events = pd.DataFrame({"subject": ["02", "01", "03"], "session": ["1", "", "1"]})
    joined = table.join(events, columns=["age", "hand"])
    assert joined["age"].tolist()[:2] == ["", "31"] and joined["hand"].tolist()[:2] == ["L", "R"]
    assert joined["hand"].isna().tolist() == [False, False, True]  # no row for subject 03
    (tmp_path / "participants.tsv").write_text("id\tage\nsub-01\t31\n")
    with pytest.raises(EntityError) as err:
        read_participants(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'participants.tsv'}: a participants.tsv needs a 'participant_id' column "
        "(found: id, age)"
    )


def test_atlas_labels(tmp_path):
    path = tmp_path / "sub-01_dseg.tsv"
    path.write_text("index\tname\n1\tleft\n2\tright\n")
    assert read_atlas_labels(path) == {"left": 1, "right": 2}
    path.write_text("index\tlabel\n1\tleft\n")
    with pytest.raises(EntityError) as err:
        read_atlas_labels(path)
    assert str(err.value) == (
        f"{path}: a dseg.tsv needs the columns 'index' and 'name' (found: index, label)"
    )
    path.write_text("index\tname\none\tleft\n")
    with pytest.raises(EntityError) as err:
        read_atlas_labels(path)
    assert str(err.value) == f"{path}: index 'one' of parcel 'left' is not an integer"
    path.write_text("index\tname\n1\tUnknown\n2\tleft\n7\tUnknown\n")  # one parcel was lost
    with pytest.raises(EntityError) as err:
        read_atlas_labels(path)
    assert str(err.value) == (
        f"{path}: parcel name 'Unknown' is given twice (indexes 1 and 7); give each parcel its "
        "own name"
    )
