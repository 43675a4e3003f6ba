"""DataLad / git-annex, for real and offline (issue 9, section 2).

A DataLad dataset is built from synthetic BIDS recordings (``datalad create`` + ``datalad save``),
cloned metadata-only into another folder (``datalad clone``: text files real, recordings as
git-annex pointers), explored, then partly fetched with ``git annex get``. Corruption in the
origin is caught by git-annex's checksum, and a download killed midway (from a web URL served on
127.0.0.1, the way OpenNeuro's datasets point at S3) resumes where it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neuralset.studies.bids import BidsStudy
from neuralset.studies.fetch import FetchError, fetch
from neuralset.studies.fetch.annex import annex_root

from .fetch_data import datalad_clone, md5, write_dataset
from .http_server import serve


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def origin(annex: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import datalad.api as dl

    root = tmp_path_factory.mktemp("annex") / "origin"
    dl.create(path=str(root), cfg_proc="text2git", result_renderer="disabled")
    write_dataset(root)
    dl.save(dataset=str(root), message="synthetic BIDS recordings", result_renderer="disabled")
    return root


def _eeg(root: Path, sub: str, run: str) -> Path:
    return root / f"sub-{sub}/eeg/sub-{sub}_task-listen_run-{run}_eeg.eeg"


def test_clone_explore_then_fetch_part(origin: Path, tmp_path: Path) -> None:
    clone = datalad_clone(origin, tmp_path / "clone")
    assert annex_root(clone) == clone
    events = BidsStudy(path=clone).events()
    recs = events[events["type"].isin(["Eeg", "Meg"])]
    assert len(recs) == 5 and not recs["file_present"].any()
    assert _eeg(clone, "01", "1").is_symlink() and not _eeg(clone, "01", "1").exists()
    assert recs.loc[recs["type"] == "Meg", "duration_source"].tolist() == ["unknown"]
    assert recs.loc[recs["type"] == "Eeg", "duration_source"].eq("sidecar").all()
    selection = events[(events["subject"] == "01") & (events["type"].isin(["Meg", "Eeg"]))]
    selection = selection[(selection["type"] == "Meg") | (selection["run"] == "1")]
    report = fetch(selection, root=clone, progress=False)
    assert report.source == "annex" and report.fetched == 2
    assert md5(_eeg(clone, "01", "1")) == md5(_eeg(origin, "01", "1"))
    meg = clone / "sub-01/meg/sub-01_task-listen_run-1_meg.fif"
    assert meg.exists() and md5(meg) == md5(origin / meg.relative_to(clone))
    for sub, run in (("01", "2"), ("02", "1"), ("02", "2")):
        assert not _eeg(clone, sub, run).exists()
    assert report.bytes_fetched == _eeg(clone, "01", "1").stat().st_size + meg.stat().st_size
    again = BidsStudy(path=clone).events()  # the fetched MEG file now gives its duration
    meg_event = again[again["type"] == "Meg"].iloc[0]
    assert meg_event["duration_source"] == "header" and meg_event["duration"] == 60.0
    assert again.loc[again["type"] == "Eeg", "file_present"].tolist() == [True, False, False, False]
    assert fetch(selection, root=clone, progress=False).fetched == 0  # idempotent
    whereis = _git(clone, "annex", "whereis", "--json", str(meg.relative_to(clone)))
    assert '"here":true' in whereis.replace(" ", "")  # git-annex knows the content is here


def test_prepare_after_fetch_equals_mne(origin: Path, tmp_path: Path) -> None:
    import mne
    import numpy as np

    from neuralset.extractors import EegExtractor
    from neuralset.segments import segment_on_triggers
    from neuralset.store import Store
    from neuralset.studies.fetch import MissingFilesError

    clone = datalad_clone(origin, tmp_path / "clone")
    study = BidsStudy(path=clone, subjects=("02",), datatypes=("eeg",))
    events = study.events()
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=250.0)
    with pytest.raises(MissingFilesError, match=r"`datalad get` / `git annex get` in "):
        extractor.prepare(events, store)
    study.fetch(events, progress=False)
    events = study.events()
    segments = segment_on_triggers(events, "Stimulus", offset=0.0, duration=0.4).require("Eeg")
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    vhdr = clone / events.loc[events["type"] == "Eeg", "filepath"].iloc[0]
    raw = mne.io.read_raw(vhdr, preload=True, verbose="error")
    evs, _ = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(raw, evs, tmin=0, tmax=0.4 - 1 / 250, baseline=None, verbose="error")
    first = segments.timeline == segments.timeline[0]
    np.testing.assert_allclose(got[first], epochs.get_data(), rtol=1e-5, atol=1e-12)


def test_corrupted_content_caught_by_git_annex(origin: Path, tmp_path: Path) -> None:
    import datalad.api as dl

    source = datalad_clone(origin, tmp_path / "source")  # a copy we can damage
    dl.get(path=str(_eeg(source, "02", "2")), dataset=str(source), result_renderer="disabled")
    obj = Path(os.path.realpath(_eeg(source, "02", "2")))
    obj.parent.chmod(0o755)
    obj.chmod(0o644)
    stat = obj.stat()
    with open(obj, "r+b") as fh:  # flip one byte in place: same inode, size and mtime, so
        fh.seek(1000)  # only the checksum can tell
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(obj, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    clone = datalad_clone(source, tmp_path / "clone")
    events = BidsStudy(path=clone, subjects=("02",)).events()
    selection = events[(events["type"] == "Eeg") & (events["run"] == "2")]
    # DataLad also enabled the first origin as "origin-2"; without it the damaged copy is the
    # only one
    assert "origin-2" in _git(clone, "remote").split()
    _git(clone, "remote", "remove", "origin-2")
    with pytest.raises(FetchError) as err:
        fetch(selection, root=clone, progress=False)
    message = str(err.value)
    assert message.startswith("1 of 1 files could not be fetched from annex:\n")
    assert "sub-02_task-listen_run-2_eeg.eeg: " in message
    assert "verification of content failed" in message
    assert not _eeg(clone, "02", "2").exists()  # nothing half-written where it is read
    _git(clone, "remote", "add", "good", str(origin))  # a good copy: the next fetch succeeds
    fetch(selection, root=clone, progress=False)
    assert md5(_eeg(clone, "02", "2")) == md5(_eeg(origin, "02", "2"))


def test_killed_download_resumes(origin: Path, tmp_path: Path) -> None:
    """A transfer from a web URL, killed midway, leaves nothing visible and resumes later."""
    clone = datalad_clone(origin, tmp_path / "clone")
    rel = "sub-02/eeg/sub-02_task-listen_run-1_eeg.eeg"
    key = os.path.basename(os.readlink(clone / rel))
    _git(clone, "config", "annex.security.allowed-ip-addresses", "127.0.0.1")
    _git(clone, "remote", "remove", "origin")  # only the web remote is left
    with serve(origin, delay=0.05) as server:  # ~1.3 MB/s
        _git(clone, "annex", "registerurl", key, f"{server.url}/{rel}")
        script = textwrap.dedent(
            f"""
            import pandas as pd
            from neuralset.studies.bids import BidsStudy
            study = BidsStudy(path={str(clone)!r}, subjects=("02",))
            ev = study.events()
            study.fetch(ev[(ev["type"] == "Eeg") & (ev["run"] == "1")], progress=False)
            """
        )
        proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
        tmp = clone / ".git/annex/tmp" / key
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp.exists() and tmp.stat().st_size > 100_000):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the python driver and its git-annex child
        proc.wait()
        partial = tmp.stat().st_size
        assert 100_000 <= partial < (origin / rel).stat().st_size
        assert not (clone / rel).exists()  # the link still points at nothing
        events = BidsStudy(path=clone, subjects=("02",)).events()
        fetch(
            events[(events["type"] == "Eeg") & (events["run"] == "1")], root=clone, progress=False
        )
        ranges = server.ranges(rel)
    assert ranges[0] is None and ranges[-1] is not None
    resumed_from = int(ranges[-1].split("=")[1].rstrip("-"))
    assert 100_000 <= resumed_from <= partial  # git-annex resumed, it did not start again
    assert md5(clone / rel) == md5(origin / rel)


def test_git_annex_missing_is_a_clear_error(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = datalad_clone(origin, tmp_path / "clone")
    events = BidsStudy(path=clone, subjects=("01",)).events()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(
        subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(FetchError) as err:
        fetch(events, root=clone, progress=False)
    assert str(err.value).startswith(
        f"cannot fetch 4 files of the git-annex dataset {clone}: git-annex is not installed; "
        "install git-annex (Debian/Ubuntu: apt-get install git-annex"
    )
