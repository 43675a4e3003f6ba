"""Fault injection on ``prepare`` and the store: each scenario injects faults and checks that
nothing was lost (see ``tests/faults/test_faults.py`` and ``benchmarks/faults.py``).

A fault is *survived with nothing lost* when, after it:

* the store is consistent (``Store.verify`` finds no damaged entry and no entry is missing
  that the run had committed),
* a rerun of ``prepare`` starts at once (no wait on the dead run's claims), recomputes at most
  the items that were being computed at the fault, and
* the stored arrays are byte for byte those of a clean run.

Importable (``tests.faults.scenarios``) so that subprocess drivers and the benchmark use it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuralset.events import validate_events
from neuralset.store import Store
from tests.execution.helpers import REPO, computed, driver_command

__all__ = [
    "Outcome",
    "big_recordings",
    "clean_store",
    "same_arrays",
    "kill_during_prepare",
    "interrupt_during_prepare",
    "concurrent_preparers",
    "store_file_damage",
    "recording_replaced",
    "userns_available",
]

#: One injected fault and whether it was survived with nothing lost (with why not).
Outcome = dict[str, Any]


def _spec(tmp: Path, n: int, seconds: float, executor: str | None, log: Path) -> dict[str, Any]:
    return {
        "data": str(tmp / "data"),
        "n": n,
        "store": str(tmp / "store"),
        "extractor": {"kind": "sleep", "seconds": seconds, "log": str(log), "batch_size": 1},
        "executor": {"kind": "local", "workers": 2} if executor == "local" else None,
    }


def clean_store(tmp: Path, n: int) -> Store:
    """A store prepared without any fault, from ``tmp / "data"``: what every rerun must match."""
    from neuralset.execution import run_prepare
    from neuralset.synthetic.debug_extractors import SleepExtractor
    from tests.execution.helpers import make_recordings

    events = make_recordings(tmp / "data", n)
    store = Store(tmp / "clean")
    run_prepare(SleepExtractor(batch_size=1), events, store, progress=False)
    return store


def same_arrays(a: Store, b: Store, keys: list[str] | None = None) -> bool:
    """Whether ``b`` holds every entry of ``a`` (or ``keys``) with the same bytes, dtype, shape."""
    for key in keys if keys is not None else list(a.keys()):
        if not b.has(key):
            return False
        x, y = a.get_arrays(key), b.get_arrays(key)
        if x.keys() != y.keys():
            return False
        for name in x:
            if x[name].dtype != y[name].dtype or x[name].tobytes() != y[name].tobytes():
                return False
    return True


def _rerun(spec: dict[str, Any]) -> tuple[dict[str, Any], float, str]:
    """Run the driver again (after a fault); its report, its seconds and its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(driver_command(spec), cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or "REPORT " not in proc.stdout:
        raise RuntimeError(f"rerun failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.split("REPORT ", 1)[1]), seconds, proc.stderr


def _start(spec: dict[str, Any], rng: random.Random, stderr: Any) -> subprocess.Popen[str]:
    """Start a driver in its own session; return once its ``prepare`` has claimed items plus
    a random (seeded) delay, so that the fault lands inside ``prepare``."""
    proc = subprocess.Popen(
        driver_command(spec),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    claims = Path(spec["store"]) / "claims"
    deadline = time.time() + 60
    while not claims.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 2.5))
    return proc


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_gone(pids: list[int], limit: float) -> list[int]:
    """Wait up to ``limit`` seconds for ``pids`` to exit; return those still running."""
    from neuralset.execution.claims import process_alive

    deadline = time.time() + limit
    alive = list(pids)
    while alive and time.time() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if process_alive(p)]
    return alive


def _judge(fault: str, spec: dict[str, Any], clean: Store, log: Path, *, in_flight: int) -> Outcome:
    """After a fault: verify the store, rerun, compare with the clean run (see module doc)."""
    store = Store(spec["store"])
    before = computed(log)
    verified = store.verify() if store.root.exists() else None
    report, seconds, _ = _rerun(spec)
    twice = sum(v - 1 for v in computed(log).values() if v > 1)
    problems = []
    if verified is not None and not verified.ok:
        problems.append(f"damaged entries after the fault: {verified.damaged}")
    if report["failed"]:
        problems.append(f"rerun failures: {report['failed']}")
    if seconds > 60:
        problems.append(f"rerun took {seconds:.0f} s (waited on dead claims?)")
    if twice > in_flight:
        problems.append(f"{twice} items computed twice (at most {in_flight} were in flight)")
    if not same_arrays(clean, store):
        problems.append("rerun's arrays differ from a clean run")
    return {
        "fault": fault,
        "survived": not problems,
        "problems": problems,
        "finished_before": len(before),
        "recomputed": twice,
        "rerun_seconds": round(seconds, 2),
        "rerun": {k: report[k] for k in ("computed", "cached", "recovered", "notes")},
    }


def kill_during_prepare(tmp: Path, seed: int, mode: str, n: int = 16) -> Outcome:
    """``kill -9`` a ``prepare`` at a random (seeded) moment, then rerun.

    ``mode``: ``"inline"`` (one process), ``"driver"`` (a LocalExecutor driver; its workers
    must stop by themselves) or ``"group"`` (the driver and its workers at once).
    """
    rng = random.Random(seed)
    tmp = Path(tmp)
    log = tmp / "log.txt"
    spec = _spec(
        tmp, n, 0.15 if mode == "inline" else 0.3, None if mode == "inline" else "local", log
    )
    clean = clean_store(tmp, n)
    proc = _start(spec, rng, subprocess.DEVNULL)
    workers = _children(proc.pid)
    injected = proc.poll() is None
    if mode == "group":
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait()
    stray = _wait_gone(workers, 10.0)
    outcome = _judge(f"kill -9 ({mode})", spec, clean, log, in_flight=1 if mode == "inline" else 2)
    outcome["injected"] = injected
    if stray:
        outcome["survived"] = False
        outcome["problems"].append(f"workers {stray} still running 10 s after the driver died")
    return outcome


def interrupt_during_prepare(tmp: Path, seed: int, n: int = 16) -> Outcome:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) during a LocalExecutor
    ``prepare``: every process must end within 10 s, then the rerun completes."""
    rng = random.Random(seed)
    tmp = Path(tmp)
    log = tmp / "log.txt"
    # 0.5 s per item: the n items take longer than the longest random delay of _start, so the
    # interrupt lands inside prepare however fast the machine is
    spec = _spec(tmp, n, 0.5, "local", log)
    clean = clean_store(tmp, n)
    proc = _start(spec, rng, subprocess.PIPE)
    workers = _children(proc.pid)
    running = proc.poll() is None
    t0 = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        err = "driver did not stop within 10 s\n" + err
    stray = _wait_gone(workers, max(0.0, 10.0 - (time.perf_counter() - t0)))
    stopped = time.perf_counter() - t0
    outcome = _judge("Ctrl-C (local workers)", spec, clean, log, in_flight=2)
    outcome["stop_seconds"] = round(stopped, 2)
    # landed inside prepare: the driver was running and had not finished every item
    injected = running and outcome["finished_before"] < n
    outcome["injected"] = injected
    if stray or "did not stop" in err:
        outcome["survived"] = False
        outcome["problems"].append(f"not stopped within 10 s (workers left: {stray})")
    if injected and "prepare interrupted" not in err:
        outcome["problems"].append(f"the interrupted run did not say what it kept: {err[-800:]}")
        outcome["survived"] = False
    return outcome


def concurrent_preparers(tmp: Path, k: int, n: int = 12) -> Outcome:
    """``k`` drivers prepare the same items at once: each item computed once, same arrays."""
    tmp = Path(tmp)
    log = tmp / "log.txt"
    spec = _spec(tmp, n, 0.2, "local", log)
    clean = clean_store(tmp, n)
    procs = [
        subprocess.Popen(driver_command(spec), cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(k)
    ]
    reports = [json.loads(p.communicate(timeout=300)[0].split("REPORT ", 1)[1]) for p in procs]
    counts = computed(log)
    problems = []
    if len(counts) != n or set(counts.values()) != {1}:
        problems.append(f"computed counts {dict(counts)}")
    if any(r["failed"] for r in reports):
        problems.append("failures")
    if not same_arrays(clean, Store(spec["store"])):
        problems.append("arrays differ from a clean run")
    # a driver that says it waits on another must have left items to it (whether a driver
    # waits at all depends on timing: the others' items may already be stored when it looks)
    said = [r for r in reports if any(n.startswith("waiting for ") for n in r["notes"])]
    if any(not r["others"] for r in said):
        problems.append(f"a driver said it waited but left nothing to another: {said}")
    return {"fault": f"{k} concurrent preparers", "survived": not problems, "problems": problems}


def big_recordings(root: Path, n: int, size: int) -> pd.DataFrame:
    """``n`` recording files of ``size`` bytes each (distinct content) and their Meg events."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = root / f"big-{i:02d}.bin"
        if not path.exists():
            path.write_bytes(np.random.default_rng(i).integers(0, 256, size, np.uint8).tobytes())
        rows.append(
            {
                "type": "Meg",
                "start": 0.0,
                "duration": float(size),
                "timeline": f"big-{i:02d}",
                "filepath": path.name,
            }
        )
    events = pd.DataFrame(rows)
    events["study_root"] = str(root.resolve())
    return validate_events(events)


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbled header":
        path.write_bytes(b"\x00" * 64 + data[64:])
    elif how == "garbled data":
        path.write_bytes(data[:-16] + bytes(255 - b for b in data[-16:]))
    elif how == "deleted":
        path.unlink()
    else:
        raise ValueError(how)


#: Damage done to one array file of a prepared store.
DAMAGE = ("truncated", "empty", "garbled header", "garbled data", "deleted")


def store_file_damage(tmp: Path, how: str, n: int = 4) -> Outcome:
    """Damage one array file of a prepared store; reading must refuse it (naming the key and
    the command), ``verify`` must find it, and ``prepare`` (after ``verify --fix`` for damage
    only a full check sees) must give back a clean run's arrays."""
    from neuralset.execution import run_prepare
    from neuralset.store import DamagedEntryError
    from neuralset.synthetic.debug_extractors import SleepExtractor
    from tests.execution.helpers import make_recordings

    tmp = Path(tmp)
    events = make_recordings(tmp / "data", n)
    clean = clean_store(tmp, n)
    store = Store(tmp / "store")
    extractor = SleepExtractor(batch_size=1)
    run_prepare(extractor, events, store, progress=False)
    key = sorted(store.keys())[1]
    _damage(store.array_dir(key) / "data.npy", how)
    problems: list[str] = []
    full = how == "garbled data"  # same size and header: only the digest tells
    report = Store(store.root).verify(full=full)
    if key not in report.damaged:
        problems.append(f"verify(full={full}) did not find the damage: {report}")
    if not full:
        try:
            Store(store.root).get_arrays(key)["data"].sum()
            problems.append("a damaged entry was read")
        except DamagedEntryError as err:
            if key not in str(err) or f"neuralset cache clear {key}" not in str(err):
                problems.append(f"error does not name the key and command: {err}")
    else:
        Store(store.root).verify(full=True, fix=True)
    rerun = run_prepare(extractor, events, Store(store.root), progress=False)
    if rerun.computed != 1:
        problems.append(f"prepare recomputed {rerun.computed} items, not the damaged one")
    if not same_arrays(clean, Store(store.root)) or not Store(store.root).verify(full=True).ok:
        problems.append("arrays differ from a clean run after prepare")
    return {"fault": f"store file {how}", "survived": not problems, "problems": problems}


def recording_replaced(tmp: Path, content_hash: bool) -> Outcome:
    """A MEG recording replaced (its signal doubled) between ``prepare`` and reading: once the
    change can be noticed (``MAPPED.recheck_s`` seconds after it: reads check a source file at
    most that often), the same ``Segments`` and ``SegmentDataset`` objects never serve the old
    signal; right after ``prepare`` they serve the new one, as objects built afresh on a clean
    store do."""
    import time

    import mne

    from neuralset.extractors.base import ExtractorNotPreparedError
    from neuralset.extractors.neural.mne import MegExtractor
    from neuralset.loaders import DatasetNotReadyError, SegmentDataset
    from neuralset.segments import segment_on_triggers
    from neuralset.store.mapped import MAPPED
    from tests.fixtures_synthetic import make_small_study

    study = make_small_study(Path(tmp))
    study.build()
    events = study.events()
    store = Store(Path(tmp) / "store")
    meg = MegExtractor(frequency=100.0, content_hash=content_hash)
    meg.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Word", offset=-0.2, duration=0.5)
    dataset = SegmentDataset(segments, {"meg": meg}, store)
    old = meg.read(segments, store).data.copy()
    first = np.array(dataset[0].data["meg"])
    path = study.path / "sub-01" / "sub-01_meg.fif"
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    raw.apply_function(lambda x: 2 * x, picks="all")
    raw.save(path, overwrite=True, verbose="error")
    time.sleep(MAPPED.recheck_s)  # a change outside neuralset is noticed within recheck_s
    problems = []
    for name, read in (
        ("Segments", lambda: meg.read(segments, store).data),
        ("SegmentDataset", lambda: dataset[0].data["meg"]),
    ):
        try:
            stale = np.asarray(read())
            if np.array_equal(stale, old if name == "Segments" else first):
                problems.append(f"the same {name} object served the old recording")
        except (ExtractorNotPreparedError, DatasetNotReadyError):
            pass  # "prepare first": right, the stored entry is of the old file
    report = meg.prepare(events, store, progress=False)
    fresh = MegExtractor(frequency=100.0, content_hash=content_hash)
    clean = Store(Path(tmp) / "clean")
    fresh.prepare(events, clean, progress=False)
    expected = fresh.read(segment_on_triggers(events, "Word", offset=-0.2, duration=0.5), clean)
    if report.computed != 1:
        problems.append(f"prepare after the replacement: {report}")
    if not np.array_equal(meg.read(segments, store).data, expected.data):
        problems.append("after prepare, the same Segments differ from a clean run")
    dataset.prepare(progress=False)
    if not np.array_equal(np.asarray(dataset[0].data["meg"]), expected.data[:1]):
        problems.append("after prepare, the same SegmentDataset differs from a clean run")
    fault = f"recording replaced after prepare (content_hash={content_hash})"
    return {"fault": fault, "survived": not problems, "problems": problems}


def userns_available() -> str | None:
    """None when ``unshare -rm`` (a private mount namespace) works here, else why not."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    try:
        proc = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True)
    except OSError as err:
        return f"unshare fails: {err}"
    if proc.returncode != 0:
        return f"user namespaces are not allowed here: {proc.stderr.strip()}"
    return None


def in_namespace(script: str, *args: str) -> dict[str, Any]:
    """Run ``python -m tests.faults.<script> args`` in a private mount namespace (``unshare
    -rm``) and return the JSON it prints last."""
    proc = subprocess.run(
        ["unshare", "-rm", sys.executable, "-m", f"tests.faults.{script}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{script} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def run_all(
    tmp: Path, repeats: int = 6, log: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """Every scenario once (the kill -9 ones ``repeats`` times each, seeded): the outcomes."""
    outcomes: list[Outcome] = []
    jobs: list[tuple[str, Callable[[Path], Outcome]]] = []
    for seed in range(repeats):
        for mode in ("inline", "driver", "group"):
            jobs.append(
                (f"kill-{mode}-{seed}", lambda p, s=seed, m=mode: kill_during_prepare(p, s, m))
            )
    for seed in range(max(1, repeats // 2)):
        jobs.append((f"sigint-{seed}", lambda p, s=seed: interrupt_during_prepare(p, s)))
    for k in (2, 4):
        jobs.append((f"concurrent-{k}", lambda p, k=k: concurrent_preparers(p, k)))
    for content_hash in (False, True):
        jobs.append(
            (f"replaced-{content_hash}", lambda p, c=content_hash: recording_replaced(p, c))
        )
    for how in DAMAGE:
        jobs.append((f"damage-{how}", lambda p, h=how: store_file_damage(p, h)))
    why = userns_available()
    for name in ("disk_full", "read_only"):
        if why is None:
            jobs.append((name, lambda p, s=name: in_namespace(s, str(p))))
        else:
            outcomes.append({"fault": name, "skipped": why})
    for name, job in jobs:
        outcome = job(Path(tmp) / name)
        outcomes.append(outcome)
        if log is not None:
            log(outcome)
    return outcomes
