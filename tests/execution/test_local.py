"""prepare in local processes: same results as inline, incremental, failures and retry, claims,
recovery of a dead driver's manifests, path translation."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.execution import (
    InlineExecutor,
    LocalExecutor,
    PrepareError,
    read_errors,
    run_prepare,
)
from neuralset.execution.executors import split_chunks
from neuralset.execution.records import work_chunk
from neuralset.store import Store, StoreReadOnlyError
from neuralset.synthetic.debug_extractors import NoopExtractor, SleepExtractor

from .helpers import (
    REPO,
    computed,
    driver_command,
    failing_setup,
    make_recordings,
    pids,
    setup_failures,
)


def _same_store_contents(extractor: SleepExtractor, events, a: Store, b: Store) -> None:
    for item in extractor.items(events):
        x, y = a.get_arrays(item.key)["data"], b.get_arrays(item.key)["data"]
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()
        assert a.meta(item.key) == b.meta(item.key)


def test_split_chunks_and_job_counts() -> None:
    assert [len(c) for c in split_chunks(list(range(10)), 4)] == [3, 3, 2, 2]
    assert split_chunks([1, 2], 5) == [[1], [2]]
    assert LocalExecutor(max_jobs=4).n_chunks(10, 16) == 4
    assert LocalExecutor(max_jobs=4, min_items_per_job=5).n_chunks(10, 16) == 2
    assert LocalExecutor(max_jobs=4, min_items_per_job=50).n_chunks(10, 16) == 1
    assert InlineExecutor().n_chunks(10, 4) == 3
    assert LocalExecutor().n_chunks(0, 4) == 0


def test_default_workers_are_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within a SLURM allocation or ``taskset`` of 1 CPU on a machine of 64, one worker (it
    was ``os.cpu_count()``: 64 processes on one CPU)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert LocalExecutor().n_workers == 1
    assert LocalExecutor(workers=4).n_workers == 4
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows
    assert LocalExecutor().n_workers == 64


def test_executor_configs_are_validated() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^LocalExecutor.workers: must be >= 1 \(or None\), got 0; None uses every CPU this "
            r"process may run on$"
        ),
    ):
        LocalExecutor(workers=0)
    with pytest.raises(
        ConfigError,
        match=r"LocalExecutor.start_method: expected one of 'forkserver', 'spawn', got 'fork'",
    ):
        LocalExecutor(start_method="fork")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"InlineExecutor.max_jobs: must be >= 1, got 0"):
        InlineExecutor(max_jobs=0)
    assert from_dict({"kind": "local", "workers": 2}) == LocalExecutor(workers=2)


def test_local_processes_match_inline_and_compute_each_item_once(tmp_path: Path) -> None:
    events = make_recordings(tmp_path / "data", 8)
    log = tmp_path / "log.txt"
    # 0.3 s per item: a worker slow to start under load still gets a chunk
    extractor = SleepExtractor(log=log, batch_size=2, seconds=0.3)
    local, inline = Store(tmp_path / "local"), Store(tmp_path / "inline")
    report = run_prepare(
        extractor, events, local, executor=LocalExecutor(workers=2, max_jobs=4), progress=False
    )
    assert (report.total, report.computed, report.cached, report.jobs) == (
        8,
        8,
        0,
        {"COMPLETED": 4},
    )
    assert set(computed(log).values()) == {1} and len(computed(log)) == 8
    # computed in worker processes, at most two of them (how the chunks spread over the two
    # depends on how fast each worker starts on a loaded machine, so it is not asserted)
    assert str(os.getpid()) not in pids(log) and 1 <= len(pids(log)) <= 2
    run_prepare(extractor.replace(log=None), events, inline, progress=False)
    _same_store_contents(extractor, events, local, inline)
    data = local.get_arrays(extractor.items(events)[3].key)["data"]
    assert data[:, 0].tolist() == [float(3 + i) for i in range(13)]  # file 3: bytes 3, 4, ...
    # incremental: nothing to do, then only the new recordings
    again = run_prepare(extractor, events, local, executor=LocalExecutor(workers=2), progress=False)
    assert (again.cached, again.computed, again.jobs) == (8, 0, {})
    more = make_recordings(tmp_path / "data", 10)
    third = run_prepare(extractor, more, local, executor=LocalExecutor(workers=2), progress=False)
    assert (third.cached, third.computed) == (8, 2)
    assert max(computed(log).values()) == 1 and len(computed(log)) == 10
    assert not list((tmp_path / "local" / "manifests").glob("*/*"))  # committed and removed
    assert not list((tmp_path / "local" / "claims").rglob("*.claim"))  # released


def test_noop_extractor_values(tmp_path: Path) -> None:
    import pandas as pd

    from neuralset.events import validate_events

    events = validate_events(
        pd.DataFrame({"type": "Stimulus", "start": np.arange(50.0), "timeline": "t", "code": 1})
    )
    store = Store(tmp_path / "s")
    extractor = NoopExtractor(batch_size=8)
    report = run_prepare(
        extractor, events, store, executor=LocalExecutor(workers=2, max_jobs=3), progress=False
    )
    assert (report.computed, report.jobs) == (50, {"COMPLETED": 3})
    assert [store.get_value(i.key) for i in extractor.items(events)] == list(np.arange(50.0))


def test_failures_are_reported_together_and_retry_recomputes_only_them(tmp_path: Path) -> None:
    events, extractor, store, marker, log = failing_setup(
        tmp_path, 8, ("sub-02", "sub-05"), batch_size=4
    )
    with pytest.raises(
        PrepareError, match=r"2 of 8 items failed in SleepExtractor.prepare"
    ) as info:
        run_prepare(
            extractor, events, store, executor=LocalExecutor(workers=2, max_jobs=2), progress=False
        )
    report = info.value.report
    assert report.computed == 6
    assert sorted(Path(label).name for label, _ in report.failed) == ["sub-02.bin", "sub-05.bin"]
    message = str(info.value)
    assert (
        "sub-02.bin: error in job local-" in message
        and "sub-05.bin: error in job local-" in message
    )
    assert "RuntimeError: SleepExtractor: failing on" in message
    errors = read_errors(store)
    assert sorted(Path(e.label).name for e in errors) == ["sub-02.bin", "sub-05.bin"]
    assert all(
        e.reason == "error" and e.job_id.startswith("local-") and "Traceback" in e.error
        for e in errors
    )
    failed_keys = {e.key for e in errors}
    assert set(store.missing(i.key for i in extractor.items(events))) == failed_keys  # no bad entry
    # a new recording appears: retry mode still recomputes only the failed items
    more = make_recordings(tmp_path / "data", 9)
    marker.unlink()
    before = computed(log)
    retried = run_prepare(
        extractor, more, store, executor=LocalExecutor(workers=2), retry=True, progress=False
    )
    assert (retried.computed, retried.cached) == (2, 6)
    assert computed(log) - before == {"sub-02.bin": 1, "sub-05.bin": 1}
    assert read_errors(store) == []
    assert store.missing(i.key for i in extractor.items(more)) == [extractor.items(more)[8].key]


def test_a_plain_prepare_computes_failed_items_again_with_the_new_ones(tmp_path: Path) -> None:
    """Without ``retry`` every missing item is computed, the failed ones included (the docs
    said they were only reported again)."""
    events, extractor, store, marker, log = failing_setup(tmp_path, 4, ("sub-01",))
    with pytest.raises(PrepareError, match=r"^1 of 4 items failed in SleepExtractor.prepare"):
        run_prepare(extractor, events, store, progress=False)
    assert [Path(e.label).name for e in read_errors(store)] == ["sub-01.bin"]
    marker.unlink()
    before = computed(log)
    report = run_prepare(extractor, make_recordings(tmp_path / "data", 5), store, progress=False)
    assert (report.computed, report.cached, report.failed) == (2, 3, [])
    assert computed(log) - before == {"sub-01.bin": 1, "sub-04.bin": 1}
    assert read_errors(store) == []


@pytest.mark.parametrize("executor", [InlineExecutor(), LocalExecutor(workers=2)])
def test_setup_error_is_not_retried_batch_by_batch_nor_item_by_item(
    tmp_path: Path, executor: InlineExecutor | LocalExecutor
) -> None:
    """Issue 8, case 7: a model that cannot load fails every item once, not once per item."""
    events, extractor, store, marker, log = failing_setup(
        tmp_path, 8, (), batch_size=2, fail_mode="setup"
    )
    with pytest.raises(PrepareError, match=r"8 of 8 items failed") as info:
        run_prepare(extractor, events, store, executor=executor, progress=False)
    # inline: 4 chunks of 2 in this process, one attempt; local: at most one per worker process
    # (one worker may take every chunk before the other starts), never one per chunk or item
    if isinstance(executor, InlineExecutor):
        assert setup_failures(log) == 1
    else:
        assert setup_failures(log) in (1, 2)
    errors = read_errors(store)
    assert len(errors) == 8 and all(
        "ComputeSetupError: SleepExtractor: cannot set up for" in e.error for e in errors
    )
    assert "ComputeSetupError: SleepExtractor: cannot set up" in str(info.value)
    marker.unlink()  # the cause is fixed: the next prepare tries again
    again = run_prepare(extractor, events, store, executor=executor, retry=True, progress=False)
    assert again.computed == 8 and read_errors(store) == []


def test_crashed_worker_is_reported_and_never_hangs(tmp_path: Path) -> None:
    events, extractor, store, marker, _ = failing_setup(
        tmp_path, 4, ("sub-01",), fail_mode="exit", batch_size=1
    )
    report = run_prepare(
        extractor,
        events,
        store,
        executor=LocalExecutor(workers=1, max_jobs=4),
        progress=False,
        raise_on_error=False,
    )
    # sub-00 done before the crash; the pool breaks: the crashed and the queued items are reported
    assert report.computed >= 1
    assert report.computed + len(report.errors) == 4
    by_label = {Path(e.label).name: e for e in report.errors}
    assert by_label["sub-01.bin"].reason == "crashed"
    assert "terminated abruptly" in by_label["sub-01.bin"].error
    marker.unlink()
    rerun = run_prepare(extractor, events, store, executor=LocalExecutor(workers=1), progress=False)
    assert rerun.computed == len(report.errors)


def test_chunk_exception_outside_items_is_reported(tmp_path: Path) -> None:
    events = make_recordings(tmp_path / "data", 3)
    store = Store(tmp_path / "store")

    def broken(chunk, index):  # a worker that fails before computing anything
        raise MemoryError("cannot allocate")

    class Broken(InlineExecutor):
        def start(self, fn, chunks, *, folder, name):
            return super().start(broken, chunks, folder=folder, name=name)

    report = run_prepare(
        SleepExtractor(), events, store, executor=Broken(), progress=False, raise_on_error=False
    )
    assert [e.reason for e in report.errors] == ["failed"] * 3
    assert "MemoryError: cannot allocate" in report.errors[0].error
    assert report.jobs == {"FAILED": 1}  # inline: one chunk of batch_size items


def test_rerun_recovers_manifests_of_a_dead_driver(tmp_path: Path) -> None:
    """Workers finished and wrote manifests, the driver died before committing them."""
    events = make_recordings(tmp_path / "data", 6)
    log = tmp_path / "log.txt"
    extractor = SleepExtractor(log=log, batch_size=2)
    store = Store(tmp_path / "store")
    items = extractor.items(events)
    run_dir = tmp_path / "store" / "manifests" / "deadrun"
    # what the dead driver's workers did: claim (driver), compute and write manifests (workers)
    from neuralset.execution.claims import Claims

    claims = Claims(tmp_path / "store" / "claims", owner="deadrun")
    claims.acquire(i.key for i in items[:4])
    work = functools.partial(
        work_chunk, extractor, store, str(run_dir), str(claims.root), claims.ttl, "deadrun"
    )
    work(items[:4], 0)
    assert len(list(run_dir.glob("*.pkl"))) == 2 and store.missing(i.key for i in items) == [
        i.key for i in items
    ]
    report = run_prepare(extractor, events, store, progress=False)
    assert (report.recovered, report.computed, report.cached) == (4, 2, 0)
    assert set(computed(log).values()) == {1} and len(computed(log)) == 6  # nothing recomputed
    assert not run_dir.exists()


def test_two_drivers_never_compute_an_item_twice(tmp_path: Path) -> None:
    make_recordings(tmp_path / "data", 8)
    log = tmp_path / "log.txt"
    spec = {
        "data": str(tmp_path / "data"),
        "n": 8,
        "store": str(tmp_path / "store"),
        "extractor": {"kind": "sleep", "seconds": 0.3, "log": str(log), "batch_size": 1},
        "executor": {"kind": "local", "workers": 1},
    }
    procs = [
        subprocess.Popen(
            driver_command(spec),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.split("REPORT ", 1)[1]))
    counts = computed(log)
    assert len(counts) == 8 and set(counts.values()) == {1}, counts
    for r in reports:
        assert r["failed"] == []
        assert r["computed"] + r["others"] + r["cached"] + r["recovered"] == 8
    assert sum(r["computed"] for r in reports) == 8


def test_store_is_reused_when_the_data_folder_moves(tmp_path: Path) -> None:
    laptop = tmp_path / "laptop" / "data"
    events = make_recordings(laptop, 5)
    log = tmp_path / "log.txt"
    extractor = SleepExtractor(log=log)
    store = Store(tmp_path / "store")
    run_prepare(extractor, events, store, progress=False)
    cluster = tmp_path / "scratch" / "data"
    cluster.mkdir(parents=True)
    for path in laptop.iterdir():
        shutil.copy2(path, cluster / path.name)  # keeps mtime
    moved = events.copy()
    moved["study_root"] = str(cluster)
    assert [i.key for i in extractor.items(moved)] == [i.key for i in extractor.items(events)]
    assert extractor.items(moved)[0].payload["path"].startswith(str(cluster))
    report = run_prepare(extractor, moved, store, executor=LocalExecutor(workers=2), progress=False)
    assert (report.cached, report.computed) == (5, 0)
    assert len(computed(log)) == 5 and set(computed(log).values()) == {1}
    # a copy that changed mtime is a different file unless content hashes are asked for
    touched = cluster / "sub-00.bin"
    touched.write_bytes(touched.read_bytes())
    assert extractor.items(moved)[0].key != extractor.items(events)[0].key
    hashed = extractor.replace(content_hash=True)
    assert [i.key for i in hashed.items(moved)] == [i.key for i in hashed.items(events)]


def test_a_refused_submission_releases_the_claims(tmp_path: Path) -> None:
    from neuralset.execution import ExecutorError

    events = make_recordings(tmp_path / "data", 3)
    store = Store(tmp_path / "store")

    class Refused(InlineExecutor):
        def start(self, fn, chunks, *, folder, name):
            raise ExecutorError("sbatch refused the job array")

    with pytest.raises(ExecutorError, match="sbatch refused the job array"):
        run_prepare(SleepExtractor(), events, store, executor=Refused(), progress=False)
    assert not list((tmp_path / "store" / "claims").rglob("*.claim"))
    report = run_prepare(SleepExtractor(), events, store, progress=False)  # no wait for claims
    assert (report.computed, report.others) == (3, 0)


def test_auto_executor_uses_slurm_only_when_sbatch_is_reachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuralset.execution import AutoExecutor, SlurmExecutor

    auto = from_dict({"kind": "auto", "local": {"workers": 2}, "slurm": {"partition": "cpu"}})
    assert isinstance(auto, AutoExecutor)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    assert auto.resolve() == LocalExecutor(workers=2)
    fake = tmp_path / "sbatch"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    assert auto.resolve() == SlurmExecutor(partition="cpu")


def test_prepare_options_reach_run_prepare_through_extractor_prepare(tmp_path: Path) -> None:
    from neuralset.execution import prepare_options

    events, extractor, store, marker, _ = failing_setup(tmp_path, 3, ("sub-01",))
    with prepare_options(raise_on_error=False):
        report = extractor.prepare(events, store, progress=False)
    assert (report.computed, len(report.errors)) == (2, 1)
    more = make_recordings(tmp_path / "data", 4)
    marker.unlink()
    with prepare_options(retry=True):
        retried = extractor.prepare(more, store, progress=False)
    assert (retried.computed, retried.cached) == (1, 2)  # sub-03 stays missing: not a retry
    with pytest.raises(TypeError, match="prepare_options: unknown option 'retyr'"):
        with prepare_options(retyr=True):
            pass


def test_cuda_extractors_ask_slurm_for_a_gpu(tmp_path):
    from neuralset.execution import AutoExecutor, InlineExecutor, LocalExecutor, SlurmExecutor
    from neuralset.extractors.stimulus.text import HuggingFaceText

    cuda = HuggingFaceText(model="gpt2", device="cuda")
    cpu = HuggingFaceText(model="gpt2", device="cpu")
    assert (cuda.requires_gpu, cpu.requires_gpu) == (True, False)
    assert SlurmExecutor().for_extractor(cuda).gpus_per_node == 1
    assert SlurmExecutor(gpus_per_node=4).for_extractor(cuda).gpus_per_node == 4
    assert SlurmExecutor().for_extractor(cpu).gpus_per_node == 0
    assert AutoExecutor().for_extractor(cuda).slurm.gpus_per_node == 1
    assert AutoExecutor().for_extractor(cuda).local == LocalExecutor()
    assert InlineExecutor().for_extractor(cuda) == InlineExecutor()
    assert LocalExecutor(workers=2).with_resources(gpus=1) == LocalExecutor(workers=2)
    # what submitit gets, checked without SLURM (submitit's executor itself wants srun)
    assert SlurmExecutor().for_extractor(cuda).sbatch_parameters()["gpus_per_node"] == 1
    assert "gpus_per_node" not in SlurmExecutor().for_extractor(cpu).sbatch_parameters()
    script = SlurmExecutor().for_extractor(cuda).sbatch_script("python -m w", tmp_path)
    assert "#SBATCH --gpus-per-node=1" in script


def test_a_damaged_entry_of_a_read_only_store_fails_prepare_naming_it(tmp_path: Path) -> None:
    """A read-only store skipped the check of damaged entries: ``prepare`` counted an entry
    whose file was cut short as stored, and the next read failed advising a ``clear`` that
    the store refuses."""
    events = make_recordings(tmp_path / "data", 3)
    extractor = SleepExtractor()
    run_prepare(extractor, events, Store(tmp_path / "s"), progress=False)
    key = extractor.items(events)[1].key
    path = Store(tmp_path / "s").array_dir(key) / "data.npy"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:100])
    store = Store(tmp_path / "s", read_only=True)
    with pytest.raises(StoreReadOnlyError) as err:
        run_prepare(extractor, events, store, progress=False)
    assert str(err.value) == (
        f"1 of the entries to prepare are damaged in {store.root}, a read-only store (opened "
        f"with read_only=True) where they cannot be computed again (first: array file {path} "
        f"of entry {key} is damaged (100 bytes on disk, {size} written: truncated or "
        f"replaced)); ask whoever maintains it to run `neuralset cache verify --fix --store "
        f"{store.root}` then prepare again, or prepare into a writable store (Store(path) or "
        "NEURALSET_CACHE)"
    )
    assert path.stat().st_size == 100  # nothing removed
    report = run_prepare(extractor, events, Store(tmp_path / "s"), progress=False)
    assert (report.cached, report.damaged, report.computed) == (2, 1, 1)


def _dead_driver_left_two_of_four(tmp_path: Path) -> tuple[Any, Path, SleepExtractor, Store]:
    """4 recordings; a dead driver's workers computed the first 2 items into its manifests
    (never committed). Returns the events, the extractor's log, the extractor and the store."""
    events = make_recordings(tmp_path / "data", 4)
    log = tmp_path / "log.txt"
    extractor = SleepExtractor(log=log, batch_size=2)
    store = Store(tmp_path / "store")
    run_dir = tmp_path / "store" / "manifests" / "deadrun"
    items = extractor.items(events)
    work_chunk(extractor, store, str(run_dir), None, 300.0, "deadrun", items[:2], 0)
    return events, log, extractor, store


def test_verify_fix_keeps_the_files_of_a_dead_drivers_manifests(tmp_path: Path) -> None:
    """``verify --fix`` called the staged folders of a dead driver's manifests "without an
    entry" and removed them once an hour old, so the next ``prepare`` computed those items
    again instead of committing them."""
    events, log, extractor, store = _dead_driver_left_two_of_four(tmp_path)
    stray = store.stage_arrays("cd" * 16, {"data": np.ones(3)})  # staged, in no manifest
    assert stray["kind"] == "arrays"
    for folder in (tmp_path / "store" / "arrays").glob("*/*"):
        os.utime(folder, (0, 0))  # older than verify's grace
    report = store.verify(fix=True)
    assert len(report.pending) == 1 and report.orphans == [store.array_dir("cd" * 16)]
    assert report.removed == 1 and not store.array_dir("cd" * 16).exists()
    rerun = run_prepare(extractor, events, store, progress=False)
    assert (rerun.recovered, rerun.computed, rerun.damaged) == (2, 2, 0)
    assert set(computed(log).values()) == {1} and len(computed(log)) == 4


class _InterruptedAtSecond(SleepExtractor):
    """Ctrl-C arrives while the second recording is computed (inline), while ``armed``."""

    armed: ClassVar[bool] = True

    def compute_many(self, items):  # type: ignore[no-untyped-def]
        if self.armed and any(item.label.endswith("sub-01.bin") for item in items):
            raise KeyboardInterrupt
        return super().compute_many(items)


def test_ctrl_c_inline_stores_what_is_finished_and_leaves_no_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted round released the claims of the items not finished only: the claim of
    each item it had stored stayed under ``claims/`` for good (a later prepare of that item,
    once cleared, said it "took over" a claim of the dead run)."""
    events = make_recordings(tmp_path / "data", 3)
    store = Store(tmp_path / "store")
    extractor = _InterruptedAtSecond(batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        run_prepare(extractor, events, store, progress=False)
    items = extractor.items(events)
    assert store.missing(i.key for i in items) == [items[1].key, items[2].key]
    assert sorted(p.name for p in (tmp_path / "store" / "claims").rglob("*.claim")) == []
    store.delete(items[0].key)
    monkeypatch.setattr(_InterruptedAtSecond, "armed", False)
    report = run_prepare(extractor, events, store, progress=False)
    assert (report.cached, report.computed, report.notes) == (0, 3, [])


def test_clearing_the_store_also_drops_results_of_interrupted_runs(tmp_path: Path) -> None:
    """``clear()`` (``neuralset cache clear --yes``) removed the committed entries only: the
    next ``prepare`` "recovered" what a killed run's workers had left in ``manifests/``, so a
    store cleared to start afresh served results of before the clear."""
    events, log, extractor, store = _dead_driver_left_two_of_four(tmp_path)
    store.put_arrays("ab" * 16, {"data": np.ones(3)})  # what the store held besides
    assert store.clear() == 1
    assert not (tmp_path / "store" / "manifests").exists()
    report = run_prepare(extractor, events, store, progress=False)
    assert (report.recovered, report.computed) == (0, 4)
