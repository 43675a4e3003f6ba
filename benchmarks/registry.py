"""Resolving a YAML kind in a fresh process: the cost of the registry's discovery walk.

A kind is declared only by ``@register`` on its class, so resolving one that no imported module
has registered imports every module of neuralset that holds configs (``registry.discover``).
This times, in fresh subprocesses (interleaved, medians of ``--repeats`` runs):

* ``pandas``: ``import numpy, pandas`` (the floor: every config module needs them);
* ``resolve_kind``: ``resolve_kind("meg")`` after ``import neuralset`` (the whole walk);
* ``from_yaml``: reading one extractor from YAML text (walk + validation);
* ``one_module``: importing the one module that defines ``MegExtractor`` (what a hand-kept
  ``kind -> "module:Class"`` table would import instead of the walk).

Target: the walk costs at most 0.2 s more than ``import pandas``. Also reports how many modules
the walk imports and that none of torch, jax, mne, nilearn, transformers, sklearn is among them.

Usage: ``python benchmarks/registry.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fresh_process as fresh_process  # noqa: E402

SNIPPETS = {
    "python": "pass",
    "pandas": "import numpy, pandas",
    "one_module": "import neuralset.extractors.neural.mne.meeg",
    "resolve_kind": "import neuralset.config as c; c.resolve_kind('meg')",
    "from_yaml": "from neuralset.config import from_yaml; from_yaml('kind: meg\\nfrequency: 100.0\\n')",
}

TIMER = "import time; t0 = time.perf_counter(); {code}; print(time.perf_counter() - t0)"

PROBE = (
    "import sys; before = set(sys.modules); import neuralset.config as c; c.resolve_kind('meg');"
    "new = [m for m in sys.modules if m not in before];"
    "print(sum(m.startswith('neuralset') for m in new), sorted(m for m in "
    "('torch', 'jax', 'mne', 'nilearn', 'transformers', 'sklearn') if m in sys.modules))"
)


def run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=fresh_process.env(),
    )
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    fresh_process.compile_package(ROOT)
    for code in SNIPPETS.values():  # warm the file cache
        run(TIMER.format(code=code))
    times: dict[str, list[float]] = {k: [] for k in SNIPPETS}
    for _ in range(args.repeats):
        for name, code in SNIPPETS.items():
            times[name].append(float(run(TIMER.format(code=code))))
    med = {k: statistics.median(v) for k, v in times.items()}
    n_modules, heavy = run(PROBE).split(" ", 1)
    walk = med["resolve_kind"] - med["pandas"]
    result = {
        "benchmark": "registry",
        "repeats": args.repeats,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "resolve_kind_minus_pandas_s": round(walk, 4),
        "resolve_kind_over_one_module": round(med["resolve_kind"] / med["one_module"], 2),
        "neuralset_modules_imported": int(n_modules),
        "heavy_libraries_imported": heavy,
        "target": "resolve_kind_minus_pandas_s <= 0.2",
        "ok": walk <= 0.2 and heavy == "[]",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
