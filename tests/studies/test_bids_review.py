"""BidsStudy on what a researcher meets in real datasets (third review of the studies layer).

Every tree here is written by mne-bids (BrainVision EEG, the formats ``read_raw_bids`` reads back)
and then changed the way real datasets differ: text files annexed by git-annex and not fetched,
events files inherited from the top of the dataset, durations out of range.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.studies.bids import BidsError, BidsStudy

from .test_real_datasets import DS117

SFREQ = 100.0
N_TIMES = 1000


def _write_run(root: Path, subject: str) -> Path:
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    info = mne.create_info(["Fz", "Cz"], SFREQ, "eeg")
    raw = mne.io.RawArray(np.zeros((2, N_TIMES)), info, verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 2.0], [0.5, 0.5], ["a", "b"]))
    raw.info["bads"] = ["Cz"]
    bp = BIDSPath(subject=subject, task="read", run="1", datatype="eeg", root=root)
    write_raw_bids(raw, bp, format="BrainVision", allow_preload=True, verbose="error")
    return bp.fpath


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review") / "ds"
    for subject in ("01", "02"):
        _write_run(root, subject)
    return root


@pytest.fixture
def tree(written: Path, tmp_path: Path) -> Path:
    """A copy of the mne-bids tree this test may change."""
    return Path(shutil.copytree(written, tmp_path / "ds", symlinks=True))


def _events(root: Path, **options) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here warns
        return BidsStudy(path=root, **options).events()


def _annex(path: Path, *, unlocked: bool = False) -> None:
    """Replace ``path`` by a git-annex pointer without content, as ``datalad install`` leaves it."""
    size = path.stat().st_size
    key = f"MD5E-s{size}--{'ab' * 16}{''.join(path.suffixes)}"
    path.unlink()
    if unlocked:
        path.write_text(f"/annex/objects/{key}\n")
    else:
        os.symlink(f"../../.git/annex/objects/Xx/Yy/{key}/{key}", path)


def _not_fetched(path: Path) -> str:
    return (
        f"{path} is a git-annex file whose content is not fetched (the dataset annexed this "
        f"text file); fetch it with `datalad get {path}` (or `git annex get`), then read the "
        "dataset again"
    )


# -- 1. annexed text files without content --------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "participants.tsv",
        "sub-01/sub-01_scans.tsv",
        "sub-01/eeg/sub-01_task-read_run-1_channels.tsv",
        "sub-01/eeg/sub-01_task-read_run-1_events.tsv",
        "sub-01/eeg/sub-01_task-read_run-1_eeg.json",
    ],
)
@pytest.mark.parametrize("unlocked", [False, True], ids=["symlink", "unlocked"])
def test_annexed_text_files_not_fetched_are_named(tree: Path, name: str, unlocked: bool) -> None:
    """Before: participants, scans and channels files not fetched were skipped silently (no
    ``age`` column, no ``bads``), an events file was reported missing ("add it") and a sidecar
    unreadable ("No such file")."""
    reference = _events(tree)
    assert reference.loc[reference["type"] == "Eeg", "bads"].tolist() == ["Cz", "Cz"]
    _annex(tree / name, unlocked=unlocked)
    with pytest.raises(BidsError) as err:
        BidsStudy(path=tree).events()
    assert str(err.value) == _not_fetched(tree / name)


# -- 2. events.tsv inherited from upper folders (BIDS inheritance principle) ------------------
def _inherit_events(tree: Path) -> pd.DataFrame:
    """Remove the runs' events files; one top-level file gives every subject's events."""
    for path in tree.glob("sub-*/eeg/*_events.tsv"):
        path.unlink()
    table = pd.DataFrame({"onset": [1.5, 3.0], "duration": [0.5, 0.0], "trial_type": ["x", "y"]})
    table.to_csv(tree / "task-read_events.tsv", sep="\t", index=False, na_rep="n/a")
    return table


def test_events_inherited_from_the_top_level(tree: Path) -> None:
    """Before: "missing events file ... add it" (and no events at all with
    ``require_events=False``), though BIDS applies the top-level file to every run."""
    table = _inherit_events(tree)
    events = _events(tree)
    for subject in ("01", "02"):
        trials = events[(events["subject"] == subject) & (events["type"] == "Stimulus")]
        assert trials["start"].tolist() == table["onset"].tolist()
        assert trials["duration"].tolist() == table["duration"].tolist()
        assert trials["description"].tolist() == ["x", "y"]
    # the run-by-run build reads the same file
    study = BidsStudy(path=tree)
    pd.testing.assert_frame_equal(
        study.run_by_run_events().reset_index(drop=True),
        study.all_timeline_events().reset_index(drop=True),
    )


def test_nearest_inherited_events_file_wins(tree: Path) -> None:
    """A subject-level file (no run entity) overrides the top-level one for that subject."""
    _inherit_events(tree)
    own = pd.DataFrame({"onset": [7.0], "duration": [1.0], "trial_type": ["z"]})
    own.to_csv(tree / "sub-02" / "sub-02_task-read_events.tsv", sep="\t", index=False)
    events = _events(tree)
    trials = events[events["type"] == "Stimulus"]
    assert trials.groupby("subject")["description"].agg(list).to_dict() == {
        "01": ["x", "y"],
        "02": ["z"],
    }
    # two files of one folder that both apply: BIDS allows one
    own.to_csv(tree / "sub-02" / "sub-02_run-1_events.tsv", sep="\t", index=False)
    with pytest.raises(BidsError) as err:
        BidsStudy(path=tree).events()
    assert str(err.value) == (
        f"two events.tsv files in {tree / 'sub-02'} apply to "
        "sub-02_task-read_run-1_events.tsv by BIDS inheritance: sub-02_task-read_events.tsv "
        "and sub-02_run-1_events.tsv; name the runs in one of them (BIDS allows one per folder)"
    )


def test_channels_inherited_from_the_subject_folder(tree: Path) -> None:
    """A ``channels.tsv`` for every run of a subject marks their bad channels."""
    for path in tree.glob("sub-01/eeg/*_channels.tsv"):
        path.rename(tree / "sub-01" / "sub-01_task-read_channels.tsv")
    events = _events(tree)
    assert events.loc[events["type"] == "Eeg", "bads"].tolist() == ["Cz", "Cz"]


# -- 3. durations and onsets out of range -----------------------------------------------------
@pytest.mark.parametrize(
    ("column", "value"),
    [("duration", "-0.5"), ("duration", "inf"), ("onset", "inf"), ("onset", "-inf")],
)
def test_out_of_range_onsets_and_durations_name_the_file(
    tree: Path, column: str, value: str
) -> None:
    """Before: a negative duration failed in the events table's check without naming the file
    ("duration is negative or NaN at rows 1"); an infinite onset was reported "after the end of
    its recording", an infinite duration went through."""
    path = tree / "sub-02" / "eeg" / "sub-02_task-read_run-1_events.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.loc[1, column] = value
    table.to_csv(path, sep="\t", index=False)
    study = BidsStudy(path=tree)
    message = (
        f"{path}: rows [1] have an infinite onset or a negative or infinite duration; write "
        "onsets and durations in seconds (durations >= 0, n/a when unknown)"
    )
    for build in (study.all_timeline_events, study.run_by_run_events):
        with pytest.raises(BidsError) as err:
            build()
        assert str(err.value) == message


# -- 4. rows with an n/a onset ------------------------------------------------------------------
def test_rows_without_onset_are_counted_in_a_warning(tree: Path) -> None:
    """Before: rows with an ``n/a`` onset (BIDS requires a number) were left out silently."""
    for subject, rows in (("01", [0, 1]), ("02", [1])):
        path = tree / f"sub-{subject}" / "eeg" / f"sub-{subject}_task-read_run-1_events.tsv"
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        table.loc[rows, "onset"] = "n/a"
        table.to_csv(path, sep="\t", index=False)
    first = tree / "sub-01" / "eeg" / "sub-01_task-read_run-1_events.tsv"
    message = (
        f"BidsStudy at {tree}: 3 rows of 2 events files have an n/a onset and make no event "
        f"(BIDS requires a number); e.g. {first} (2 rows): give those rows their onset, or "
        "remove them"
    )
    study = BidsStudy(path=tree)
    for build in (study.events, study.run_by_run_events):
        with pytest.warns(UserWarning) as record:
            events = build()
        assert [str(w.message) for w in record] == [message]
        assert events["type"].tolist() == ["Eeg", "Eeg", "Stimulus"]
    with pytest.warns(UserWarning) as record:
        study.timeline_events("sub-02_task-read_run-1")
    assert [str(w.message) for w in record] == [
        f"BidsStudy at {tree}: 1 row of 1 events file has an n/a onset and makes no event "
        f"(BIDS requires a number); e.g. {tree / 'sub-02/eeg/sub-02_task-read_run-1_events.tsv'}"
        " (1 row): give those rows their onset, or remove them"
    ]


# -- 5. recording names whose entities cannot be read -------------------------------------------
@pytest.mark.parametrize(
    ("task", "part"),
    [
        ("n-back", "task-n-back"),
        ("n_back", "back"),
        ("émotion", "task-émotion"),
        ("a.b", "task-a.b"),
    ],
)
def test_recording_names_that_are_not_entities_are_refused(
    tree: Path, task: str, part: str
) -> None:
    """Before: ``task-n-back`` gave a recording without a task (mne-bids refuses the name),
    ``task-n_back`` the task ``n``, ``task-émotion`` none, and ``task-a.b`` left the file out,
    all silently."""
    eeg = tree / "sub-02" / "eeg"
    for path in eeg.glob("sub-02_task-read_run-1_*"):
        path.rename(eeg / path.name.replace("task-read", f"task-{task}"))
    renamed = eeg / f"sub-02_task-{task}_run-1_eeg.vhdr"
    if "-" in task:
        from mne_bids import get_entities_from_fname

        with pytest.raises(ValueError, match="multiple hyphens"):
            get_entities_from_fname(renamed.name, on_error="raise")
    with pytest.raises(BidsError) as err:
        BidsStudy(path=tree, require_events=False).events()
    assert str(err.value) == (
        f"{renamed}: {part!r} is not a BIDS entity (key-label, the label made of letters and "
        "digits only), so the file's subject, session, task or run cannot be told; rename it "
        "(e.g. 'task-nback' for 'task-n-back' or 'task-n_back')"
    )


# -- 6. runs told apart by dir-, ce-, rec- or proc- ---------------------------------------------
def test_runs_told_apart_by_phase_encoding_direction(tmp_path: Path) -> None:
    """Before: two BOLD runs differing only by ``dir-`` (no ``run-``, as HCP-style datasets
    name them) were refused as "two func recordings of the same run", with a fix (select with
    datatypes/spaces) that cannot separate them."""
    import json

    import nibabel as nib

    func = tmp_path / "ds" / "sub-01" / "func"
    func.mkdir(parents=True)
    for direction, onset in (("AP", 2.0), ("PA", 4.0)):
        base = func / f"sub-01_task-read_dir-{direction}"
        img = nib.Nifti1Image(np.zeros((2, 2, 2, 10), np.float32), np.eye(4))
        nib.save(img, f"{base}_bold.nii.gz")
        Path(f"{base}_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
        events = pd.DataFrame({"onset": [onset], "duration": [1.0], "trial_type": ["go"]})
        events.to_csv(f"{base}_events.tsv", sep="\t", index=False)
    events = _events(tmp_path / "ds")
    trials = events[events["type"] == "Stimulus"]
    assert dict(zip(trials["timeline"], trials["start"])) == {
        "sub-01_task-read_dir-AP": 2.0,
        "sub-01_task-read_dir-PA": 4.0,
    }
    assert events.loc[events["type"] == "Fmri", "duration"].tolist() == [20.0, 20.0]


# -- 7. selections that select nothing ------------------------------------------------------------
DS000117 = DS117
SUBJECTS = "01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12, 13, 14, 15, 16, emptyroom"


@pytest.mark.skipif(not DS000117.is_dir(), reason=f"real OpenNeuro metadata not found at {DS117}")
@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (
            {"subjects": ("01", "99")},
            f"BidsStudy.subjects: '99' is not in {DS000117}, which has {SUBJECTS}; give labels "
            "without the 'sub-' prefix, as file names spell them",
        ),
        (
            {"subjects": ("1", "sub-02")},
            f"BidsStudy.subjects: '1', 'sub-02' are not in {DS000117}, which has {SUBJECTS}; "
            "give labels without the 'sub-' prefix, as file names spell them",
        ),
        (
            {"tasks": ("facerecognition", "rest")},
            f"BidsStudy.tasks: 'rest' is not in {DS000117}, which has facerecognition, noise; "
            "give labels without the 'task-' prefix, as file names spell them",
        ),
        (
            {"datatypes": ("meg", "eeg")},  # ds000117's EEG is in its MEG files
            f"BidsStudy.datatypes: 'eeg' is not in {DS000117}, which has func, meg",
        ),
        (
            {"spaces": ("MNI152NLin2009cAsym",)},
            f"BidsStudy.spaces: 'MNI152NLin2009cAsym' is not in {DS000117}, which has none; "
            "spaces select among fmri_derivatives' runs: set fmri_derivatives",
        ),
        (
            {"subjects": ("01", "02"), "tasks": ("noise",)},
            "BidsStudy.subjects: '01', '02' have no recording with the other selections "
            f"(tasks=('noise',)) in {DS000117}; remove it, or widen those",
        ),
    ],
)
def test_selections_that_select_nothing_are_named(selection: dict, message: str) -> None:
    """Before: a subject or task label matching nothing (a typo, a ``sub-`` prefix, a subject
    without data) was left out of the table silently, or gave "has no timelines"."""
    with pytest.raises(BidsError) as err:
        BidsStudy(path=DS000117, **selection).events()
    assert str(err.value) == message


# -- 8. runs with two events files (EEG-fMRI, MEG + EEG) --------------------------------------
def test_a_row_one_file_lists_twice_is_kept_twice(tmp_path: Path) -> None:
    """Rows listed by both events files of a run are kept once; before, a row listed twice by
    one file (two identical triggers) was kept once too, silently."""
    root = tmp_path / "ds"
    _write_run(root, "01")
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    info = mne.create_info(["MEG 001", "MEG 002"], SFREQ, "mag")
    raw = mne.io.RawArray(np.zeros((2, N_TIMES)), info, verbose="error")
    raw.info["line_freq"] = 50.0
    raw.set_annotations(mne.Annotations([1.0, 2.0, 2.0, 4.0], [0.5, 0.5, 0.5, 0.0], list("abbc")))
    bp = BIDSPath(subject="01", task="read", run="1", datatype="meg", root=root)
    write_raw_bids(raw, bp, allow_preload=True, format="FIF", verbose="error")
    meg = pd.read_csv(bp.copy().update(suffix="events", extension=".tsv").fpath, sep="\t")
    assert meg["trial_type"].tolist() == list("abbc")  # mne-bids writes both b rows
    events = _events(root)
    trials = events[events["type"] == "Stimulus"]
    # the EEG file lists a (1.0) and b (2.0): each kept once; the MEG file's second b is kept
    assert list(zip(trials["start"], trials["description"])) == [
        (1.0, "a"),
        (2.0, "b"),
        (2.0, "b"),
        (4.0, "c"),
    ]


# -- 9. codes that are not integers ----------------------------------------------------------------
def test_codes_that_are_not_integers_are_named(tree: Path) -> None:
    """Before: a ``value`` cell that is not an integer (BrainVision's ``S  1``, ``1.5``) gave
    code 0 silently, as if it had none."""
    path = tree / "sub-02" / "eeg" / "sub-02_task-read_run-1_events.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table["value"] = ["S  1", "S  2"]
    table.to_csv(path, sep="\t", index=False)
    message = (
        f"BidsStudy at {tree}: 1 events file has 'value' (code_column) cells that are not "
        f"integers, read as code 0; e.g. {path} has 'S  1': read the column as text with "
        "extra_columns=('value',) and code_column='', or set code_column to a column of "
        "integer codes"
    )
    study = BidsStudy(path=tree)
    for build in (study.events, study.run_by_run_events):
        with pytest.warns(UserWarning) as record:
            events = build()
        assert [str(w.message) for w in record] == [message]
        assert events.loc[events["type"] == "Stimulus", "code"].tolist() == [1, 2, 0, 0]
    # the fix the message gives: the cells as text, no code
    events = _events(tree, extra_columns=("value",), code_column="")
    trials = events[events["type"] == "Stimulus"]
    assert trials["value"].tolist() == [1.0, 2.0, "S  1", "S  2"]  # numbers per run


# -- 10. extra columns no file has ----------------------------------------------------------------
@pytest.mark.skipif(not DS000117.is_dir(), reason=f"real OpenNeuro metadata not found at {DS117}")
def test_extra_columns_no_file_has_are_named() -> None:
    """Before: a misspelt ``extra_columns`` name gave no column, silently."""
    study = BidsStudy(
        path=DS000117,
        datatypes=("func",),
        extra_columns=("response_time", "reponse_time", "Button_Pushed"),
    )
    with pytest.warns(UserWarning) as record:
        events = study.events()
    assert [str(w.message) for w in record] == [
        "BidsStudy.extra_columns: 'reponse_time', 'Button_Pushed' are a column of no events "
        f"file of {DS000117} (of the selected runs); check the spelling against the files' "
        "header (names are case-sensitive)"
    ]
    # the column spelt right is read as pandas reads it
    first = sorted(DS000117.glob("sub-01/ses-mri/func/*_run-01_events.tsv"))[0]
    expected = pd.read_csv(first, sep="\t", na_values="n/a", keep_default_na=False)
    trials = events[(events["type"] == "Stimulus") & (events["timeline"] == events["timeline"][0])]
    np.testing.assert_array_equal(trials["response_time"], expected["response_time"])
