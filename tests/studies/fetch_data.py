"""Small BIDS datasets with real recordings for the fetch tests, and annex-style pointer trees.

* :func:`write_dataset`: 2 subjects x 2 EEG runs in BrainVision (mne-bids; the ``.eeg`` holds
  ~1 MB of float32), one MEG FIF run whose sidecar gives no ``RecordingDuration``, and a
  ``stimuli/tone.wav`` referenced by the events files.
* :func:`pointer_tree`: a copy of a dataset where every binary file is replaced by a git-annex
  pointer with its real ``MD5E`` key (a symlink into ``.git/annex/objects`` or the same target
  as file content), as ``git clone`` of a DataLad dataset leaves it, without git-annex.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pandas as pd

SFREQ = 250.0
N_TIMES = 15000  # 60 s
N_CH = 16
TEXT = (".json", ".tsv", ".vhdr", ".vmrk", ".txt", ".md")


def _raw(kind: str, seed: int):  # noqa: ANN202
    import mne

    rng = np.random.default_rng(seed)
    if kind == "meg":
        info = mne.create_info([f"MEG{i:03d}" for i in range(N_CH)], SFREQ, "mag")
        scale = 1e-12
    else:
        info = mne.create_info([f"E{i:02d}" for i in range(N_CH)], SFREQ, "eeg")
        scale = 1e-5
    raw = mne.io.RawArray(rng.normal(size=(N_CH, N_TIMES)) * scale, info, verbose="error")
    raw.info["line_freq"] = 50.0
    onsets = np.arange(2.0, 58.0, 4.0)
    raw.set_annotations(mne.Annotations(onsets, 0.5, ["tone"] * len(onsets)))
    return raw


def write_dataset(root: Path) -> Path:
    """The dataset (see the module docstring) at ``root``; returns ``root``."""
    from mne_bids import BIDSPath, write_raw_bids

    for s, sub in enumerate(("01", "02")):
        for run in ("1", "2"):
            bp = BIDSPath(subject=sub, task="listen", run=run, datatype="eeg", root=root)
            raw = _raw("eeg", seed=10 * s + int(run))
            write_raw_bids(raw, bp, format="BrainVision", allow_preload=True, verbose="error")
            _add_stim_file(bp.copy().update(suffix="events", extension=".tsv").fpath)
    bp = BIDSPath(subject="01", task="listen", run="1", datatype="meg", root=root)
    write_raw_bids(_raw("meg", 99), bp, format="FIF", allow_preload=True, verbose="error")
    _add_stim_file(bp.copy().update(suffix="events", extension=".tsv").fpath)
    sidecar = bp.copy().update(suffix="meg", extension=".json").fpath
    meta = json.loads(sidecar.read_text())
    meta.pop("RecordingDuration")  # its duration must come from the file
    sidecar.write_text(json.dumps(meta, indent=1))
    stimuli = root / "stimuli"
    stimuli.mkdir(exist_ok=True)
    with wave.open(str(stimuli / "tone.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        t = np.arange(8000) / 16000
        out.writeframes((np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2").tobytes())
    return root


def _add_stim_file(events_tsv: Path) -> None:
    table = pd.read_csv(events_tsv, sep="\t")
    table["stim_file"] = "tone.wav"
    table.to_csv(events_tsv, sep="\t", index=False)


def annex_key(path: Path) -> str:
    """The ``MD5E`` git-annex key of a file, as git-annex computes it."""
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    ext = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    return f"MD5E-s{path.stat().st_size}--{digest}{ext}"


def pointer_tree(src: Path, dst: Path, *, kind: str = "symlink") -> list[Path]:
    """Copy ``src`` to ``dst`` with binary files as annex pointers; the relative pointer paths."""
    pointers = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if ".git" in rel.parts or ".datalad" in rel.parts or path.is_dir():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(TEXT):
            shutil.copyfile(path, target)
            continue
        key = annex_key(path)
        hashdirs = hashlib.md5(key.encode()).hexdigest()
        up = "../" * (len(rel.parts) - 1)
        link = f"{up}.git/annex/objects/{hashdirs[:2]}/{hashdirs[2:4]}/{key}/{key}"
        if kind == "symlink":
            target.symlink_to(link)
        else:
            target.write_text(link)
        pointers.append(rel)
    return pointers


def md5(path: Path) -> str:
    """MD5 hex digest of a file's bytes."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def datalad_clone(origin: Path, dest: Path) -> Path:
    """``datalad clone`` of ``origin`` into ``dest`` (metadata only, annexed files not fetched)."""
    import datalad.api as dl

    dl.clone(source=str(origin), path=str(dest), result_renderer="disabled")
    return dest
