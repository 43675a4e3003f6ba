"""How many injected faults ``prepare`` and the store survive with nothing lost.

Runs every scenario of :mod:`tests.faults.scenarios`: ``kill -9`` at seeded random points of a
``prepare`` (inline; a LocalExecutor driver alone; the driver and its workers together), Ctrl-C
of a LocalExecutor run, 2 and 4 concurrent preparers, five kinds of damage to a store file, a
recording replaced between ``prepare`` and reading (plain and ``content_hash`` keys), a full
disk (a 2 MB tmpfs) and a read-only bind mount (both in a user namespace, ``unshare -rm``;
skipped with the reason where that is not allowed).

A fault counts as *survived with nothing lost* when the store holds no damaged entry after it,
the rerun starts at once (no wait on the dead run's claims), recomputes at most the items that
were being computed at the fault, and the stored arrays are byte for byte those of a clean run
(see the scenarios' module docstring). The baseline is the clean run each scenario prepares.

Prints one JSON object: ``injected``, ``survived``, ``skipped`` and one line per fault.

Usage: ``python benchmarks/faults.py [--repeats 10]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from tests.faults.scenarios import run_all

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="seeds per kill -9 mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="neuralset-faults-") as tmp:
        outcomes = run_all(Path(tmp), repeats=args.repeats)
    # a kill that came after the run had finished injected nothing: not counted
    missed = [o for o in outcomes if o.get("injected") is False]
    done = [o for o in outcomes if "skipped" not in o and o.get("injected") is not False]
    by_fault: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    for o in done:
        by_fault[o["fault"]] += 1
        kept[o["fault"]] += bool(o["survived"])
    print(
        json.dumps(
            {
                "injected": len(done),
                "survived": sum(kept.values()),
                "skipped": {o["fault"]: o["skipped"] for o in outcomes if "skipped" in o},
                "landed_after_the_run": len(missed),
                "by_fault": {f: f"{kept[f]}/{n}" for f, n in by_fault.items()},
                "recomputed_after_kill": sum(o.get("recomputed", 0) for o in done),
                "max_rerun_seconds": max((o.get("rerun_seconds", 0.0) for o in done), default=0),
                "failures": [o for o in done if not o["survived"]],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
