"""Storage precision: ``store_dtype="float16"`` against float32 (the baseline, same run).

Two stores are prepared from the synthetic study (``--subjects`` x ``--duration`` s) with the
same extractor, once with float32 and once with float16 storage:

* ``meg``: ``MegExtractor(frequency=250, scaling="standard")`` (``--channels`` MEG sensors),
  read as 1 s windows after each word;
* ``fmri``: ``FmriExtractor(template_mask="brain")`` voxels (8 mm grid), read as 20 s windows
  every 2 s.

Measured: store size on disk, and loading throughput of full passes over the segments through
``SegmentDataset.read`` (batches of 64, the numpy path; warm page cache), as segments/s and
MB/s of float32 output, median of ``--repeats`` passes, float32 and float16 interleaved. The
float16 reads are checked against the float32 ones: ``max |f16 - f32| / max |f32|`` is printed
(bound: 2**-11 = 4.9e-4). ``stored_bytes_per_pass`` counts the bytes of the stored windows a
pass gathers (what memory maps page in from disk when the cache is cold); ``convert_ns`` and
``copy_ns`` time numpy's float16 -> float32 conversion and a float32 copy per value on this CPU,
which bound what float16 costs when the data are already in memory. Prints JSON.

Usage: ``python benchmarks/storage_dtype.py [--subjects 2] [--duration 120] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from neuralset.extractors.neural import FmriExtractor
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.loaders import SegmentDataset
from neuralset.segments import segment_on_triggers, sliding_windows
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy


def one_pass(dataset: SegmentDataset, name: str) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    parts = []
    for start in range(0, len(dataset), 64):
        parts.append(dataset.read(np.arange(start, min(start + 64, len(dataset))))["data"][name])
    return np.concatenate(parts), time.perf_counter() - t0


def measure(case: str, extractor: object, segments: object, folder: Path, repeats: int) -> dict:
    stores = {d: Store(folder / f"{case}-{d}") for d in ("float32", "float16")}
    datasets = {}
    for dtype, store in stores.items():
        ex = extractor.replace(store_dtype=dtype)  # type: ignore[attr-defined]
        datasets[dtype] = SegmentDataset(segments, {case: ex}, store)  # type: ignore[arg-type]
        datasets[dtype].prepare(progress=False)
        one_pass(datasets[dtype], case)  # warm: page cache, per-index caches
    times: dict[str, list[float]] = {"float32": [], "float16": []}
    outputs = {}
    for i in range(repeats):
        for dtype in ("float32", "float16") if i % 2 == 0 else ("float16", "float32"):
            outputs[dtype], seconds = one_pass(datasets[dtype], case)
            times[dtype].append(seconds)
    ref, half = outputs["float32"], outputs["float16"]
    mb = ref.nbytes / 1e6
    med = {d: statistics.median(t) for d, t in times.items()}
    size = {d: stores[d].size_bytes() for d in stores}
    return {
        "segments": int(len(ref)),
        "stored_bytes_per_pass": {"float32": int(ref.size * 4), "float16": int(ref.size * 2)},
        "output_mb_per_pass": round(mb, 2),
        "store_mb": {d: round(s / 1e6, 2) for d, s in size.items()},
        "store_size_ratio": round(size["float16"] / size["float32"], 3),
        "pass_s": {d: round(v, 4) for d, v in med.items()},
        "mb_per_s": {d: round(mb / v, 1) for d, v in med.items()},
        "throughput_ratio_f16_over_f32": round(med["float32"] / med["float16"], 3),
        "max_rel_error": float(np.abs(half - ref).max() / np.abs(ref).max()),
        "bound": 2.0**-11,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--channels", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result: dict[str, object] = {
        "benchmark": "storage_dtype",
        "subjects": args.subjects,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "machine": platform.processor() or platform.machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study = SyntheticStudy(
            path=folder / "study", n_subjects=args.subjects, duration=args.duration,
            meg_channels=args.channels, modalities=("meg", "fmri"),
        )  # fmt: skip
        events = study.events()
        words = segment_on_triggers(events, "Word", duration=1.0).require("Meg")
        meg = MegExtractor(frequency=250.0, scaling="standard", picks=("meg",))
        result["meg"] = measure("meg", meg, words, folder, args.repeats)
        windows = sliding_windows(events, duration=20.0, stride=2.0, blocks="Fmri")
        fmri = FmriExtractor(template_mask="brain", frequency=0.5)
        result["fmri"] = measure("fmri", fmri, windows, folder, args.repeats)
    values = np.random.default_rng(0).standard_normal(4_000_000).astype(np.float16)
    wide = values.astype(np.float32)
    result["convert_ns"] = round(_per_value(lambda: values.astype(np.float32), len(values)), 2)
    result["copy_ns"] = round(_per_value(lambda: wide.copy(), len(values)), 2)
    print(json.dumps(result, indent=1))


def _per_value(fn: object, n: int, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n * 1e9


if __name__ == "__main__":
    main()
