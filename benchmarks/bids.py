"""BIDS discovery: :class:`BidsStudy` on a dataset of 100 subjects x 4 runs (metadata only).

The dataset is created empty-but-valid: per run, an EEG sidecar JSON (``SamplingFrequency``,
``RecordingDuration``), ``channels.tsv`` (one bad channel), ``events.tsv`` (``--events`` rows with
``trial_type``, ``value`` and ``word``) and an empty ``.vhdr`` data file (never opened). Times,
medians of ``--repeats`` runs on a fresh study each time (no cache):

* ``timelines_s``: discovery only (``BidsStudy.timelines()``);
* ``events_s``: discovery + sidecars + events.tsv + channels.tsv -> validated events table
  (``BidsStudy.events()``); target < 2 s;
* ``mne_bids_find_matching_paths_s``: for reference, listing the same recordings with
  ``mne_bids.find_matching_paths`` (discovery only).

Usage: ``python benchmarks/bids.py [--subjects 100] [--runs 4] [--events 100] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from neuralset.studies.bids import BidsStudy

WORDS = ("cat", "dog", "house", "tree", "sun", "moon", "car", "book")


def make_dataset(root: Path, subjects: int, runs: int, n_events: int) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import mne_bids

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        make_dataset(root, args.subjects, args.runs, args.events)
        BidsStudy(path=root).events()  # warm file cache and imports
        t_tl, t_ev, t_mb = [], [], []
        n_rows = 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            n_tl = len(BidsStudy(path=root).timelines())
            t_tl.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            n_rows = len(BidsStudy(path=root).events())
            t_ev.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            n_mb = len(
                mne_bids.find_matching_paths(
                    root, datatypes="eeg", suffixes="eeg", extensions=".vhdr"
                )
            )
            t_mb.append(time.perf_counter() - t0)
        assert n_tl == n_mb == args.subjects * args.runs, (n_tl, n_mb)
    events_s = statistics.median(t_ev)
    print(
        json.dumps(
            {
                "benchmark": "bids_discovery",
                "subjects": args.subjects,
                "runs": args.runs,
                "events_per_run": args.events,
                "timelines": n_tl,
                "event_rows": n_rows,
                "timelines_s": round(statistics.median(t_tl), 4),
                "events_s": round(events_s, 4),
                "mne_bids_find_matching_paths_s": round(statistics.median(t_mb), 4),
                "target_s": 2.0,
                "ok": events_s < 2.0,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
