"""Entity tables: keyed by subject/session, joined lazily to event rows, identified by their files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.entities import EntityError, EntityTable, link_values


@pytest.fixture
def table(tmp_path: Path) -> EntityTable:
    for rel in ("sub-01/anat/sub-01_trans.fif", "sub-02/ses-2/anat/sub-02_ses-2_trans.fif"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"transform " + rel.encode())
    frame = pd.DataFrame(
        {
            "subject": ["01", "02"],
            "session": ["", "2"],
            "trans": ["sub-01/anat/sub-01_trans.fif", "sub-02/ses-2/anat/sub-02_ses-2_trans.fif"],
            "age": [31, 45],
        }
    )
    return EntityTable("anatomy", frame, files=("trans",), root=str(tmp_path))


@pytest.fixture
def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "type": ["Meg", "Meg", "Word", "Meg", "Meg"],
            "subject": ["01", "01", "01", "02", "03"],
            "session": ["1", "2", "1", "2", "1"],
        }
    )


def test_join_only_the_rows_asked_with_session_fallback(table, events):
    joined = table.join(events, [0, 1, 3, 4], ["trans", "age"])
    assert joined.index.tolist() == [0, 1, 3, 4]
    assert joined["trans"].tolist() == [
        "sub-01/anat/sub-01_trans.fif",  # subject-level row serves every session
        "sub-01/anat/sub-01_trans.fif",
        "sub-02/ses-2/anat/sub-02_ses-2_trans.fif",
        "",  # subject 03 has no anatomy
    ]
    assert joined["age"].iloc[:3].tolist() == [31, 31, 45] and np.isnan(joined["age"].iloc[3])
    # the events table itself is untouched: no anatomy column was added
    assert list(events.columns) == ["type", "subject", "session"]


def test_session_row_is_not_used_for_another_session(table):
    other = pd.DataFrame({"subject": ["02"], "session": ["1"]})
    assert table.join(other, columns=["trans"])["trans"].tolist() == [""]
    assert table.row_of(("02", "1")) == -1 and table.row_of(("02", "2")) == 1


def test_identity_follows_the_file(table, tmp_path):
    first = table.identity(("01", "1"), ["trans"])
    assert first[0] == "anatomy"
    column, (rel, size, _mtime) = first[1]
    assert (column, rel) == ("trans", "sub-01/anat/sub-01_trans.fif")
    assert size == len(b"transform sub-01/anat/sub-01_trans.fif")
    assert table.identity(("01", "2"), ["trans"]) == first  # same file for both sessions
    path = tmp_path / "sub-01/anat/sub-01_trans.fif"
    os.utime(path, ns=(1, 1))
    assert table.identity(("01", "1"), ["trans"]) != first
    hashed = table.identity(("01", "1"), ["trans"], content_hash=True)
    os.utime(path, ns=(2, 2))
    assert table.identity(("01", "1"), ["trans"], content_hash=True) == hashed
    assert table.identity(("03", "1"), ["trans"]) == ("anatomy", ("trans", None))


def test_coverage_names_the_keys_lacking_a_file(table, events):
    report = table.coverage(events, [0, 1, 3, 4], ["trans"])
    assert report.linked == (("01", "1"), ("01", "2"), ("02", "2"))
    assert report.lacking == {("03", "1"): ("trans",)}
    assert report.describe() == (
        "entity anatomy (by subject, session; uses trans): 3 linked, 1 lacking: "
        "subject='03' session='1' lacks trans"
    )


def test_describe(table):
    assert table.describe() == "anatomy: 2 rows keyed by subject, session; files: trans (2)"


def test_errors_name_the_fix(tmp_path):
    frame = pd.DataFrame({"subject": ["01", "01"], "session": ["", ""], "trans": ["a", "b"]})
    with pytest.raises(EntityError) as err:
        EntityTable("anatomy", frame, files=("trans",))
    assert str(err.value) == (
        "EntityTable 'anatomy': two rows share the link key subject='01'; keep one row per key"
    )
    with pytest.raises(EntityError) as err:
        EntityTable("anatomy", frame.drop(columns="session"), files=("trans",))
    assert str(err.value) == (
        "EntityTable 'anatomy': frame has no column 'session' (its columns: subject, trans)"
    )
    with pytest.raises(EntityError) as err:
        link_values(pd.DataFrame({"type": ["Meg"]}), [0], ("subject", "session"))
    assert str(err.value) == (
        "the events table has no 'subject' or 'session' column to link entities by; add the "
        "column to the study's events (BIDS studies and the synthetic study carry 'subject')"
    )


def test_missing_link_values_read_as_empty():
    events = pd.DataFrame({"subject": ["01", None, np.nan]})
    assert link_values(events, [0, 1, 2], ("subject", "session")) == [
        ("01", ""),
        ("", ""),
        ("", ""),
    ]
