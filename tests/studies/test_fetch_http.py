"""The plain HTTP(S) fetch backend against a local server on 127.0.0.1 (issue 9, section 2).

The local tree is what ``git clone`` of a DataLad dataset gives without git-annex: text files
real, each binary a git-annex pointer with its real MD5E key. The server holds the real files.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from neuralset.studies.bids import BidsStudy
from neuralset.studies.fetch import FetchError, MissingFilesError, fetch, needed_files
from neuralset.studies.fetch.http import PARTIAL_DIR, http_get

from .fetch_data import md5, pointer_tree, write_dataset
from .http_server import serve


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("http") / "origin")


def _local(origin: Path, tmp_path: Path, kind: str = "pointer-file") -> Path:
    local = tmp_path / "local"
    pointer_tree(origin, local, kind=kind)
    return local


def _eeg_file(root: Path, sub: str, run: str) -> Path:
    return root / f"sub-{sub}/eeg/sub-{sub}_task-listen_run-{run}_eeg.eeg"


def test_explore_then_fetch_one_run(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path)
    study = BidsStudy(path=local)
    events = study.events()
    recs = events[events["type"].isin(["Eeg", "Meg"])]
    assert len(recs) == 5 and not recs["file_present"].any()

    # .vhdr files are text (present), the .eeg data is annexed: a recording counts with its
    # companions (.eeg, .vmrk), so it is not present and its size is theirs together
    def size(rel: str) -> float:
        path = origin / rel
        files = [path] + [path.with_suffix(e) for e in (".eeg", ".vmrk")] * rel.endswith(".vhdr")
        return float(sum(f.stat().st_size for f in files))

    assert recs["file_size"].tolist() == [size(p) for p in recs["filepath"]]
    meg = recs[recs["type"] == "Meg"]
    assert meg["duration_source"].tolist() == ["unknown"]
    selection = events[(events["subject"] == "01") & (events["run"] == "1")]
    selection = selection[selection["type"] == "Eeg"]
    with serve(origin) as server:
        report = fetch(selection, root=local, source=server.url, progress=False)
    eeg = _eeg_file(local, "01", "1")
    assert md5(eeg) == md5(_eeg_file(origin, "01", "1"))
    assert report.fetched == 1 and report.bytes_fetched == eeg.stat().st_size
    assert not _eeg_file(local, "01", "2").read_bytes().startswith(b"RIFF")  # still a pointer
    assert sorted(p for p, _ in server.log) == ["sub-01/eeg/sub-01_task-listen_run-1_eeg.eeg"]
    again = BidsStudy(path=local).events()
    present = again[again["type"] == "Eeg"].set_index("filepath")["file_present"]
    assert present.to_dict() == {
        "sub-01/eeg/sub-01_task-listen_run-1_eeg.vhdr": True,
        "sub-01/eeg/sub-01_task-listen_run-2_eeg.vhdr": False,
        "sub-02/eeg/sub-02_task-listen_run-1_eeg.vhdr": False,
        "sub-02/eeg/sub-02_task-listen_run-2_eeg.vhdr": False,
    }
    with serve(origin) as server:  # idempotent: nothing requested a second time
        assert fetch(selection, root=local, source=server.url, progress=False).fetched == 0
        assert server.log == []
    assert not (local / PARTIAL_DIR).exists() or not list((local / PARTIAL_DIR).iterdir())


def test_fetched_file_reads_like_the_original(origin: Path, tmp_path: Path) -> None:
    import mne

    local = _local(origin, tmp_path)
    study = BidsStudy(path=local, subjects=("01",), datatypes=("meg",))
    with serve(origin) as server:
        study.fetch(source=server.url, progress=False)
    events = BidsStudy(path=local, subjects=("01",), datatypes=("meg",)).events()
    meg = events[events["type"] == "Meg"].iloc[0]
    raw = mne.io.read_raw(local / meg["filepath"], verbose="error")
    assert meg["duration_source"] == "header"  # fetched: the header gave the duration
    assert meg["duration"] == raw.n_times / raw.info["sfreq"] == 60.0
    ref = mne.io.read_raw(origin / meg["filepath"], verbose="error")
    np.testing.assert_array_equal(raw.get_data(), ref.get_data())
    stimuli = events[events["type"] == "Audio"]
    assert set(stimuli["filepath"]) == {"stimuli/tone.wav"} and stimuli["file_present"].all()


def test_symlink_pointers_resolve_after_fetch(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path, kind="symlink")
    eeg = _eeg_file(local, "02", "2")
    assert eeg.is_symlink() and not eeg.exists()
    selection = BidsStudy(path=local, subjects=("02",)).events()
    selection = selection[(selection["run"] == "2") & (selection["type"] == "Eeg")]
    with serve(origin) as server:
        fetch(selection, root=local, source=server.url, progress=False)
    assert eeg.is_symlink() and eeg.exists()  # the content went into the annex object
    assert Path(os.path.realpath(eeg)).parent.parent.parent.parent.name == "objects"
    assert md5(eeg) == md5(_eeg_file(origin, "02", "2"))


def test_interrupted_download_resumes(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path)
    events = BidsStudy(path=local, subjects=("02",)).events()
    selection = events[(events["type"] == "Eeg") & (events["run"] == "1")]
    eeg = _eeg_file(local, "02", "1")
    name = eeg.name
    with serve(origin, cut_after=300_000) as server:
        with pytest.raises(FetchError) as err:
            fetch(selection, root=local, source=server.url, progress=False)
        assert "interrupted or impossible" in str(err.value)
        assert "the next fetch resumes it" in str(err.value)
        assert not eeg.read_bytes()[:4] == _eeg_file(origin, "02", "1").read_bytes()[:4]
        partial = list((local / PARTIAL_DIR).iterdir())
        assert len(partial) == 1 and partial[0].stat().st_size == 300_000
        fetch(selection, root=local, source=server.url, progress=False)
        assert server.ranges(name) == [None, "bytes=300000-"]
    assert md5(eeg) == md5(_eeg_file(origin, "02", "1"))
    assert list((local / PARTIAL_DIR).iterdir()) == []


def test_server_ignoring_range_restarts_cleanly(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path)
    events = BidsStudy(path=local, subjects=("01",)).events()
    selection = events[(events["type"] == "Eeg") & (events["run"] == "2")]
    with serve(origin, cut_after=100_000, ignore_range=True) as server:
        with pytest.raises(FetchError):
            fetch(selection, root=local, source=server.url, progress=False)
        fetch(selection, root=local, source=server.url, progress=False)
    assert md5(_eeg_file(local, "01", "2")) == md5(_eeg_file(origin, "01", "2"))


def test_corrupted_download_detected_by_checksum(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path)
    events = BidsStudy(path=local, subjects=("01",)).events()
    selection = events[(events["type"] == "Eeg") & (events["run"] == "1")]
    eeg = _eeg_file(local, "01", "1")
    pointer = eeg.read_text()
    rel = "sub-01/eeg/sub-01_task-listen_run-1_eeg.eeg"
    with serve(origin, corrupt={rel}) as server:
        with pytest.raises(FetchError) as err:
            fetch(selection, root=local, source=server.url, progress=False)
    key = pointer.rsplit("/", 1)[-1]
    message = str(err.value)
    assert f"corrupted download of {server.url}/{rel}: md5 " in message
    assert f"does not match the git-annex key {key}; the file was discarded" in message
    assert eeg.read_text() == pointer  # nothing half-written where the file is read
    assert list((local / PARTIAL_DIR).iterdir()) == []


def test_progress_counts_bytes_and_parallel_jobs(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path)
    files = [f for f in needed_files(BidsStudy(path=local).events()) if not f.present]
    expected = sum(f.state.size or 0 for f in files)
    counted: list[int] = []
    with serve(origin) as server:
        failures = http_get(local, server.url, files, on_bytes=counted.append, jobs=3)
    assert failures == {}
    assert (
        sum(counted)
        == expected
        == sum((origin / f.path.relative_to(local)).stat().st_size for f in files)
    )


def test_offline_and_sourceless_errors(origin: Path, tmp_path: Path) -> None:
    local = _local(origin, tmp_path)
    events = BidsStudy(path=local, subjects=("01",)).events()
    selection = events[(events["type"] == "Eeg") & (events["run"] == "1")]
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match=r"Connection refused"):
        fetch(selection, root=local, source=f"http://127.0.0.1:{port}", progress=False)
    with pytest.raises(FetchError) as err:
        fetch(selection, root=local, progress=False)
    assert "these are git-annex pointers but the folder is not a git-annex repository" in str(
        err.value
    )


def test_missing_files_error_before_prepare(origin: Path, tmp_path: Path) -> None:
    from neuralset.extractors import EegExtractor
    from neuralset.store import Store

    local = _local(origin, tmp_path)
    events = BidsStudy(path=local, datatypes=("eeg",)).events()
    with pytest.raises(MissingFilesError) as err:
        EegExtractor(frequency=100.0).prepare(events, Store(tmp_path / "store"))
    # the .vhdr is present but its .eeg companion is not: the companions count
    assert str(err.value).startswith("EegExtractor: 4 files are not on disk yet (")
    assert "sub-01_task-listen_run-1_eeg.eeg" in str(err.value)


def test_cli_fetch_and_inspect(origin: Path, tmp_path: Path) -> None:
    from neuralset.cli import main

    local = _local(origin, tmp_path)
    lines: list[str] = []
    with serve(origin) as server:
        config = tmp_path / "pipeline.yaml"
        config.write_text(
            f"study: {{kind: bids, path: {local}, datatypes: [eeg], subjects: ['02'], "
            f"source: '{server.url}'}}\nstore: {tmp_path / 'store'}\n"
        )
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["fetch", str(config), "--dry-run"]) == 0
            assert main(["inspect", str(config)]) == 0
            assert server.log == []
            assert main(["fetch", str(config), "--no-progress"]) == 0
            assert main(["inspect", str(config)]) == 0
        lines = out.getvalue().splitlines()
    size = sum(_eeg_file(origin, "02", r).stat().st_size for r in "12")
    size += (origin / "stimuli/tone.wav").stat().st_size
    from neuralset.studies.fetch import format_bytes

    files = [line for line in lines if line.startswith("files: ")]
    assert files[0] == (
        f"files: 2 recordings, 0 present, {format_bytes(size)} to fetch for this selection "
        "(3 of 15 files missing; `neuralset fetch CONFIG` gets them)"
    )
    assert files[1] == files[0]  # inspect says the same, and fetched nothing
    assert any(line.startswith("15 files needed: 12 already present, 3 fetched") for line in lines)
    assert files[-1] == (
        "files: 2 recordings, 2 present, 0 B to fetch for this selection (0 of 15 files missing)"
    )


def test_copy_of_real_openneuro_pointers_is_explorable(tmp_path: Path) -> None:
    """The shared ds000117 copy holds flattened pointers: fetch says what is missing and why."""
    src = Path("/work/shared/data/openneuro/ds000117")
    if not src.is_dir():
        pytest.skip("no real metadata here")
    root = tmp_path / "ds000117"
    root.mkdir()
    for name in ("dataset_description.json", "participants.tsv"):
        shutil.copy(src / name, root / name)
    shutil.copytree(src / "sub-01" / "ses-meg", root / "sub-01" / "ses-meg")
    study = BidsStudy(path=root, description_column="stim_type", code_column="trigger")
    events = study.events()
    with pytest.raises(FetchError) as err:
        study.fetch(events[events["type"] == "Meg"], progress=False)
    # the 6 runs and the head shape (.pos, annexed too)
    assert str(err.value).startswith("no source to fetch 7 missing files from (")


def test_segments_select_what_they_overlap(origin: Path, tmp_path: Path) -> None:
    from neuralset.segments import segment_on_triggers

    local = _local(origin, tmp_path)
    events = BidsStudy(path=local, datatypes=("eeg",)).events()
    segments = segment_on_triggers(events, "Stimulus", offset=0.0, duration=0.5).require("Eeg")
    first = segments.select(segments.timeline == segments.timeline[0])  # sub-01 run-1 only
    assert len(first) == 14
    with serve(origin) as server:
        report = fetch(first, root=local, source=server.url, progress=False)
    fetched = sorted(p for p, _ in server.log)
    assert fetched == ["stimuli/tone.wav", "sub-01/eeg/sub-01_task-listen_run-1_eeg.eeg"]
    assert report.fetched == 2
