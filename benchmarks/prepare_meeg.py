"""Benchmark: writing the synthetic MEG study, and preparing it vs a plain MNE script.

Writes a SyntheticStudy (default 4 subjects x 128 MEG channels x 1000 Hz x 360 s), then times,
``--runs`` times each (median reported), with a fresh store every run:

* ``neuralset``: ``MegExtractor(frequency=100, filter=(0.5, 40)).prepare(events, store)``;
* ``mne``: the same steps written directly with MNE (read_raw_fif with preload, pick mag/grad,
  raw.filter(0.5, 40), raw.resample(100), get_data as float32 time-major, np.save).

Prints one JSON object (wall-clock and CPU-time medians; CPU time is the steadier figure on a
shared machine). Usage: ``python benchmarks/prepare_meeg.py [--subjects 4 --duration 360]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def mne_script(paths: list[Path], out: Path) -> None:
    """The baseline: what one would write with MNE alone."""
    import mne

    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
        raw.pick(["mag", "grad"])
        raw.filter(0.5, 40.0, verbose="error")
        raw.resample(100.0, verbose="error")
        np.save(out / f"{i}.npy", np.ascontiguousarray(raw.get_data().T, dtype=np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--duration", type=float, default=360.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from neuralset.extractors.neural.mne import MegExtractor
    from neuralset.store import Store
    from neuralset.synthetic import SyntheticStudy

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ns-bench-meeg-"))
    study = SyntheticStudy(
        path=work / "study",
        n_subjects=args.subjects,
        meg_channels=args.channels,
        duration=args.duration,
        modalities=("meg",),
    )
    t0 = time.perf_counter()
    events = study.events()
    write_s = time.perf_counter() - t0
    paths = [study.path / p for p in events.loc[events["type"] == "Meg", "filepath"]]
    size = sum(p.stat().st_size for p in paths)

    extractor = MegExtractor(frequency=100.0, filter=(0.5, 40.0))
    # warm-up (imports, filter design caches, page cache) for both sides, untimed
    extractor.prepare(events, Store(work / "store-warm"), progress=False)
    mne_script(paths[:1], work / "mne-warm")
    ours, base, ours_cpu, base_cpu = [], [], [], []
    for run in range(args.runs):
        root = work / f"store-{run}"
        t0, c0 = time.perf_counter(), time.process_time()
        report = extractor.prepare(events, Store(root), progress=False)
        ours.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
        assert report.computed == len(paths)
        shutil.rmtree(root)
        t0, c0 = time.perf_counter(), time.process_time()
        mne_script(paths, work / f"mne-{run}")
        base.append(time.perf_counter() - t0)
        base_cpu.append(time.process_time() - c0)
        shutil.rmtree(work / f"mne-{run}")
    # second prepare on a filled store: nothing to compute
    root = work / "store-again"
    extractor.prepare(events, Store(root), progress=False)
    t0 = time.perf_counter()
    again = extractor.prepare(events, Store(root), progress=False)
    cached_s = time.perf_counter() - t0
    assert again.computed == 0
    result = {
        "benchmark": "prepare_meeg",
        "study": {
            "subjects": args.subjects,
            "meg_channels": args.channels,
            "sfreq": 1000.0,
            "duration_s": args.duration,
            "fif_bytes": size,
        },
        "write_study_s": round(write_s, 3),
        "prepare": "band-pass 0.5-40 Hz (FIR) + resample to 100 Hz",
        "runs": args.runs,
        "neuralset_prepare_s": round(statistics.median(ours), 3),
        "mne_script_s": round(statistics.median(base), 3),
        "ratio_neuralset_over_mne": round(statistics.median(ours) / statistics.median(base), 3),
        "neuralset_cpu_s": round(statistics.median(ours_cpu), 3),
        "mne_script_cpu_s": round(statistics.median(base_cpu), 3),
        "cpu_ratio_neuralset_over_mne": round(
            statistics.median(ours_cpu) / statistics.median(base_cpu), 3
        ),
        "neuralset_runs_s": [round(x, 3) for x in ours],
        "mne_runs_s": [round(x, 3) for x in base],
        "prepare_again_cached_s": round(cached_s, 3),
    }
    print(json.dumps(result, indent=1))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
