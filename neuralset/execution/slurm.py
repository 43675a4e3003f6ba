"""SLURM execution through submitit: one job array per ``prepare``, and the auto executor."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import time
from pathlib import Path
from typing import Any, Self

from ..config import ConfigError, config, register
from ..hashing import KEY_EXCLUDED
from ..validation import at_least, positive
from .executors import ACTIVE_STATES, ChunkFn, Executor, ExecutorError, Jobs, LocalExecutor

__all__ = ["SlurmExecutor", "AutoExecutor", "slurm_available"]


#: ``#SBATCH`` parameters with a field of their own (``sbatch`` would duplicate or override it)
_OWN_FIELDS = {
    "time": "timeout_min",
    "partition": "partition",
    "mem": "mem_gb",
    "cpus_per_task": "cpus_per_task",
    "gpus_per_node": "gpus_per_node",
    "job_name": "job_name",
}
#: ``#SBATCH`` parameters that ``prepare`` sets: the array of its chunks and the task logs it reads
_MANAGED = ("array", "output", "error")

_KILLED = frozenset({"TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE"})


def slurm_available() -> bool:
    """Whether ``sbatch`` is on the ``PATH``."""
    return shutil.which("sbatch") is not None


def _time_string(minutes: float) -> str | int:
    if float(minutes).is_integer():
        return int(minutes)
    total = int(round(minutes * 60))
    return f"{total // 60}:{total % 60:02d}"


class _SlurmJobs(Jobs):
    def __init__(self, jobs: list[Any], poll_s: float) -> None:
        self.jobs = jobs
        self.ids = [str(j.job_id) for j in jobs]
        self.poll_s = poll_s
        self._last_update = 0.0
        self._final: dict[int, str] = {}
        self._killed_at: dict[int, float] = {}
        self._unknown_at: dict[int, float] = {}

    def _outcome(self, i: int) -> str | None:
        """State from the result file submitit writes when the function returns or raises."""
        path = self.jobs[i].paths.result_pickle
        if not path.exists():
            return None
        try:
            with open(path, "rb") as fh:
                outcome = pickle.load(fh)[0]
        except (EOFError, pickle.UnpicklingError, OSError):
            return None
        return "COMPLETED" if outcome == "success" else "FAILED"

    def _still_listed(self) -> set[str]:
        """Tasks that ``squeue`` still lists (a killed task is COMPLETING until its processes end)."""
        import subprocess

        arrays = sorted({job_id.split("_")[0] for job_id in self.ids})
        try:
            proc = subprocess.run(
                ["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(arrays)],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return set()
        return set(proc.stdout.split()) if proc.returncode == 0 else set()

    def states(self) -> list[str]:
        watcher = self.jobs[0].watcher if self.jobs else None
        if watcher is not None and time.time() - self._last_update >= self.poll_s:
            for job in self.jobs:
                if job.job_id not in watcher._registered:
                    watcher.register_job(job.job_id)
            watcher.update()  # one sacct call for the whole array
            self._last_update = time.time()
        out = []
        listed: set[str] | None = None
        for i, job in enumerate(self.jobs):
            if i in self._final:
                out.append(self._final[i])
                continue
            state = (watcher.get_state(job.job_id, mode="cache") if watcher else "UNKNOWN").split()[
                0
            ]
            outcome = self._outcome(i)
            if outcome is not None and state not in _KILLED:
                state = outcome
            if state == "UNKNOWN":
                # sacct does not know the task (yet): after 2 minutes, unless squeue lists it,
                # it is lost (accounting down, purged) rather than waited for forever
                first = self._unknown_at.setdefault(i, time.time())
                if time.time() - first > 120:
                    if listed is None:
                        listed = self._still_listed()
                    if job.job_id not in listed:
                        state = "LOST"
            if state in _KILLED:
                # final for SLURM, but the task's processes may still write a manifest: wait
                # until squeue forgets the task (at most a minute)
                first = self._killed_at.setdefault(i, time.time())
                if listed is None:
                    listed = self._still_listed()
                if job.job_id in listed and time.time() - first < 60:
                    out.append("COMPLETING")
                    continue
            if state not in ACTIVE_STATES:
                self._final[i] = state
            out.append(state)
        return out

    def failure(self, i: int) -> str:
        """The traceback submitit pickled, else the tail of the task's stderr log.

        Never calls ``job.exception()``: for a killed task (no result file) submitit waits a
        minute for the file to appear.
        """
        job = self.jobs[i]
        try:
            with open(job.paths.result_pickle, "rb") as fh:
                outcome, value = pickle.load(fh)
            if outcome != "success":
                return str(value)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            pass
        try:
            lines = Path(job.paths.stderr).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-20:])

    def log(self, job_id: str) -> str:
        for job in self.jobs:
            if job.job_id == job_id:
                return str(job.paths.stderr)
        return ""

    def cancel(self) -> None:
        import subprocess

        arrays = sorted({job_id.split("_")[0] for job_id in self.ids})
        if arrays:
            subprocess.run(["scancel", *arrays], check=False, capture_output=True)


@register("slurm")
@config
class SlurmExecutor(Executor):
    """Submit the chunks of ``prepare`` as one SLURM job array (through submitit).

    Parameters
    ----------
    partition
        SLURM partition (``None``: the cluster's default).
    timeout_min
        Time limit per array task, in minutes (fractions allowed; SLURM rounds up to minutes).
    mem_gb
        Memory per task in GB (``None``: the partition's default).
    cpus_per_task, gpus_per_node
        Resources per array task.
    array_parallelism
        At most this many array tasks run at once.
    sbatch
        Extra ``#SBATCH`` parameters, e.g. ``{"qos": "high", "account": "lab"}`` (not those
        of the fields above, nor ``array``, ``output``, ``error``: ``prepare`` sets them).
    setup
        Shell lines run before the worker starts (``module load ...``, ``source venv/bin/activate``).
    folder
        Folder of the submitit files and job logs (default: ``<store>/slurm``).
    job_name
        Name of the job array in ``squeue``.
    use_srun
        Start the worker through ``srun`` (submitit's default) or directly in the batch script
        (saves the step launch).
    """

    partition: str | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    timeout_min: float = dataclasses.field(default=60.0, metadata=KEY_EXCLUDED)
    mem_gb: float | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    cpus_per_task: int = dataclasses.field(default=1, metadata=KEY_EXCLUDED)
    gpus_per_node: int = dataclasses.field(default=0, metadata=KEY_EXCLUDED)
    array_parallelism: int = dataclasses.field(default=64, metadata=KEY_EXCLUDED)
    sbatch: dict[str, str] = dataclasses.field(default_factory=dict, metadata=KEY_EXCLUDED)
    setup: tuple[str, ...] = dataclasses.field(default=(), metadata=KEY_EXCLUDED)
    folder: Path | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    job_name: str = dataclasses.field(default="neuralset", metadata=KEY_EXCLUDED)
    use_srun: bool = dataclasses.field(default=True, metadata=KEY_EXCLUDED)
    poll_s: float = dataclasses.field(default=1.0, metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        positive(self, "timeout_min", "minutes")
        at_least(self, "cpus_per_task", 1)
        at_least(self, "array_parallelism", 1)
        at_least(self, "gpus_per_node", 0)
        positive(self, "mem_gb", "GB", optional=True, fix="None uses the partition's default")
        for key in self.sbatch:
            name = key.lstrip("-").replace("-", "_")
            if name in _OWN_FIELDS:
                raise ConfigError(
                    f"SlurmExecutor.sbatch: {key!r} has its own field; set "
                    f"SlurmExecutor.{_OWN_FIELDS[name]} instead (in sbatch it would override or "
                    "duplicate that field's #SBATCH line)"
                )
            if name in _MANAGED:
                raise ConfigError(
                    f"SlurmExecutor.sbatch: {key!r} is set by prepare (the job array of its "
                    "chunks, and the task logs it reads from SlurmExecutor.folder); remove it"
                )

    def with_resources(self, *, gpus: int = 0) -> Self:
        """This executor with ``gpus_per_node`` raised to ``gpus`` (never lowered)."""
        if self.gpus_per_node >= gpus:
            return self
        return self.replace(gpus_per_node=gpus)

    def sbatch_parameters(self) -> dict[str, Any]:
        """The submitit ``SlurmExecutor`` parameters of this config (no SLURM needed).

        These are what :meth:`submitit_executor` passes to ``update_parameters``; they become
        the ``#SBATCH`` lines of the job script (see :meth:`sbatch_script`).
        """
        extra: dict[str, Any] = dict(self.sbatch)
        time_limit = _time_string(self.timeout_min)
        params: dict[str, Any] = {
            "job_name": self.job_name,
            "cpus_per_task": self.cpus_per_task,
            "array_parallelism": self.array_parallelism,
            "use_srun": self.use_srun,
            # the warning signal only gets logged (see records.work_chunk); keep it near the end
            "signal_delay_s": min(90, max(1, int(self.timeout_min * 60) // 10)),
        }
        if isinstance(time_limit, int):
            params["time"] = time_limit
        else:
            extra.setdefault("time", time_limit)
        if self.partition:
            params["partition"] = self.partition
        if self.mem_gb is not None:
            params["mem"] = f"{int(round(self.mem_gb * 1024))}MB"
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.setup:
            params["setup"] = list(self.setup)
        if extra:
            params["additional_parameters"] = extra
        return params

    def sbatch_script(self, command: str, folder: Path, *, tasks: int | None = None) -> str:
        """The batch script submitit would submit to run ``command`` (no SLURM needed).

        Built by submitit's own script writer from :meth:`sbatch_parameters`, so a laptop
        without SLURM can check the ``#SBATCH`` lines a cluster will get; ``tasks`` makes it
        the script of a job array of that many tasks (as ``prepare`` submits).
        """
        from submitit.slurm.slurm import _make_sbatch_string  # the writer submitit uses

        params = self.sbatch_parameters()
        if tasks is not None:
            params["map_count"] = int(tasks)
        return str(_make_sbatch_string(command=command, folder=str(Path(folder) / "%j"), **params))

    def submitit_executor(self, folder: Path) -> Any:
        """The configured ``submitit.SlurmExecutor`` writing its files under ``folder``.

        submitit refuses to build one where ``srun`` is not installed; use
        :meth:`sbatch_parameters` or :meth:`sbatch_script` to look at the job without SLURM.
        """
        import submitit

        executor = submitit.SlurmExecutor(folder=str(Path(folder) / "%j"))
        executor.update_parameters(**self.sbatch_parameters())
        return executor

    def start(self, fn: ChunkFn, chunks: list[list[Any]], *, folder: Path, name: str) -> Jobs:
        if not slurm_available():
            raise ExecutorError(
                "SlurmExecutor: sbatch is not on the PATH; run on a SLURM login node, or use "
                "LocalExecutor / AutoExecutor (executor.kind: local | auto)"
            )
        from submitit.core.utils import FailedJobError

        executor = self.submitit_executor(self.folder or folder)
        try:
            jobs = executor.map_array(fn, chunks, list(range(len(chunks))))
        except FailedJobError as err:
            raise ExecutorError(
                f"SlurmExecutor: sbatch refused the job array: {str(err).strip()}\n"
                "check that the cluster answers `sinfo` (SLURM_CONF, partition, limits) or run "
                "with --executor.kind=local"
            ) from None
        return _SlurmJobs(jobs, self.poll_s)


@register("auto")
@config
class AutoExecutor(Executor):
    """SLURM (:attr:`slurm`) when ``sbatch`` is reachable, else local processes (:attr:`local`).

    Parameters
    ----------
    slurm
        The executor used where ``sbatch`` is on the ``PATH``.
    local
        The executor used elsewhere.
    """

    slurm: SlurmExecutor = dataclasses.field(default_factory=SlurmExecutor, metadata=KEY_EXCLUDED)
    local: LocalExecutor = dataclasses.field(default_factory=LocalExecutor, metadata=KEY_EXCLUDED)

    def resolve(self) -> Executor:
        """The executor used here."""
        return self.slurm if slurm_available() else self.local

    def n_chunks(self, n_items: int, batch_size: int) -> int:
        return self.resolve().n_chunks(n_items, batch_size)

    def with_resources(self, *, gpus: int = 0) -> Self:
        """This executor whose SLURM part asks for ``gpus`` (local processes run as they are)."""
        slurm = self.slurm.with_resources(gpus=gpus)
        return self if slurm is self.slurm else self.replace(slurm=slurm)

    def start(self, fn: ChunkFn, chunks: list[list[Any]], *, folder: Path, name: str) -> Jobs:
        return self.resolve().start(fn, chunks, folder=folder, name=name)
