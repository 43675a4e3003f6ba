"""prepare on a real SLURM cluster (tests/slurm_cluster.py starts it): one job array, results
identical to inline, scancel, worker errors and retry, time limits, a driver that dies."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from neuralset.config import ConfigError
from neuralset.execution import PrepareError, SlurmExecutor, read_errors, run_prepare
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import SleepExtractor

from .helpers import REPO, computed, driver_command, failing_setup, make_recordings, pids

#: the tests that run jobs start the local cluster themselves (tests/slurm_cluster.py), whatever
#: ran before them; the script test below needs no SLURM at all
needs_cluster = pytest.mark.usefixtures("slurm_cluster")


def _name() -> str:
    return f"ns-test-{uuid.uuid4().hex[:8]}"


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_sbatch_script_has_the_requested_resources(tmp_path: Path) -> None:
    """Needs no SLURM: submitit's script writer, without its executor (which wants srun)."""
    executor = SlurmExecutor(
        partition="gpu", timeout_min=1.5, mem_gb=2, cpus_per_task=3, gpus_per_node=1, array_parallelism=5,
        sbatch={"qos": "high"}, setup=("module load cuda",), job_name="prep",
    )  # fmt: skip
    text = executor.sbatch_script("python -m worker", tmp_path, tasks=8)
    for line in ("--partition=gpu", "--time=1:30", "--mem=2048MB", "--cpus-per-task=3", "--gpus-per-node=1",
                 "--qos=high", "--job-name=prep", "--array=0-7%5"):  # fmt: skip
        assert f"#SBATCH {line}" in text, line
    assert "module load cuda" in text and "python -m worker" in text
    assert f"#SBATCH --output={tmp_path}/%A_%a/%A_%a_0_log.out" in text  # one folder per task


@pytest.mark.parametrize(
    ("sbatch", "message"),
    [
        ({"time": "4:00:00"}, "'time' has its own field; set SlurmExecutor.timeout_min instead"),
        ({"partition": "gpu"}, "'partition' has its own field; set SlurmExecutor.partition"),
        ({"mem": "32G"}, "'mem' has its own field; set SlurmExecutor.mem_gb instead"),
        ({"cpus-per-task": "4"}, "'cpus-per-task' has its own field; set SlurmExecutor.cpus_per_"),
        ({"gpus_per_node": "2"}, "'gpus_per_node' has its own field; set SlurmExecutor.gpus_per"),
        ({"--job-name": "x"}, "'--job-name' has its own field; set SlurmExecutor.job_name"),
        ({"array": "0-9"}, "'array' is set by prepare (the job array of its chunks, and the"),
        ({"output": "/x"}, "'output' is set by prepare (the job array of its chunks, and the"),
    ],
)
def test_sbatch_cannot_shadow_a_field_or_what_prepare_sets(sbatch: dict, message: str) -> None:
    """Before: 'cpus-per-task' gave two --cpus-per-task lines (the field's, 1, last), 'array'
    replaced the array of prepare's chunks, 'output' moved the logs prepare reads."""
    with pytest.raises(ConfigError, match=r"^SlurmExecutor.sbatch: " + re.escape(message)):
        SlurmExecutor(sbatch=sbatch)
    assert "--ntasks-per-node=2" in SlurmExecutor(sbatch={"ntasks-per-node": "2"}).sbatch_script(
        "python -m worker", Path("/tmp")
    )


@pytest.fixture(scope="module")
def timeout_run(
    slurm_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.Popen[str]:
    """A prepare whose only job exceeds its 1-minute limit, started first so that the wait
    overlaps with the other tests; ``test_time_limit_is_reported_as_timeout`` collects it."""
    folder = tmp_path_factory.mktemp("timeout")
    make_recordings(folder / "data", 1)
    spec = {
        "data": str(folder / "data"), "n": 1, "store": str(folder / "store"),
        "extractor": {"kind": "sleep", "seconds": 600.0},
        "executor": {"kind": "slurm", "timeout_min": 1, "folder": str(folder / "submitit"), "job_name": _name(), "poll_s": 2.0},
    }  # fmt: skip
    proc = subprocess.Popen(
        driver_command(spec), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        subprocess.run(["scancel", f"--name={spec['executor']['job_name']}"], check=False)


@needs_cluster
def test_slurm_array_matches_inline(
    timeout_run: Any, tmp_path: Path, submitit_folder: Path
) -> None:
    events = make_recordings(tmp_path / "data", 8)
    log = tmp_path / "log.txt"
    extractor = SleepExtractor(log=log, batch_size=1)
    store, reference = Store(tmp_path / "slurm"), Store(tmp_path / "inline")
    executor = SlurmExecutor(max_jobs=4, folder=submitit_folder, job_name=_name(), timeout_min=5)
    report = run_prepare(extractor, events, store, executor=executor, progress=False)
    assert (report.total, report.computed, report.jobs) == (8, 8, {"COMPLETED": 4})
    tasks = sorted(p.name for p in submitit_folder.iterdir() if p.is_dir() and "_" in p.name)
    array = tasks[0].split("_")[0]
    assert tasks == [f"{array}_{i}" for i in range(4)]  # one job array of 4 tasks
    scripts = list(submitit_folder.rglob("*submission.sh"))
    assert scripts and all("#SBATCH --array=0-3%" in s.read_text() for s in scripts)
    assert len(computed(log)) == 8 and set(computed(log).values()) == {1}
    assert len(pids(log)) == 4  # one process per array task
    run_prepare(extractor.replace(log=None), events, reference, progress=False)
    for item in extractor.items(events):
        a, b = store.get_arrays(item.key)["data"], reference.get_arrays(item.key)["data"]
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        assert store.meta(item.key) == reference.meta(item.key)
    assert store.get_arrays(extractor.items(events)[5].key)["data"][:3, 0].tolist() == [
        5.0,
        6.0,
        7.0,
    ]


@needs_cluster
def test_scancel_midway_is_reported_and_rerun_completes_the_rest(
    tmp_path: Path, submitit_folder: Path
) -> None:
    events = make_recordings(tmp_path / "data", 6)
    log = tmp_path / "log.txt"
    extractor = SleepExtractor(seconds=1.5, log=log, batch_size=1)
    store = Store(tmp_path / "store")
    name = _name()
    executor = SlurmExecutor(max_jobs=2, folder=submitit_folder, job_name=name, timeout_min=5)
    result: dict[str, Any] = {}

    def drive() -> None:
        result["report"] = run_prepare(
            extractor, events, store, executor=executor, progress=False, raise_on_error=False
        )

    thread = threading.Thread(target=drive)
    thread.start()
    _wait_for(lambda: len(computed(log)) >= 2 or not thread.is_alive(), 60, "two computed items")
    assert thread.is_alive(), "the driver ended before the cancellation"
    subprocess.run(["scancel", f"--name={name}"], check=True)
    thread.join(timeout=90)
    assert not thread.is_alive(), "the driver hangs after scancel"
    report = result["report"]
    assert report.jobs == {"CANCELLED": 2}
    assert report.computed >= 2 and report.computed + len(report.errors) == 6
    assert {e.reason for e in report.errors} == {"cancelled"}
    assert all(
        re.fullmatch(r"\d+_[01]", e.job_id) and e.log.endswith("_log.err") for e in report.errors
    )
    assert "cancelled in job" in report.describe_failures()
    missing = set(store.missing(i.key for i in extractor.items(events)))
    assert len(missing) == len(report.errors)
    done_before = computed(log)
    rerun = run_prepare(
        extractor, events, store, executor=executor.replace(job_name=_name()), progress=False
    )
    assert (rerun.cached, rerun.computed, rerun.jobs) == (
        6 - len(missing),
        len(missing),
        {"COMPLETED": 2 if len(missing) > 1 else 1},
    )
    labels = {i.key: Path(i.label).name for i in extractor.items(events)}
    assert computed(log) - done_before == {labels[k]: 1 for k in missing}  # only the missing ones
    assert store.missing(labels) == [] and read_errors(store) == []


@needs_cluster
def test_worker_error_entries_then_retry(tmp_path: Path, submitit_folder: Path) -> None:
    events, extractor, store, marker, log = failing_setup(
        tmp_path, 4, ("sub-01", "sub-02"), batch_size=1
    )
    executor = SlurmExecutor(max_jobs=2, folder=submitit_folder, job_name=_name(), timeout_min=5)
    with pytest.raises(PrepareError, match=r"2 of 4 items failed") as info:
        run_prepare(extractor, events, store, executor=executor, progress=False)
    errors = {Path(e.label).name: e for e in read_errors(store)}
    assert sorted(errors) == ["sub-01.bin", "sub-02.bin"]
    assert errors["sub-01.bin"].job_id.endswith("_0") and errors["sub-02.bin"].job_id.endswith("_1")
    for e in errors.values():
        assert e.reason == "error" and "RuntimeError: SleepExtractor: failing on" in e.error
        assert Path(e.log).exists() and e.log.endswith(f"{e.job_id}_0_log.err")
        assert f"{Path(e.label).name}: error in job {e.job_id} (log: {e.log})" in str(info.value)
    assert info.value.report.jobs == {"COMPLETED": 2}  # the jobs ran; items failed
    marker.unlink()
    retried = run_prepare(extractor, events, store, executor=executor, retry=True, progress=False)
    assert (retried.cached, retried.computed) == (2, 2)
    assert computed(log) == {f"sub-0{i}.bin": 1 for i in range(4)}
    assert read_errors(store) == []


@needs_cluster
def test_driver_killed_while_jobs_run_rerun_recovers(tmp_path: Path, submitit_folder: Path) -> None:
    make_recordings(tmp_path / "data", 4)
    log = tmp_path / "log.txt"
    spec = {
        "data": str(tmp_path / "data"), "n": 4, "store": str(tmp_path / "store"),
        "extractor": {"kind": "sleep", "seconds": 1.5, "log": str(log), "batch_size": 1},
        "executor": {"kind": "slurm", "max_jobs": 2, "folder": str(submitit_folder), "job_name": _name()},
    }  # fmt: skip
    proc = subprocess.Popen(
        driver_command(spec), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: len(computed(log)) >= 1, 60, "a running job")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the array keeps running; a new driver waits for its claims and commits its manifests
    spec["executor"]["job_name"] = _name()
    rerun = subprocess.run(
        driver_command(spec), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout.split("REPORT ", 1)[1])
    assert report["computed"] == 0 and report["failed"] == []
    assert report["cached"] + report["recovered"] + report["others"] == 4
    assert computed(log) == {f"sub-0{i}.bin": 1 for i in range(4)}  # nothing computed twice


@needs_cluster
def test_time_limit_is_reported_as_timeout(timeout_run: subprocess.Popen[str]) -> None:
    out, err = timeout_run.communicate(timeout=180)
    assert timeout_run.returncode == 0, err
    report = json.loads(out.split("REPORT ", 1)[1])
    assert report["jobs"] == {"TIMEOUT": 1}
    assert [(Path(label).name, reason) for label, reason, _ in report["failed"]] == [
        ("sub-00.bin", "timeout")
    ]


@needs_cluster
def test_ctrl_c_cancels_the_jobs_and_keeps_what_they_finished(
    tmp_path: Path, submitit_folder: Path
) -> None:
    make_recordings(tmp_path / "data", 6)
    log = tmp_path / "log.txt"
    name = _name()
    spec = {
        "data": str(tmp_path / "data"), "n": 6, "store": str(tmp_path / "store"),
        "extractor": {"kind": "sleep", "seconds": 2.0, "log": str(log), "batch_size": 1},
        "executor": {"kind": "slurm", "max_jobs": 2, "folder": str(submitit_folder), "job_name": name},
    }  # fmt: skip
    proc = subprocess.Popen(
        driver_command(spec), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: len(computed(log)) >= 1, 90, "a finished item")
    assert proc.poll() is None, "the driver ended before the interrupt"
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    _, err = proc.communicate(timeout=60)
    assert time.perf_counter() - t0 < 30 and proc.returncode != 0
    assert "prepare interrupted" in err, err

    def queued() -> str:
        return subprocess.run(
            ["squeue", "--noheader", f"--name={name}"], capture_output=True, text=True
        ).stdout.strip()

    _wait_for(lambda: not queued(), 30, "the cancelled jobs to leave the queue")
    finished = computed(log)
    time.sleep(3)  # a job left running would finish another 2 s item meanwhile
    assert computed(log) == finished, "a job kept computing after Ctrl-C"
    # what finished is kept: the rerun computes only the rest, and nothing twice
    spec["executor"]["job_name"] = _name()
    rerun = subprocess.run(
        driver_command(spec), cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout.split("REPORT ", 1)[1])
    assert report["failed"] == []
    assert report["cached"] + report["recovered"] >= 1
    assert report["cached"] + report["recovered"] + report["computed"] == 6
    assert sorted(computed(log)) == [f"sub-0{i}.bin" for i in range(6)]
    # at most the items in flight when Ctrl-C came (one per job) are computed a second time
    assert sum(n - 1 for n in computed(log).values()) <= 2
