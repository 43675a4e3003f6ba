"""Shared helpers of the execution tests: small recording files, events, compute logs, drivers.

Importable (``tests.execution.helpers``) so that subprocess drivers can use it.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuralset.events import validate_events
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import SleepExtractor

REPO = Path(__file__).resolve().parents[2]


def make_recordings(root: Path, n: int = 8, prefix: str = "sub") -> pd.DataFrame:
    """``n`` small binary recording files under ``root`` and their validated Meg events.

    File ``i`` holds ``10 + i`` bytes ``0, 1, 2, ...`` plus ``i`` (distinct content per file).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = root / f"{prefix}-{i:02d}.bin"
        if not path.exists():
            path.write_bytes(bytes(((np.arange(10 + i) + i) % 256).astype(np.uint8)))
        rows.append(
            {
                "type": "Meg",
                "start": 0.0,
                "duration": float(10 + i),
                "timeline": f"{prefix}-{i:02d}",
                "filepath": path.name,
            }
        )
    events = pd.DataFrame(rows)
    events["study_root"] = str(root.resolve())
    return validate_events(events)


def failing_setup(
    tmp_path: Path, n: int, fail_labels: tuple[str, ...], **fields: Any
) -> tuple[pd.DataFrame, SleepExtractor, Store, Path, Path]:
    """A run with failures: ``n`` recordings under ``tmp_path / "data"``, a
    :class:`SleepExtractor` (more ``fields``) logging to ``tmp_path / "log.txt"`` and failing on
    ``fail_labels`` while the marker ``tmp_path / "broken"`` exists (created here), and an empty
    store; returns ``(events, extractor, store, marker, log)``.
    """
    events = make_recordings(tmp_path / "data", n)
    log, marker = tmp_path / "log.txt", tmp_path / "broken"
    marker.touch()
    extractor = SleepExtractor(log=log, fail_marker=marker, fail_labels=fail_labels, **fields)
    return events, extractor, Store(tmp_path / "store"), marker, log


def computed(log: Path) -> Counter[str]:
    """How many times each recording (file name) was computed, from a SleepExtractor log."""
    if not Path(log).exists():
        return Counter()
    lines = [line.split(" ", 1)[1] for line in Path(log).read_text().splitlines() if line]
    return Counter(Path(line).name for line in lines if not line.startswith("setup "))


def setup_failures(log: Path) -> int:
    """How many times a SleepExtractor with ``fail_mode="setup"`` failed to set up."""
    if not Path(log).exists():
        return 0
    return sum(" setup " in line for line in Path(log).read_text().splitlines())


def pids(log: Path) -> set[str]:
    """Process ids that computed something, from a SleepExtractor log."""
    return {line.split(" ", 1)[0] for line in Path(log).read_text().splitlines() if line}


def driver_command(spec: dict[str, Any]) -> list[str]:
    """Command line running :func:`drive` on ``spec`` in a fresh Python process."""
    return [sys.executable, "-m", "tests.execution.helpers", json.dumps(spec)]


def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``prepare`` as described by ``spec`` (data, n, store, extractor, executor as dicts)."""
    from neuralset.config import from_dict
    from neuralset.execution import run_prepare
    from neuralset.store import Store

    events = make_recordings(Path(spec["data"]), spec.get("n", 8))
    extractor = from_dict(spec["extractor"])
    executor = from_dict(spec["executor"]) if spec.get("executor") else None
    report = run_prepare(
        extractor,
        events,
        Store(spec["store"]),
        executor=executor,
        progress=False,
        raise_on_error=False,
    )
    return {
        "computed": report.computed,
        "cached": report.cached,
        "recovered": report.recovered,
        "others": report.others,
        "failed": [[e.label, e.reason, e.job_id] for e in report.errors],
        "jobs": report.jobs,
        "notes": report.notes,
    }


if __name__ == "__main__":
    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when this driver was started from a
    # background job (whose shell makes its children ignore SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("REPORT " + json.dumps(drive(json.loads(sys.argv[1]))), flush=True)
