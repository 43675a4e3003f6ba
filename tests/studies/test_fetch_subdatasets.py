"""DataLad superdatasets whose subdatasets are not installed, for real (issue 9).

A superdataset is built with ``datalad create`` + one subdataset per subject and one for the
stimuli, holding synthetic BIDS recordings; ``datalad clone`` of it leaves every subdataset not
installed (empty folders). Discovery refuses it with the exact fix, or explores the installed
ones, or installs them (metadata only); ``Study.fetch`` installs the subdatasets its files need
(the stimuli) and runs ``git annex get`` in each.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from neuralset.studies.bids import BidsError, BidsStudy
from neuralset.studies.fetch import FetchError
from neuralset.studies.fetch.subdatasets import subdatasets

from .fetch_data import datalad_clone, md5, write_dataset

SUBS = ("sub-01", "sub-02", "stimuli")


@pytest.fixture(scope="module")
def origin(annex: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import datalad.api as dl

    root = tmp_path_factory.mktemp("super") / "origin"
    dl.create(path=str(root), cfg_proc="text2git", result_renderer="disabled")
    for name in SUBS:
        dl.create(
            path=str(root / name), dataset=str(root), cfg_proc="text2git",
            result_renderer="disabled",
        )  # fmt: skip
    write_dataset(root)
    dl.save(dataset=str(root), recursive=True, message="recordings", result_renderer="disabled")
    return root


def _drop_files(events: pd.DataFrame) -> pd.DataFrame:
    return events.drop(columns=["file_present", "file_size", "study_root"])


def test_uninstalled_subdatasets_are_named_with_the_fix(origin: Path, tmp_path: Path) -> None:
    clone = datalad_clone(origin, tmp_path / "clone")
    assert [(s.path.name, s.installed) for s in subdatasets(clone)] == [
        ("stimuli", False),
        ("sub-01", False),
        ("sub-02", False),
    ]
    assert list((clone / "sub-01").iterdir()) == []
    with pytest.raises(BidsError) as err:
        BidsStudy(path=clone).events()
    assert str(err.value) == (
        f"2 DataLad subdatasets of {clone} that this study reads are not installed (empty "
        f"folders): sub-01 sub-02. Install them (metadata only, no recording is downloaded) with "
        f"`datalad get -n -d {clone} sub-01 sub-02` (Python: datalad.api.get(path=[...], "
        f"dataset={str(clone)!r}, get_data=False)), or pass subdatasets='install' to install "
        "them, or subdatasets='installed' to explore only the installed ones"
    )
    with pytest.raises(BidsError, match=r"^1 DataLad subdatasets .*: sub-02\. Install"):
        BidsStudy(path=clone, subjects=("02",)).preview_events()  # only what the study reads


def test_explore_installed_only_then_install(origin: Path, tmp_path: Path) -> None:
    import datalad.api as dl

    from neuralset.store import Store

    clone = datalad_clone(origin, tmp_path / "clone")
    dl.get(path=str(clone / "sub-02"), dataset=str(clone), get_data=False,
           result_renderer="disabled")  # fmt: skip
    store = Store(tmp_path / "store")
    ref = BidsStudy(path=origin, datatypes=("eeg",), subjects=("02",)).events()
    partial = BidsStudy(path=clone, subdatasets="installed", datatypes=("eeg",))
    events = partial.events(store)
    key_before = partial.events_key
    assert set(events["subject"]) == {"02"}
    pd.testing.assert_frame_equal(_drop_files(events), _drop_files(ref))
    assert not events.loc[events["type"] == "Eeg", "file_present"].any()
    # installing everything (metadata only): every subject, and a new cache entry (not stale)
    full = BidsStudy(path=clone, subdatasets="install")
    events = full.events(store)
    assert [s.installed for s in subdatasets(clone)] == [False, True, True]  # stimuli: not read
    ref_all = BidsStudy(path=origin).events()
    meg = (events["type"] == "Meg").to_numpy()  # its sidecar has no RecordingDuration
    assert events.loc[meg, "duration_source"].tolist() == ["unknown"]
    pd.testing.assert_frame_equal(_drop_files(events[~meg]), _drop_files(ref_all[~meg]))
    again = BidsStudy(path=clone, subdatasets="installed", datatypes=("eeg",))
    assert again.key == partial.key and again.events_key != key_before
    assert again.events(store)["subject"].nunique() == 2  # the installed set is in the key
    recs = events[events["type"].isin(["Eeg", "Meg"])]
    assert not recs["file_present"].any()
    assert recs["file_size"].tolist() == ref_all.loc[recs.index, "file_size"].tolist()


def test_fetch_installs_needed_subdatasets_then_reads_back(origin: Path, tmp_path: Path) -> None:
    import mne
    import numpy as np

    clone = datalad_clone(origin, tmp_path / "clone")
    study = BidsStudy(path=clone, subdatasets="install")
    events = study.events()
    audio = events[events["type"] == "Audio"]
    assert audio["filepath"].eq("stimuli/tone.wav").all() and audio["file_size"].isna().all()
    assert not (clone / "stimuli/.git").exists()  # discovery does not read the stimuli
    selection = events[(events["subject"] == "02") & (events["run"] == "1")]
    selection = selection[selection["type"].isin(["Eeg", "Audio"])]
    report = study.fetch(selection, progress=False)
    assert report.source == "annex" and report.fetched == 2  # the .eeg and the stimulus
    assert [(s.path.name, s.installed) for s in subdatasets(clone)] == [
        ("stimuli", True),  # installed by the fetch, for tone.wav
        ("sub-01", True),
        ("sub-02", True),
    ]
    vhdr = "sub-02/eeg/sub-02_task-listen_run-1_eeg.vhdr"
    for rel in (vhdr.replace(".vhdr", ".eeg"), "stimuli/tone.wav"):
        assert md5(clone / rel) == md5(origin / rel)
    assert not (clone / "sub-01/eeg/sub-01_task-listen_run-1_eeg.eeg").exists()
    got = mne.io.read_raw(clone / vhdr, preload=True, verbose="error").get_data()
    ref = mne.io.read_raw(origin / vhdr, preload=True, verbose="error").get_data()
    np.testing.assert_array_equal(got, ref)
    after = BidsStudy(path=clone).events()
    assert after.loc[after["filepath"] == "stimuli/tone.wav", "file_present"].all()
    assert study.fetch(selection, progress=False).fetched == 0  # idempotent


def test_without_datalad_git_submodule_installs(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from neuralset.studies.fetch import fetch

    clone = datalad_clone(origin, tmp_path / "clone")
    monkeypatch.setitem(sys.modules, "datalad.api", None)  # `import datalad.api` fails
    with pytest.raises(FetchError) as err:
        BidsStudy(path=clone, subdatasets="install", subjects=("01",)).events()
    assert "fatal: transport 'file' not allowed" in str(err.value)
    assert str(err.value).endswith(
        "git refuses submodules from local paths by default: allow them with "
        "`git config --global protocol.file.allow always`, or install DataLad"
    )
    for name, value in (("COUNT", "1"), ("KEY_0", "protocol.file.allow"), ("VALUE_0", "always")):
        monkeypatch.setenv(f"GIT_CONFIG_{name}", value)  # what that `git config` does
    events = BidsStudy(path=clone, subdatasets="install", subjects=("01",)).events()
    assert [(s.path.name, s.installed) for s in subdatasets(clone)] == [
        ("stimuli", False),
        ("sub-01", True),
        ("sub-02", False),
    ]
    meg = events[events["type"] == "Meg"]
    fetch(meg, root=clone, progress=False)  # git annex get in the submodule, from its origin
    rel = "sub-01/meg/sub-01_task-listen_run-1_meg.fif"
    assert md5(clone / rel) == md5(origin / rel)
