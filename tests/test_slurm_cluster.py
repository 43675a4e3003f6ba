"""The local SLURM cluster (tests/slurm_cluster.py) works end to end with submitit.

What these tests pin down about submitit 1.5.4 on SLURM 22.05 (with slurmdbd accounting):
- scancel: no result pickle is written, so ``job.result()`` raises ``UncompletedJobError`` once
  sacct reports the job finished (<= ~2 s) plus submitit's ``_results_timeout_s`` (15 s) wait for a
  pickle; sacct's state string is "CANCELLED by <uid>" (not plain "CANCELLED").
- time limit: SLURM sends submitit's USR2 before killing the job (``signal_delay_s`` + up to 30 s
  early); the handler of a non-checkpointable function raises inside the job, so ``result()``
  raises ``FailedJobError`` ("timed-out and not checkpointable"). If the job is killed in the same
  slurmctld pass (limit already exceeded) sacct says TIMEOUT; a job that only reaches its limit
  naturally ends as FAILED before the limit (see test_time_limit); if USR2 lands before submitit
  has set its handler (first second of the job), Python just dies: FAILED, no result pickle; if it
  lands before the srun step exists, no process gets it and the job ends as TIMEOUT at its limit.
- SLURM time limits are whole minutes and slurmctld checks them every 30 s, so the TIMEOUT case is
  produced by shrinking a running job's limit to 0 (``scontrol update TimeLimit=0``).
- ``job.state`` is cached (sacct is polled every >= 2 s); ``job.get_info()`` forces a sacct call.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import typing as tp
from pathlib import Path

import cloudpickle  # type: ignore[import-untyped]
import pytest
import submitit

pytestmark = pytest.mark.slurm

# The job imports nothing from the repository: task functions travel by value, so jobs work
# whatever the working directory / sys.path of the test session.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


# ---- functions run inside SLURM jobs -------------------------------------------------------------
def _add(a: int, b: int) -> dict[str, tp.Any]:
    import os
    import sys

    return {"sum": a + b, "python": sys.executable, "job_id": os.environ.get("SLURM_JOB_ID")}


def _stamped_sleep(seconds: float) -> tuple[float, float]:
    import time

    start = time.time()
    time.sleep(seconds)
    return start, time.time()


def _touch_then_sleep(marker: str, seconds: float) -> str:
    import pathlib
    import time

    pathlib.Path(marker).touch()
    time.sleep(seconds)
    return "not interrupted"


# ---- helpers -------------------------------------------------------------------------------------
def _result_within(
    job: submitit.Job, timeout_s: float
) -> tuple[tp.Any, BaseException | None, float]:
    """(value, exception, seconds) of job.result(), failing instead of hanging past timeout_s."""
    box: dict[str, tp.Any] = {}

    def target() -> None:
        try:
            box["value"] = job.result()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e

    t0 = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        pytest.fail(
            f"job {job.job_id}: result() still blocked after {timeout_s}s (state {job.state})"
        )
    return box.get("value"), box.get("error"), time.monotonic() - t0


def _wait_for(path: Path, timeout_s: float, job: submitit.Job) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"job {job.job_id} did not start within {timeout_s}s: {job.get_info()}")
        time.sleep(0.2)


def _final_state(job: submitit.Job, timeout_s: float = 20) -> str:
    """sacct state once the job left RUNNING/PENDING/COMPLETING (forces sacct calls)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = job.get_info(mode="force").get("State", "UNKNOWN")
        if state.split()[0] not in {"PENDING", "RUNNING", "COMPLETING", "UNKNOWN", "REQUEUED"}:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"job {job.job_id} still {state} after {timeout_s}s")
        time.sleep(0.5)


# ---- tests ---------------------------------------------------------------------------------------
def test_cluster_fixture(slurm_cluster: tp.Any) -> None:
    assert slurm_cluster.partition == slurm_cluster["partition"] == "debug"
    assert slurm_cluster.conf.exists()
    out = subprocess.run(
        ["sinfo", "-h", "-p", "debug", "-o", "%T"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.strip() in {"idle", "mixed", "allocated"}, out


# Jobs that must finish normally get a 5 min limit: with submitit's signal_delay_s=90, a 2 min
# limit lets SLURM's 30 s time-limit pass send USR2 (timed-out) in the job's first seconds.
SAFE_LIMIT_MIN = 5
# A 1 min job whose USR2 was lost is killed <= 92 s after it starts (30 s passes, KillWait=2)
NATURAL_LIMIT_WAIT_S = 130.0


def test_submit_returns_value(slurm_cluster: tp.Any, submitit_folder: Path) -> None:
    executor = slurm_cluster.executor(
        submitit_folder / "%j", timeout_min=SAFE_LIMIT_MIN, cpus_per_task=1
    )
    job = executor.submit(_add, 2, 3)
    assert isinstance(job, submitit.SlurmJob)
    value, error, _ = _result_within(job, timeout_s=60)
    assert error is None, error
    assert value["sum"] == 5
    assert value["job_id"] == job.job_id  # really ran under SLURM
    assert value["python"] == sys.executable  # the job used this (venv) interpreter
    assert _final_state(job) == "COMPLETED"


def test_array_tasks_run_concurrently(slurm_cluster: tp.Any, submitit_folder: Path) -> None:
    executor = slurm_cluster.executor(
        submitit_folder / "%j", timeout_min=SAFE_LIMIT_MIN, cpus_per_task=1
    )
    jobs = executor.map_array(_stamped_sleep, [4.0] * 3)
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1  # one SLURM array
    spans = []
    for job in jobs:
        value, error, _ = _result_within(job, timeout_s=60)
        assert error is None, error
        spans.append(value)
    # every task started before any task ended: they all ran at the same time
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_scancel_is_detected(slurm_cluster: tp.Any, submitit_folder: Path) -> None:
    executor = slurm_cluster.executor(submitit_folder / "%j", timeout_min=5, cpus_per_task=1)
    marker = submitit_folder / "started"
    job = executor.submit(_touch_then_sleep, str(marker), 300)
    _wait_for(marker, timeout_s=30, job=job)
    subprocess.run(["scancel", job.job_id], check=True, timeout=30)
    value, error, elapsed = _result_within(job, timeout_s=60)
    assert value is None
    assert isinstance(error, submitit.core.utils.UncompletedJobError), error
    assert "has not produced any output" in str(error)
    # ~2 s sacct polling + submitit's 15 s wait for a result pickle that never comes
    assert elapsed < 40
    state = _final_state(job)
    assert state.startswith("CANCELLED"), state  # "CANCELLED by 0"
    assert job.state.startswith("CANCELLED")


def test_time_limit(slurm_cluster: tp.Any, submitit_folder: Path) -> None:
    """Two jobs over their limit, resolved by the same slurmctld time-limit pass (<= 30 s)."""
    # (1) natural limit: timeout_min=1 with submitit's default signal_delay_s=90, so USR2 comes at
    # the first time-limit check, before the limit: submitit's handler fails the job itself
    natural_ex = slurm_cluster.executor(submitit_folder / "%j", timeout_min=1, cpus_per_task=1)
    natural_marker = submitit_folder / "natural_started"
    natural = natural_ex.submit(_touch_then_sleep, str(natural_marker), 300)
    natural_submitted = time.monotonic()
    # (2) a running job whose limit is shrunk to 0: it has exceeded it, SLURM kills it as TIMEOUT
    # (limits are whole minutes, checked every 30 s: a real >= 1 min run would take 60-90 s)
    executor = slurm_cluster.executor(submitit_folder / "%j", timeout_min=5, cpus_per_task=1)
    marker = submitit_folder / "started"
    job = executor.submit(_touch_then_sleep, str(marker), 300)
    _wait_for(marker, timeout_s=30, job=job)
    subprocess.run(
        ["scontrol", "update", f"JobId={job.job_id}", "TimeLimit=0"], check=True, timeout=30
    )
    value, error, elapsed = _result_within(job, timeout_s=70)
    assert value is None
    # FailedJobError (submitit's USR2 handler wrote "timed-out and not checkpointable") or, if
    # the kill won the race, plain UncompletedJobError (FailedJobError's base class)
    assert isinstance(error, submitit.core.utils.UncompletedJobError), error
    assert elapsed < 60
    assert _final_state(job) == "TIMEOUT"

    # USR2 ends it as FAILED before its 1 min limit; but SLURM signals job steps only, so a USR2
    # sent by a time-limit pass in the second before the srun step exists is lost, and the job
    # runs to its limit: TIMEOUT by 60 s + one 30 s pass + KillWait after its start (CI saw it)
    wait_s = max(40.0, NATURAL_LIMIT_WAIT_S - (time.monotonic() - natural_submitted))
    state = _final_state(natural, timeout_s=wait_s)
    assert state.split()[0] in {"FAILED", "TIMEOUT"}, state
    if state == "FAILED" and natural.paths.result_pickle.exists():  # else USR2 beat the handler
        value, error, _ = _result_within(natural, timeout_s=30)
        assert isinstance(error, submitit.core.utils.FailedJobError), error
        assert "timed-out and not checkpointable" in str(error), error
