"""Import time: ``import neuralset`` against ``import pandas`` alone, in fresh subprocesses.

Target: ``import neuralset`` costs at most 0.2 s more than ``import pandas`` (the public names
are lazy; neuralset's own modules import pandas only when a name needs it). Also times the
first access to a name that imports pandas (``neuralset.Segments``). Prints JSON with the
medians of ``--repeats`` runs (interleaved, so both baselines see the same machine state).

Usage: ``python benchmarks/import_time.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fresh_process as fresh_process  # noqa: E402

SNIPPETS = {
    "python": "pass",
    "pandas": "import pandas",
    "neuralset": "import neuralset",
    "neuralset_segments": "import neuralset; neuralset.Segments",
    "neuralset_loaders": "import neuralset; neuralset.SegmentDataset; neuralset.JaxBatchIterator",
}

TIMER = "import time; t0 = time.perf_counter(); {code}; print(time.perf_counter() - t0)"


def run(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
        env=fresh_process.env(),
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    fresh_process.compile_package()
    for code in SNIPPETS.values():  # warm the file cache
        run(code)
    times: dict[str, list[float]] = {k: [] for k in SNIPPETS}
    for _ in range(args.repeats):
        for name, code in SNIPPETS.items():
            times[name].append(run(code))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "import_time",
        "repeats": args.repeats,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "neuralset_minus_pandas_s": round(med["neuralset"] - med["pandas"], 4),
        "neuralset_segments_minus_pandas_s": round(med["neuralset_segments"] - med["pandas"], 4),
        "target": "neuralset_minus_pandas_s <= 0.2",
        "ok": med["neuralset"] - med["pandas"] <= 0.2,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
