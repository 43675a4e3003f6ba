"""A small BIDS tree with the mess real datasets hold, text files only (no recording is opened).

Used to check that the dataset-wide discovery of :class:`~neuralset.studies.bids.BidsStudy`
gives the same table as the run-by-run reference: macOS ``._*`` files and ``.DS_Store``,
``n/a`` cells and onsets, blank lines, a byte-order mark, CRLF line ends and quoted cells,
padded header names, sidecars inherited from the root and the subject folder, git-annex
pointers of three kinds, a CTF ``.ds`` folder, runs with two events files (MEG + EEG), runs
without events, rows typed by ``neuralset_type``, extra columns that are numbers in one run
and text in another, ``participants.tsv`` and ``scans.tsv`` columns clashing with the events'.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["make_messy", "MESSY_OPTIONS"]

#: BidsStudy options the tree is read with (each gives a different table)
MESSY_OPTIONS: dict[str, dict] = {
    "plain": {"require_events": False},
    "extras": {
        "require_events": False,
        "extra_columns": ("extra_num", "extra_txt", "extra_mixed", "absent"),
    },
    "stimuli": {
        "require_events": False,
        "stimulus_columns": {"word": "Word", "stim_file": "auto", "extra_txt": "Phoneme"},
        "trial_event": "",
    },
    "codes": {
        "require_events": False,
        "description_column": "stim_type",
        "code_column": "trigger",
        "extra_columns": ("extra_mixed",),
    },
    "meg_only": {"datatypes": ("meg",), "subjects": ("02", "emptyroom")},
}

_KEY = "MD5E-s{size}--{digest}{ext}"


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _annex_link(path: Path, size: int, ext: str) -> None:
    """A broken git-annex symbolic link (content not fetched)."""
    key = _KEY.format(size=size, digest=f"{size:032x}", ext=ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(f"../../.git/annex/objects/Xx/Yy/{key}/{key}", path)


def _tsv(rows: list[list[str]], end: str = "\n") -> str:
    return end.join("\t".join(r) for r in rows) + end


def make_messy(root: Path) -> Path:
    """Write the tree under ``root`` (which must not exist) and return ``root``."""
    _write(root / "dataset_description.json", json.dumps({"Name": "messy", "BIDSVersion": "1.9"}))
    _write(root / ".DS_Store", b"\x00\x01")
    _write(
        root / "participants.tsv",
        _tsv(
            [
                ["participant_id", "age", "sex", "duration", "group"],
                ["sub-01", "23", "F", "long", "a"],
                ["sub-02", "n/a", "M", "short", "n/a"],
                ["sub-03", "31.5", "n/a", "n/a", "b"],
                ["sub-05", "40", "F", "long", "b"],
            ]
        ),
    )
    _write(
        root / "task-read_eeg.json",
        json.dumps({"SamplingFrequency": 250.0, "RecordingDuration": 120.0}),
    )
    _write(root / "task-read_meg.json", json.dumps({"SamplingFrequency": 1000.0}))
    _write(root / "task-read_bold.json", json.dumps({"RepetitionTime": 2.0}))
    _sub01(root)
    _sub02(root)
    _sub03(root)
    _sub04(root)
    _sub05(root)
    _write(root / "sub-emptyroom" / "ses-x" / "meg" / "sub-emptyroom_ses-x_task-noise_meg.json",
           json.dumps({"SamplingFrequency": 1000.0, "RecordingDuration": 30.0}))  # fmt: skip
    _annex_link(root / "sub-emptyroom/ses-x/meg/sub-emptyroom_ses-x_task-noise_meg.fif", 77, ".fif")
    return root


def _sub01(root: Path) -> None:
    """EEG, two runs: n/a cells, blank lines, BOM, padded header, a run-level sidecar override."""
    eeg = root / "sub-01" / "eeg"
    for run in (1, 2):
        _write(eeg / f"sub-01_task-read_run-{run}_eeg.vhdr", b"")  # present, empty
    _write(eeg / "._sub-01_task-read_run-1_eeg.vhdr", b"\x00\x05\x16\x07")
    _write(eeg / ".DS_Store", b"\x00")
    _write(eeg / "sub-01_task-read_run-2_eeg.json", json.dumps({"SamplingFrequency": 500.0}))
    header = ["onset", " duration", "trial_type", "value", "word", "stim_file", "extra_num",
              "extra_txt", "extra_mixed", "stim_type", "trigger"]  # fmt: skip
    rows = [
        ["1.0", "0.5", "go", "1", "cat", "n/a", "3", "x", "1", "Famous", "5"],
        ["n/a", "0.5", "go", "2", "dog", "img/a.png", "4", "y", "2", "Famous", "5"],
        ["2.5", "n/a", "n/a", "n/a", "n/a", "img/B.PNG", "n/a", "n/a", "n/a", "Scrambled", "17"],
        ["3.0", "0", "stop", "1.5", "", "snd/c.wav", "5.5", "", "3", "n/a", "n/a"],
    ]
    text = _tsv([header, *rows[:2]]) + "\n" + _tsv(rows[2:])  # a blank line inside
    _write(eeg / "sub-01_task-read_run-1_events.tsv", "\ufeff" + text)
    rows2 = [
        ["10.0", "1", "go", "3", "n/a", "vid/d.mp4", "1e3", "z", "word", "Famous", "13"],
        ["11.0", "1", "go", "x", "", "img/a.png", "-2", "w", "n/a", "Unfamiliar", "x"],
    ]
    _write(eeg / "sub-01_task-read_run-2_events.tsv", _tsv([header, *rows2]).rstrip("\n"))
    _write(
        eeg / "sub-01_task-read_run-1_channels.tsv",
        _tsv([["name", "type", "status"], ["Fz", "EEG", "good"], ["Cz", "EEG", " BAD"]]),
    )
    _write(
        root / "sub-01" / "sub-01_scans.tsv",
        _tsv(
            [
                ["filename", "acq_time", "run", "noise_db"],
                ["eeg/sub-01_task-read_run-1_eeg.vhdr", "2020-01-01T10:00:00", "1", "3.5"],
                ["eeg/sub-01_task-read_run-2_eeg.vhdr", "n/a", "2", "n/a"],
            ]
        ),
    )


def _sub02(root: Path) -> None:
    """MEG + EEG in one run (two events files sharing rows), CRLF and quoted cells, a CTF .ds."""
    ses = root / "sub-02" / "ses-1"
    _write(ses / "sub-02_ses-1_task-read_meg.json", json.dumps({"RecordingDuration": 60.0}))
    _annex_link(ses / "meg" / "sub-02_ses-1_task-read_run-1_meg.fif", 123456, ".fif")
    _annex_link(ses / "meg" / "sub-02_ses-1_task-read_run-1_split-02_meg.fif", 1000, ".fif")
    _write(ses / "eeg" / "sub-02_ses-1_task-read_run-1_eeg.edf", b"0" * 10)
    header = ["onset", "duration", "trial_type", "word"]
    _write(
        ses / "meg" / "sub-02_ses-1_task-read_run-1_events.tsv",
        _tsv([header, ["1.0", "0.1", "go", "cat"], ["2.0", "0.1", "go", "dog"]], end="\r\n"),
    )
    _write(
        ses / "eeg" / "sub-02_ses-1_task-read_run-1_events.tsv",
        _tsv([header, ["2.0", "0.1", "go", "dog"], ["4.0", "0.2", '"quoted\tgo"', "n/a"]]),
    )
    ds = ses / "meg" / "sub-02_ses-1_task-read_run-2_meg.ds"
    _write(ds / "a.meg4", b"1234")
    _write(ds / "b.res4", b"12")
    _write(ses / "meg" / "sub-02_ses-1_task-read_run-2_meg.json",
           json.dumps({"SamplingFrequency": 600.0, "RecordingDuration": 50.0}))  # fmt: skip
    _write(ses / "meg" / "sub-02_ses-1_task-read_run-2_events.tsv", "onset\tduration\n")
    _write(
        ses / "sub-02_ses-1_scans.tsv",
        _tsv([["filename", "acq_time"], ["meg/sub-02_ses-1_task-read_run-1_meg.fif", "x"]]),
    )


def _sub03(root: Path) -> None:
    """fMRI runs as unlocked / pointer-file annex pointers; text in a column numeric elsewhere."""
    func = root / "sub-03" / "func"
    key = _KEY.format(size=5000, digest="ab" * 16, ext=".nii.gz")
    _write(func / "sub-03_task-read_run-1_bold.nii.gz", f"/annex/objects/{key}\n")
    _write(func / "sub-03_task-read_run-2_bold.nii.gz", f"../../.git/annex/objects/Q/R/{key}/{key}")
    _write(func / "sub-03_task-read_run-2_bold.json", json.dumps({"RepetitionTime": 1.5}))
    header = ["onset", "duration", "trial_type", "extra_num", "extra_mixed", "word"]
    rows = {
        1: [["0.5", "1", "rest", "n/a", "abc", "hi"], ["8", "1", "go", "2", "n/a", ""]],
        # no row kept (n/a onsets): its text in extra_num leaves that column numeric
        3: [["n/a", "1", "rest", "text", "abc", "hi"], ["n/a", "1", "go", "2", "n/a", ""]],
        2: [["0.5", "1", "rest", "n/a", "7", "hi"], ["8", "1", "go", "2", "n/a", ""]],
    }
    for run, cells in rows.items():
        _write(func / f"sub-03_task-read_run-{run}_events.tsv", _tsv([header, *cells]))
        if run == 3:
            _write(func / f"sub-03_task-read_run-{run}_bold.nii.gz", f"/annex/objects/{key}\n")
    _write(func / "sub-03_task-read_run-1_echo-2_bold.nii.gz", f"/annex/objects/{key}\n")


def _sub04(root: Path) -> None:
    """A run without events (``require_events=False``), a resting run, NIRS and iEEG."""
    eeg = root / "sub-04" / "eeg"
    _write(eeg / "sub-04_task-read_eeg.edf", b"")
    _write(eeg / "sub-04_task-restingstate_eeg.edf", b"")
    _write(eeg / "sub-04_task-restingstate_eeg.json",
           json.dumps({"SamplingFrequency": 100, "RecordingDuration": 10}))  # fmt: skip
    nirs = root / "sub-04" / "nirs"
    _write(nirs / "sub-04_task-read_nirs.snirf", b"")
    _write(
        nirs / "sub-04_task-read_nirs.json",
        json.dumps({"SamplingFrequency": 7.8, "RecordingDuration": 30}),
    )
    ieeg = root / "sub-04" / "ieeg"
    _write(ieeg / "sub-04_task-read_acq-clin_ieeg.vhdr", b"")
    _write(ieeg / "sub-04_task-read_acq-clin_ieeg.json",
           json.dumps({"SamplingFrequency": 1000, "RecordingDuration": 5}))  # fmt: skip
    _write(ieeg / "sub-04_task-read_acq-clin_events.tsv", _tsv([["onset", "word"], ["1", "x"]]))


def _sub05(root: Path) -> None:
    """Rows typed by ``neuralset_type`` (as ``to_bids`` writes them) next to untyped rows."""
    eeg = root / "sub-05" / "eeg"
    _write(eeg / "sub-05_task-read_eeg.bdf", b"")
    _write(
        eeg / "sub-05_task-read_events.tsv",
        _tsv(
            [
                ["onset", "duration", "neuralset_type", "text", "trial_type", "value", "word"],
                ["1.0", "0.3", "Word", "hello", "n/a", "n/a", "n/a"],
                ["2.0", "0.3", "Word", "n/a", "n/a", "n/a", "n/a"],
                ["3.0", "0", "n/a", "n/a", "go", "4", "cat"],
                ["4.0", "0", "Stimulus", "n/a", "beep", "9", "n/a"],
            ]
        ),
    )
