"""BIDS discovery (events from metadata only): real OpenNeuro trees and synthetic large trees.

Three measurements, each with baselines timed in the same run (medians of ``--repeats`` runs on
a fresh study each time, so nothing is cached):

* ``real``: ``BidsStudy(...).events()`` on the three real OpenNeuro metadata trees of
  ``../shared/data/openneuro`` (recordings not fetched: git-annex pointers);
* ``scaled``: a synthetic tree of ``--subjects`` x ``--runs`` MEG runs built from the real
  ds000117 text files (its MEG sidecar, ``channels.tsv``, a real ``events.tsv`` of ~150 rows,
  ``scans.tsv``, ``participants.tsv``), each recording a git-annex pointer file; target < 5 s
  for 1,000 subjects x 4 runs;
* ``eeg``: the earlier benchmark, 100 subjects x 4 EEG runs with 100-row events files (target
  < 2 s).

Baselines: ``mne_bids.find_matching_paths`` (discovery of the recording paths only, no events),
``read_floor``: only reading and parsing every text file the discovery reads (csv / json), with
no logic: the cost of the I/O itself; and ``run_by_run``: the same table built one run after the
other (:meth:`BidsStudy.run_by_run_events`, the reference the dataset-wide build of
:meth:`BidsStudy.all_timeline_events` matches), against ``table_s`` (that build alone, without
validation and file columns). ``cpu_s`` is process time (this machine is shared).

Usage: ``python benchmarks/bids.py [--subjects 1000] [--runs 4] [--repeats 3] [--only real]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuralset.studies.bids import BidsStudy

OPENNEURO = Path(__file__).resolve().parents[2] / "shared" / "data" / "openneuro"
if not OPENNEURO.is_dir():
    OPENNEURO = Path("/work/shared/data/openneuro")
REAL = {
    "ds000117": {"description_column": "stim_type", "code_column": "trigger"},
    "ds002345": {},
    "ds003643": {"require_events": False},
}
WORDS = ("cat", "dog", "house", "tree", "sun", "moon", "car", "book")


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``fn`` and its last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def read_floor(root: Path) -> int:
    """Read and parse every .tsv / .json under ``root`` (what discovery reads, and no more)."""
    n = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "derivatives"]
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".tsv"):
                with open(path, newline="", encoding="utf-8-sig") as fh:
                    n += len(list(csv.reader(fh, delimiter="\t")))
            elif name.endswith(".json"):
                with open(path, encoding="utf-8-sig") as fh:
                    json.load(fh)
                n += 1
    return n


def mne_bids_paths(root: Path, datatypes: list[str]) -> int:
    import mne_bids

    return len(mne_bids.find_matching_paths(root, datatypes=datatypes, suffixes=["meg", "bold"]))


def bench_real(repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kwargs in REAL.items():
        root = OPENNEURO / name
        if not root.is_dir():
            out[name] = "not found"
            continue
        wall, cpu, events = timed(lambda r=root, k=kwargs: BidsStudy(path=r, **k).events(), repeats)
        floor, _, _ = timed(lambda r=root: read_floor(r), repeats)
        table, by_run = _tables(root, kwargs, repeats)
        dts = ["meg", "func"]
        mb, _, _ = timed(lambda r=root, d=dts: mne_bids_paths(r, d), repeats)
        recs = events[events["duration_source"].notna()]
        out[name] = {
            "timelines": int(events["timeline"].nunique()),
            "event_rows": len(events),
            "recordings": len(recs),
            "recordings_present": int(recs["file_present"].sum()),
            "bytes_to_fetch": float(recs.loc[~recs["file_present"], "file_size"].sum()),
            "events_s": round(wall, 3),
            "events_cpu_s": round(cpu, 3),
            "read_floor_s": round(floor, 3),
            "mne_bids_find_matching_paths_s": round(mb, 3),
            "ratio_to_read_floor": round(wall / floor, 2),
            "table_s": round(table, 3),
            "run_by_run_table_s": round(by_run, 3),
            "speedup_over_run_by_run": round(by_run / table, 2),
        }
    return out


def _tables(root: Path, kwargs: dict[str, Any], repeats: int) -> tuple[float, float]:
    """Median seconds of the dataset-wide table and of the run-by-run one (fresh studies)."""
    table, _, _ = timed(lambda: BidsStudy(path=root, **kwargs).all_timeline_events(), repeats)
    by_run, _, _ = timed(lambda: BidsStudy(path=root, **kwargs).run_by_run_events(), repeats)
    return table, by_run


def make_scaled(root: Path, subjects: int, runs: int) -> None:
    """``subjects`` x ``runs`` MEG runs made of ds000117's real text files (see module doc)."""
    src = OPENNEURO / "ds000117"
    meg = src / "sub-01" / "ses-meg"
    sidecar = (meg / "sub-01_ses-meg_task-facerecognition_meg.json").read_text()
    channels = (meg / "sub-01_ses-meg_task-facerecognition_channels.tsv").read_text()
    events = [
        (meg / "meg" / f"sub-01_ses-meg_task-facerecognition_run-0{r}_events.tsv").read_text()
        for r in range(1, 7)
    ]
    pointer = (meg / "meg" / "sub-01_ses-meg_task-facerecognition_run-01_meg.fif").read_text()
    root.mkdir(parents=True)
    shutil.copy(src / "dataset_description.json", root)
    rows = ["participant_id\tage\tsex\tfirst_ses"]
    for s in range(subjects):
        sub = f"sub-{s + 1:04d}"
        rows.append(f"{sub}\t{20 + s % 30}\t{'MF'[s % 2]}\tmeg")
        ses = root / sub / "ses-meg"
        (ses / "meg").mkdir(parents=True)
        base = f"{sub}_ses-meg_task-facerecognition"
        (ses / f"{base}_meg.json").write_text(sidecar)  # inherited by the runs
        (ses / f"{base}_channels.tsv").write_text(channels)
        scans = ["filename\tacq_time"]
        for r in range(runs):
            run = f"{base}_run-{r + 1:02d}"
            (ses / "meg" / f"{run}_meg.fif").write_text(pointer)
            (ses / "meg" / f"{run}_events.tsv").write_text(events[r % len(events)])
            scans.append(f"meg/{run}_meg.fif\t2009-04-09T12:{r:02d}:00")
        (ses / f"{sub}_ses-meg_scans.tsv").write_text("\n".join(scans) + "\n")
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")


def bench_scaled(subjects: int, runs: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "scaled"
        make_scaled(root, subjects, runs)
        kwargs = REAL["ds000117"]
        BidsStudy(path=root, **kwargs).events()  # warm the page cache and imports
        wall, cpu, events = timed(lambda: BidsStudy(path=root, **kwargs).events(), repeats)
        tl, _, _ = timed(lambda: BidsStudy(path=root).timelines(), repeats)
        floor, _, _ = timed(lambda: read_floor(root), repeats)
        mb, _, n_mb = timed(lambda: mne_bids_paths(root, ["meg"]), repeats)
        table, by_run = _tables(root, kwargs, repeats)
    assert n_mb == subjects * runs == events["timeline"].nunique()
    return {
        "subjects": subjects,
        "runs": runs,
        "timelines": int(events["timeline"].nunique()),
        "event_rows": len(events),
        "timelines_s": round(tl, 3),
        "events_s": round(wall, 3),
        "events_cpu_s": round(cpu, 3),
        "read_floor_s": round(floor, 3),
        "mne_bids_find_matching_paths_s": round(mb, 3),
        "ratio_to_read_floor": round(wall / floor, 2),
        "table_s": round(table, 3),
        "run_by_run_table_s": round(by_run, 3),
        "speedup_over_run_by_run": round(by_run / table, 2),
        "target_s": 5.0,
        "ok": wall < 5.0,
    }


def make_eeg(root: Path, subjects: int, runs: int, n_events: int) -> None:
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "bench", "BIDSVersion": "1.9.0"})
    )
    rng = np.random.default_rng(0)
    channels = "name\ttype\tunits\tstatus\n" + "".join(
        f"E{i}\tEEG\tuV\t{'bad' if i == 3 else 'good'}\n" for i in range(32)
    )
    sidecar = json.dumps(
        {"TaskName": "read", "SamplingFrequency": 500.0, "RecordingDuration": 599.998}
    )
    for s in range(subjects):
        folder = root / f"sub-{s + 1:03d}" / "eeg"
        folder.mkdir(parents=True)
        for r in range(runs):
            base = f"sub-{s + 1:03d}_task-read_run-{r + 1}"
            (folder / f"{base}_eeg.vhdr").write_bytes(b"")
            (folder / f"{base}_eeg.json").write_text(sidecar)
            (folder / f"{base}_channels.tsv").write_text(channels)
            onsets = np.sort(rng.uniform(1, 590, n_events))
            lines = ["onset\tduration\ttrial_type\tvalue\tword"]
            lines += [
                f"{o:.3f}\t0.3\tword\t{1 + i % 4}\t{WORDS[i % len(WORDS)]}"
                for i, o in enumerate(onsets)
            ]
            (folder / f"{base}_events.tsv").write_text("\n".join(lines) + "\n")


def bench_eeg(repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "eeg"
        make_eeg(root, 100, 4, 100)
        BidsStudy(path=root).events()
        wall, cpu, events = timed(lambda: BidsStudy(path=root).events(), repeats)
        floor, _, _ = timed(lambda: read_floor(root), repeats)
    return {
        "timelines": int(events["timeline"].nunique()),
        "event_rows": len(events),
        "events_s": round(wall, 3),
        "events_cpu_s": round(cpu, 3),
        "read_floor_s": round(floor, 3),
        "ratio_to_read_floor": round(wall / floor, 2),
        "target_s": 2.0,
        "ok": wall < 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["real", "scaled", "eeg"], default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "bids_discovery", "load_avg": os.getloadavg()[0]}
    if args.only in (None, "real"):
        result["real"] = bench_real(args.repeats)
    if args.only in (None, "scaled"):
        result["scaled"] = bench_scaled(args.subjects, args.runs, args.repeats)
    if args.only in (None, "eeg"):
        result["eeg"] = bench_eeg(args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
