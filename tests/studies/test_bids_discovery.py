"""The dataset-wide BIDS discovery gives the run-by-run build's table, on messy and real trees.

:meth:`BidsStudy.all_timeline_events` reads every events file of a dataset together and builds
the columns in one pass (:mod:`neuralset.studies.bids_dataset`); :meth:`run_by_run_events`
builds each run's parts one after the other, as :meth:`timeline_events` does. Both must give the
same rows, order, columns, dtypes, values and Python types, and the same first error.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from neuralset.studies import bids_dataset, bids_events
from neuralset.studies.bids import BidsError, BidsStudy
from neuralset.studies.bids_files import _read_csv_tsv, plain_tsv, read_tsv, tsv_columns
from neuralset.studies.file_state import file_columns, file_state, remembered_states
from tests.studies.bids_messy import MESSY_OPTIONS, make_messy

OPENNEURO = Path(__file__).resolve().parents[3] / "shared" / "data" / "openneuro"
if not OPENNEURO.is_dir():
    OPENNEURO = Path("/work/shared/data/openneuro")


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    return make_messy(tmp_path_factory.mktemp("bids") / "messy")


def _dataset_build(study: BidsStudy) -> pd.DataFrame:
    """The dataset-wide build alone (no fall-back to the run-by-run build on an error)."""
    by_timeline = study._by_timeline()
    return bids_dataset.dataset_events(study, by_timeline, bids_dataset._Context(study.path))


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == list(expected.columns)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    for column in got.columns:  # object columns: the same Python types (float, str, None)
        if got[column].dtype == object:
            assert list(map(type, got[column])) == list(map(type, expected[column])), column


@pytest.mark.parametrize("pandas_rows", [1, 10**9], ids=["pandas-tokenizer", "str-split"])
@pytest.mark.parametrize("options", list(MESSY_OPTIONS))
def test_messy_tree_same_as_run_by_run(messy, options, pandas_rows, monkeypatch):
    monkeypatch.setattr(bids_dataset, "_PANDAS_ROWS", pandas_rows)
    study = BidsStudy(path=messy, **MESSY_OPTIONS[options])
    got = _dataset_build(study)
    _assert_same(got, study.run_by_run_events())
    assert len(got) > 5 and got["timeline"].nunique() > 2


def test_messy_tree_covers_both_builds(messy, monkeypatch):
    """Runs built together (one events file each) and runs built alone (two events files in a
    run, typed rows) interleave in one table at their places."""
    alone, together = [], []
    monkeypatch.setattr(
        bids_dataset,
        "events_parts",
        lambda files, *a: alone.append(files) or bids_events.events_parts(files, *a),
    )
    monkeypatch.setattr(
        bids_dataset,
        "many_runs_parts",
        lambda t, n, *a: together.append(len(n)) or bids_events.many_runs_parts(t, n, *a),
    )
    events = BidsStudy(path=messy, require_events=False).events()
    assert sorted(len(files) for files in alone) == [1, 2] and sum(together) == 7
    typed = events[events["timeline"] == "sub-05_task-read"]
    assert typed["type"].astype(str).tolist() == [
        "Eeg",
        "Stimulus",
        "Word",
        "Word",
        "Stimulus",
        "Word",
    ]
    two_files = events[events["timeline"] == "sub-02_ses-1_task-read_run-1"]
    assert two_files["start"].tolist() == [0.0, 0.0, 2.0, 4.0, 1.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("ds000117", {"description_column": "stim_type", "code_column": "trigger"}),
        ("ds000117", {"extra_columns": ("onset_sample", "stim_type"), "trial_event": ""}),
        ("ds002345", {"extra_columns": ("stim_file",)}),
        ("ds003643", {"require_events": False}),
    ],
)
def test_real_trees_same_as_run_by_run(name, kwargs):
    root = OPENNEURO / name
    if not root.is_dir():
        pytest.skip(f"real OpenNeuro metadata not found at {root}")
    study = BidsStudy(path=root, **kwargs)
    _assert_same(_dataset_build(study), study.run_by_run_events())


def _two_faults(messy: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "messy"
    shutil.copytree(messy, copy, symlinks=True)
    run2 = copy / "sub-01/eeg/sub-01_task-read_run-2_events.tsv"
    run2.write_text(run2.read_text().replace("11.0\t", "eleven\t"))  # the first faulty run
    late = copy / "sub-04/ieeg/sub-04_task-read_acq-clin_events.tsv"
    late.write_text(late.read_text().replace("1\t", "50\t"))  # a later one: not reported
    return copy


def test_first_faulty_run_names_the_error(messy, tmp_path):
    copy = _two_faults(messy, tmp_path)
    study = BidsStudy(path=copy, require_events=False)
    with pytest.raises(BidsError) as fast:
        study.events()
    with pytest.raises(BidsError) as reference:
        study.run_by_run_events()
    run2 = copy / "sub-01/eeg/sub-01_task-read_run-2_events.tsv"
    assert (
        str(fast.value)
        == str(reference.value)
        == (
            f"{run2}: column 'onset' must hold numbers (seconds) or n/a: could not convert string "
            "to float: 'eleven'"
        )
    )
    run2.write_text(run2.read_text().replace("eleven\t", "11.0\t"))
    with pytest.raises(BidsError, match=r"inconsistent run: .*sub-04_task-read_acq-clin_events.tsv "
                       r"has onsets after the end of its recording \(5.001 s\), rows \[0\]") as late:  # fmt: skip
        BidsStudy(path=copy, require_events=False).events()
    with pytest.raises(BidsError) as reference:
        BidsStudy(path=copy, require_events=False).run_by_run_events()
    assert str(late.value) == str(reference.value)


TRICKY = [
    "onset\tx\n1\ta\n",
    "\ufeffonset\tx\r\n1\ta\r\n2\tb",  # byte-order mark, CRLF, no final line end
    "onset\tx\n\n1\ta\n\n\n2\t\n",  # blank lines, an empty cell
    " onset \t x\n1\t a \n",  # padded names (stripped) and cells (kept)
    "onset\n \n1\n",  # a row of one space
    'onset\tx\n1\t"a\tb"\n',  # a quoted tab: csv
    "onset\tx\n1\ta\rb\n",  # a lone carriage return: csv
    "onset\tx\n1\ta\tb\n",  # a row too long: csv words the error
    "onset\tx\n1\n",  # a row too short
    "",  # empty
    "\n1\n",  # no header
    "onset\tonset\n1\t2\n",  # a repeated name: the last column wins
    "onset\tx\n1\ta\u2028b\n2\t\x0c\n",  # separators csv does not split at
]


@pytest.mark.parametrize("text", TRICKY)
def test_tsv_reading_matches_the_csv_module(tmp_path, text):
    path = tmp_path / "x_events.tsv"
    path.write_bytes(text.encode("utf-8"))
    try:
        expected: object = _read_csv_tsv(path)
    except BidsError as err:
        expected = str(err)
    try:
        got: object = read_tsv(path)
    except BidsError as err:
        got = str(err)
    assert got == expected
    plain = plain_tsv(path)
    if plain is not None:  # pandas' tokenizer (large header groups) gives the same cells
        assert _by_pandas(*plain) == tsv_columns(*plain)


def _by_pandas(header: list[str], rows: list[str]) -> dict[str, list[str]]:
    old = bids_dataset._PANDAS_ROWS
    bids_dataset._PANDAS_ROWS = 0
    try:
        return {c: list(v) for c, v in bids_dataset._tsv_arrays(header, rows).items()}
    finally:
        bids_dataset._PANDAS_ROWS = old


def test_tsv_reading_of_many_rows_by_pandas():
    rows = ["1\ta b\tn/a", "2\t\t#x", "3\t'q'\t1,5", "4\t\\t\tNA", "5\t\x1a\tnan", "6\t  \t-"]
    columns = _by_pandas(["onset", "x", "y"], rows)
    assert columns == tsv_columns(["onset", "x", "y"], rows)
    assert columns["y"] == ["n/a", "#x", "1,5", "NA", "nan", "-"]


def test_file_states_are_remembered_within_one_call_only(tmp_path):
    path = tmp_path / "x.fif"
    path.write_bytes(b"12")
    with remembered_states():
        first = file_state(path)
        path.write_bytes(b"1234")
        assert file_state(str(path)) is first and first.size == 2
    assert file_state(path).size == 4  # outside the block: looked at again


def test_file_columns_same_as_looked_at_afresh(messy):
    """``events()`` computes ``file_present`` / ``file_size`` from the states the discovery
    saw; looking at every file again gives the same columns."""
    events = BidsStudy(path=messy, require_events=False).events()
    again = file_columns(events.drop(columns=["file_present", "file_size"]))
    _assert_same(events, again)
    assert events["file_present"].tolist().count(False) > 3


def test_events_files_without_the_description_column_are_named(messy):
    """A run whose events files lack ``description_column`` gives trial events without a
    description: said once for the study, naming a file and its columns (ds000117's MEG runs
    name conditions in ``stim_type``, its fMRI runs in ``trial_type``)."""
    clin = messy / "sub-04/ieeg/sub-04_task-read_acq-clin_events.tsv"  # columns: onset, word
    with pytest.warns(UserWarning) as record:
        events = BidsStudy(path=messy, require_events=False).events()
    run1 = messy / "sub-01/eeg/sub-01_task-read_run-1_events.tsv"
    assert [str(w.message) for w in record] == [
        f"BidsStudy at {messy}: 3 rows of 2 events files have an n/a onset and make no event "
        f"(BIDS requires a number); e.g. {run1} (1 row): give those rows their onset, or "
        "remove them",
        f"BidsStudy at {messy}: 2 events files have 'value' (code_column) cells that are not "
        f"integers, read as code 0; e.g. {run1} has '1.5': read the column as text with "
        "extra_columns=('value',) and code_column='', or set code_column to a column of integer "
        "codes",
        f"BidsStudy at {messy}: 1 of 8 events files have no 'trial_type' column "
        "(description_column), so their Stimulus events have no description; e.g. "
        f"{clin} has the columns onset, word: set description_column to the one naming the "
        "conditions, or select the runs that have it (datatypes=..., tasks=...)",
    ]
    clin_trials = events[(events["type"] == "Stimulus") & (events["subject"] == "04")]
    assert len(clin_trials) and (clin_trials["description"].fillna("") == "").all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every fMRI events file has the column: no warning
        warnings.filterwarnings("ignore", ".* have an n/a onset and make no event")
        BidsStudy(path=messy, datatypes=("func",)).events()
        BidsStudy(path=messy, require_events=False, trial_event="").events()  # no trial events
