"""Disk full: ``prepare`` into a store on a 2 MB tmpfs (run in a private mount namespace by
:func:`tests.faults.scenarios.in_namespace`); prints one JSON outcome.

The first ``prepare`` must fail with ``ENOSPC`` naming a path of the store, leave every entry it
committed whole, and a rerun once space is freed must compute only the rest and match a clean
run.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from neuralset.execution import PrepareError, run_prepare
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import SleepExtractor
from tests.faults.scenarios import big_recordings, same_arrays


def main(tmp: Path) -> dict[str, Any]:
    events = big_recordings(tmp / "data", 8, 150_000)  # 600 kB per stored item
    extractor = SleepExtractor(batch_size=1)
    clean = Store(tmp / "clean")
    run_prepare(extractor, events, clean, progress=False)
    mnt = tmp / "mnt"
    mnt.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    store = Store(mnt / "store")
    problems: list[str] = []
    message = ""
    try:
        run_prepare(extractor, events, store, progress=False)
        problems.append("prepare did not fail on a full disk")
    except OSError as err:
        message = str(err)
        if err.errno != errno.ENOSPC or str(mnt) not in message:
            problems.append(f"the error does not say ENOSPC and where: {err!r}")
    except PrepareError as err:
        message = str(err)
        if "No space left" not in message or str(mnt) not in message:
            problems.append(f"the error does not say the disk is full and where: {message[:500]}")
    kept = sorted(Store(store.root).keys())
    verified = Store(store.root).verify(full=True)
    if not verified.ok:
        problems.append(f"damaged entries after the full disk: {verified.damaged}")
    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(mnt)], check=True)
    rerun = run_prepare(extractor, events, Store(store.root), progress=False)
    if rerun.cached + rerun.recovered < len(kept):
        problems.append(f"{len(kept)} entries were stored, the rerun found {rerun.cached}")
    if not same_arrays(clean, Store(store.root)):
        problems.append("arrays differ from a clean run")
    return {
        "fault": "disk full (tmpfs)",
        "survived": not problems,
        "problems": problems,
        "message": message[:600],
        "stored_before": len(kept),
        "rerun": str(rerun),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))), flush=True)
