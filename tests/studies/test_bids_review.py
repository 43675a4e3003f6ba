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
