"""Flat cost at scale: 1,000 recordings and a million segments against 4 recordings.

Simulated study: ``--recordings`` recordings (default 1000) of 4 channels x 600 s at 100 Hz
(``.npy`` files, one per timeline), a word every 0.6 s (1,000 per recording: 1e6 segments of
0.8 s from -0.2 s around each word), read by a minimal
:class:`~neuralset.extractors.recording.RecordingExtractor` from the files as they are. The
baseline is the same study with 4 recordings, built and measured the same way in the same run.

Each case runs in a fresh subprocess (after the store is prepared once) and reports:

* ``build_s`` (events table, segments, dataset), ``check_s`` (:meth:`SegmentDataset.check`: every
  segment has its recording and every recording is prepared) and ``first_batch_s`` (loader
  creation and first batch, torch already imported);
* ``segments_per_s``: ``loader(batch_size=128, shuffle=True)`` in steady state (median of three
  timed stretches of ``--batches`` batches after one whole epoch); ``first_pass_segments_per_s``:
  the ``--batches`` batches after the first one, while the process still maps each page of the
  store for the first time;
* ``worker_anon_mb``: private (anonymous) resident memory of one DataLoader worker
  (``num_workers=1``) after it has read ``--batches`` batches spread over every recording, and
  ``worker_anon_growth_mb`` how much reading added to it since its first batch: what reading
  costs a worker, apart from the shared, reclaimable pages of the memory-mapped store.

Targets: ``segments_per_s`` within 10% of the 4-recording case; reading grows a worker's private
memory no more with 1,000 recordings than with 4. Prints JSON.

Usage: ``python benchmarks/loader_scale.py [--recordings 1000] [--batches 200] [--root DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuralset.config import config
from neuralset.extractors.recording import RecordingExtractor

SFREQ = 100.0
N_CHANNELS = 4
DURATION = 600.0
WORD_EVERY = 0.6


@config
class NpyRecording(RecordingExtractor):
    """A recording stored as a time-major ``.npy`` file at 100 Hz (read as it is)."""

    default_event_type = "Meg"

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        return np.load(payload["path"]), SFREQ, {"n_channels": N_CHANNELS}


def write_study(root: Path, n: int) -> None:
    """The recordings' files (kept between runs)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_samples = int(DURATION * SFREQ)
    for k in range(n):
        path = root / f"rec{k:04d}.npy"
        if not path.exists():
            data = rng.standard_normal((n_samples, N_CHANNELS), dtype=np.float32)
            np.save(path, data)


def events_for(root: Path, n: int) -> pd.DataFrame:
    """One Meg event per recording and a Word every 0.6 s on each timeline."""
    from neuralset.events import validate_events

    onsets = np.arange(0.3, DURATION - 0.7, WORD_EVERY)
    tl = np.repeat([f"sub-{k:04d}" for k in range(n)], len(onsets))
    words = pd.DataFrame(
        {
            "type": "Word",
            "start": np.tile(onsets, n),
            "duration": 0.2,
            "timeline": tl,
            "text": "w",
        }
    )
    megs = pd.DataFrame(
        {
            "type": "Meg",
            "start": 0.0,
            "duration": DURATION,
            "timeline": [f"sub-{k:04d}" for k in range(n)],
            "filepath": [f"rec{k:04d}.npy" for k in range(n)],
            "frequency": SFREQ,
        }
    )
    table = pd.concat([megs, words], ignore_index=True)
    table["study_root"] = str(root)
    return validate_events(table)


def dataset_for(root: Path, n: int) -> tuple[Any, float]:
    from neuralset.loaders import SegmentDataset
    from neuralset.segments import segment_on_triggers
    from neuralset.store import Store

    t0 = time.perf_counter()
    events = events_for(root, n)
    segs = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8).require("Meg")
    ds = SegmentDataset(segs, {"meg": NpyRecording(frequency=SFREQ)}, Store(root / "store"))
    return ds, time.perf_counter() - t0


def _anon_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def forever(loader: Any) -> Any:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def child(root: Path, n: int, batches: int) -> dict[str, Any]:
    """Measurements of one case in this fresh process."""
    import torch

    ds, build_s = dataset_for(root, n)
    t0 = time.perf_counter()
    ds.check()
    check_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loader = ds.loader(batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0))
    it = forever(loader)
    next(it)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(batches):  # first pass: page tables of the mapped files still filling
        next(it)
    first_pass = batches * 128 / (time.perf_counter() - t0)
    for _ in range(len(loader)):  # one full epoch: every page of the store mapped once
        next(it)
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * 128 / (time.perf_counter() - t0))
    del it
    worker = ds.loader(batch_size=128, shuffle=True, num_workers=1)
    wit = forever(worker)
    next(wit)
    pid = worker._iterator._workers[0].pid
    worker_start = _anon_mb(pid)
    for _ in range(batches):
        next(wit)
    worker_anon = _anon_mb(pid)
    return {
        "n_segments": len(ds),
        "build_s": round(build_s, 3),
        "check_s": round(check_s, 4),
        "first_batch_s": round(first_s, 4),
        "first_pass_segments_per_s": round(first_pass),
        "segments_per_s": round(statistics.median(rates)),
        "main_anon_mb": round(_anon_mb(), 1),
        "worker_anon_mb": round(worker_anon, 1),
        "worker_anon_growth_mb": round(worker_anon - worker_start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = (args.root or Path(tempfile.gettempdir()) / "neuralset-bench-scale").resolve()
    if args.child is not None:
        print(json.dumps(child(root / str(args.child), args.child, args.batches)))
        return
    result: dict[str, Any] = {"benchmark": "loader_scale", "cpus": os.cpu_count()}
    for n in (4, args.recordings):
        case = root / str(n)
        t0 = time.perf_counter()
        write_study(case, n)
        ds, _ = dataset_for(case, n)
        ds.prepare(progress=False)
        prepare_s = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--child", str(n), "--root", str(root)]
        cmd += ["--batches", str(args.batches)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode:
            raise RuntimeError(proc.stderr[-4000:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        result[f"recordings_{n}"] = {"setup_and_prepare_s": round(prepare_s, 1), **out}
    small, big = result["recordings_4"], result[f"recordings_{args.recordings}"]
    ratio = big["segments_per_s"] / small["segments_per_s"]
    result["segments_per_s_ratio"] = round(ratio, 3)
    growth = big["worker_anon_growth_mb"] - small["worker_anon_growth_mb"]
    result["worker_anon_growth_difference_mb"] = round(growth, 1)
    result["target"] = (
        "segments_per_s_ratio >= 0.9 and reading grows a worker's private memory no more with "
        "1,000 recordings than with 4 (difference <= 16 MB)"
    )
    result["ok"] = ratio >= 0.9 and growth <= 16
    result["note"] = (
        "worker_anon_mb includes the events and segments tables the worker inherits (1e6 rows "
        "against 4,000): they grow with the number of segments, not with reading"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
