"""Execution machinery: overhead per item, SLURM array speed-up, finding missing items.

(a) ``overhead``: ``prepare`` of a :class:`~neuralset.synthetic.debug_extractors.NoopExtractor` (computing
    an item costs nothing) on ``--items`` events into a fresh store, inline, in 2 local processes
    and as a SLURM array of 4 tasks (when a cluster answers ``sinfo``). ``per_item_ms`` is
    ``(t(N) - t(1)) / (N - 1)``: the cost of claiming, computing through a worker, writing the
    manifest and committing one item; ``fixed_s`` is ``t(1)``: starting workers or jobs.
(b) ``speedup_cpu`` / ``speedup_sleep``: wall time of ``prepare`` for 8 recordings with a
    :class:`~neuralset.synthetic.debug_extractors.SleepExtractor` spinning the CPU ``--seconds`` per
    recording (stands for real work), inline against SLURM arrays of 1, 2 and 4 tasks (and 2
    local processes). On a 2-core machine 2 tasks should approach 2x; 4 tasks cannot beat 2x
    on CPU-bound work (``speedup_sleep``: the same with sleeping workers, where they can).
(c) ``missing``: ``Store.missing`` of ``--stored`` keys (half present, half absent) among
    ``--stored`` stored entries, on a freshly opened store. Target < 1 s. Also the whole
    ``prepare`` of a no-op extractor whose ``--stored`` items are all stored (items, missing,
    nothing to run).

Prints JSON: medians of ``--repeats`` runs.

Usage: ``python benchmarks/execution.py [--items 2000] [--seconds 1.0] [--stored 100000]
[--repeats 3] [--no-slurm] [--sections missing,overhead,cpu,sleep]`` (run as root with ``scripts/slurm_up.sh`` started and ``SLURM_CONF``
exported for the SLURM figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuralset.events import validate_events
from neuralset.execution import InlineExecutor, LocalExecutor, SlurmExecutor, run_prepare
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import NoopExtractor, SleepExtractor


def slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and any(
        s.startswith(("idle", "mix", "alloc")) for s in proc.stdout.split()
    )


def stimulus_events(n: int) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame({"type": "Stimulus", "start": np.arange(float(n)), "timeline": "t", "code": 1})
    )


def recordings(folder: Path, n: int) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = folder / f"rec-{i:02d}.bin"
        path.write_bytes(bytes(np.arange(1000, dtype=np.uint8)))
        rows.append(
            {
                "type": "Meg",
                "start": 0.0,
                "duration": 1000.0,
                "timeline": f"rec-{i:02d}",
                "filepath": path.name,
            }
        )
    events = pd.DataFrame(rows)
    events["study_root"] = str(folder)
    return validate_events(events)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_time(make: Callable[[Path], Callable[[], Any]], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(timed(make(Path(tmp))))
    return statistics.median(times)


def executors(folder_root: Path, slurm: bool, max_jobs: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "inline": InlineExecutor(),
        "local_2": LocalExecutor(workers=2, max_jobs=max_jobs),
    }
    if slurm:
        out[f"slurm_{max_jobs}"] = SlurmExecutor(
            max_jobs=max_jobs, folder=folder_root / "submitit", job_name=f"bench-{uuid.uuid4().hex[:6]}",
            timeout_min=10, poll_s=0.25,
        )  # fmt: skip
    return out


def overhead(n_items: int, repeats: int, slurm: bool) -> dict[str, Any]:
    extractor = NoopExtractor(batch_size=64)
    result = {}
    for name in executors(Path("."), slurm, 4):
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: forkserver start, imports
            run_prepare(
                extractor,
                stimulus_events(4),
                Store(Path(tmp) / "s"),
                executor=executors(Path(tmp), slurm, 4)[name],
                progress=False,
            )
        per_n = {}
        for n in (1, n_items):
            events = stimulus_events(n)

            def make(
                tmp: Path, events: pd.DataFrame = events, name: str = name
            ) -> Callable[[], Any]:
                executor = executors(tmp, slurm, 4)[name]
                store = Store(tmp / "store")
                return lambda: run_prepare(
                    extractor, events, store, executor=executor, progress=False
                )

            per_n[n] = median_time(make, repeats)
        result[name] = {
            "fixed_s": round(per_n[1], 3),
            f"total_s_{n_items}_items": round(per_n[n_items], 3),
            "per_item_ms": round((per_n[n_items] - per_n[1]) / (n_items - 1) * 1000, 4),
        }
    return result


def speedup(seconds: float, repeats: int, slurm: bool, busy: bool) -> dict[str, Any]:
    extractor = SleepExtractor(seconds=seconds, busy=busy, batch_size=1)
    configs: dict[str, Callable[[Path], Any]] = {
        "inline": lambda tmp: InlineExecutor(),
        "local_2": lambda tmp: LocalExecutor(workers=2, max_jobs=2),
    }
    if slurm:
        for k in (1, 2, 4):
            configs[f"slurm_{k}"] = lambda tmp, k=k: SlurmExecutor(
                max_jobs=k, array_parallelism=k, folder=tmp / "submitit", timeout_min=10,
                job_name=f"bench-{uuid.uuid4().hex[:6]}", poll_s=0.25,
            )  # fmt: skip
    walls = {}
    for name, make_executor in configs.items():

        def make(
            tmp: Path, make_executor: Callable[[Path], Any] = make_executor
        ) -> Callable[[], Any]:
            events = recordings(tmp / "data", 8)
            executor = make_executor(tmp)
            store = Store(tmp / "store")
            return lambda: run_prepare(extractor, events, store, executor=executor, progress=False)

        walls[name] = median_time(make, repeats)
    return {
        "items": 8,
        "work": "CPU-bound (spin)" if busy else "sleep",
        "seconds_per_item": seconds,
        "wall_s": {k: round(v, 2) for k, v in walls.items()},
        "speedup_vs_inline": {k: round(walls["inline"] / v, 2) for k, v in walls.items()},
    }


def missing(n_stored: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        events = stimulus_events(n_stored)
        extractor = NoopExtractor()
        t0 = time.perf_counter()
        items = extractor.items(events)
        items_s = time.perf_counter() - t0
        store = Store(Path(tmp) / "store")
        index = store._open_index(create=True)
        with index.transact():  # fill quickly: the figure is about reading
            for item in items:
                index.set(
                    item.key,
                    {
                        "kind": "value",
                        "value": item.payload,
                        "label": item.label,
                        "provenance": {},
                        "nbytes": 0,
                    },
                )
        keys = [i.key for i in items[: n_stored // 2]] + [
            uuid.uuid4().hex for _ in range(n_stored - n_stored // 2)
        ]
        times, prepare_times = [], []
        for _ in range(repeats):
            fresh = Store(store.root)
            t0 = time.perf_counter()
            absent = fresh.missing(keys)
            times.append(time.perf_counter() - t0)
            assert len(absent) == n_stored - n_stored // 2
            fresh = Store(store.root)
            prepare_times.append(
                timed(lambda fresh=fresh: run_prepare(extractor, events, fresh, progress=False))
            )
        return {
            "stored": n_stored,
            "queried": len(keys),
            "missing_s": round(statistics.median(times), 3),
            "target_s": 1.0,
            "prepare_all_stored_s": round(statistics.median(prepare_times), 3),
            "items_listing_s": round(items_s, 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-slurm", action="store_true")
    parser.add_argument(
        "--sections", default="missing,overhead,cpu,sleep", help="comma-separated subset"
    )
    args = parser.parse_args()
    slurm = not args.no_slurm and slurm_up()
    sections = set(args.sections.split(","))
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "slurm": slurm,
            "load_avg_1m_at_start": os.getloadavg()[0],
        },
    }
    if "missing" in sections:
        out["missing"] = missing(args.stored, args.repeats)
    if "overhead" in sections:
        out["overhead"] = overhead(args.items, args.repeats, slurm)
    if "cpu" in sections:
        out["speedup_cpu"] = speedup(args.seconds, args.repeats, slurm, busy=True)
    if "sleep" in sections:
        out["speedup_sleep"] = speedup(args.seconds, args.repeats, slurm, busy=False)
    out["machine"]["load_avg_1m_at_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
