"""A read-only store: a prepared store bind-mounted read-only (run in a private mount namespace
by :func:`tests.faults.scenarios.in_namespace`); prints one JSON outcome.

Reads must give the writable store's windows, ``prepare`` of what is stored must succeed
without writing, ``prepare`` of anything missing must say the store is read-only and where,
and ``verify`` must work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuralset.execution import run_prepare
from neuralset.segments import sliding_windows
from neuralset.store import Store, StoreReadOnlyError
from neuralset.synthetic.debug_extractors import SleepExtractor
from tests.execution.helpers import make_recordings


def main(tmp: Path) -> dict[str, Any]:
    events = make_recordings(tmp / "data", 4)
    extractor = SleepExtractor(batch_size=1)
    some = events.iloc[:3].reset_index(drop=True)
    writable = Store(tmp / "store")
    run_prepare(extractor, some, writable, progress=False)
    ro = tmp / "ro"
    ro.mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", str(writable.root), str(ro)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    store = Store(ro)
    problems: list[str] = []
    windows = sliding_windows(some, duration=2.0, stride=1.0, blocks="Meg")
    expected = extractor.read(windows, writable).data
    if not store.read_only:
        problems.append("the read-only mount was not detected")
    if not np.array_equal(extractor.read(windows, store).data, expected):
        problems.append("reads from the read-only store differ")
    report = run_prepare(extractor, some, store, progress=False)
    if report.cached != 3:
        problems.append(f"prepare of what is stored: {report}")
    message = ""
    try:
        run_prepare(extractor, events, store, progress=False)
        problems.append("prepare of a missing item did not fail")
    except StoreReadOnlyError as err:
        message = str(err)
        if not message.startswith(f"store is read-only at {ro} "):
            problems.append(f"the error does not say where: {message}")
    empty = Store(ro / "lab")  # a store not created yet, on the read-only mount
    try:
        run_prepare(extractor, some, empty, progress=False)
        problems.append("prepare into an empty read-only location did not fail")
    except StoreReadOnlyError as err:
        if not str(err).startswith(f"store is read-only at {empty.root} "):
            problems.append(f"the empty store's error does not say where: {err}")
    except OSError as err:
        problems.append(f"an empty read-only store gave a raw {err!r}")
    if not store.verify(full=True).ok:
        problems.append("verify failed on the read-only store")
    return {
        "fault": "read-only store (bind mount)",
        "survived": not problems,
        "problems": problems,
        "message": message,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))), flush=True)
