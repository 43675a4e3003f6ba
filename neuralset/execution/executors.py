"""Executors: how ``prepare`` runs its chunks (never part of a cache key).

An executor is a frozen config. :meth:`Executor.start` launches one job per chunk and returns a
:class:`Jobs` handle that the driver polls (:meth:`Jobs.states`) until every job is in a final
state. Workers never write the store index: they stage array files and write manifests that
the driver commits (see :mod:`neuralset.execution.records`).

* :class:`InlineExecutor` - in the calling process, one chunk per poll (debugging, the default).
* :class:`LocalExecutor` - ``workers`` local processes (``forkserver`` or ``spawn``; never a bare
  ``fork`` of a driver that may hold threads and open SQLite handles).
* :class:`~neuralset.execution.slurm.SlurmExecutor` - one SLURM job array through submitit.
* :class:`~neuralset.execution.slurm.AutoExecutor` - SLURM when ``sbatch`` is on the ``PATH``, else local processes.

The driver asks an executor for the resources an extractor needs with
:meth:`Executor.for_extractor` (one GPU per job when the extractor's ``requires_gpu``); each
executor answers through :meth:`Executor.with_resources`: SLURM sets ``gpus_per_node``, the
automatic executor forwards to its SLURM part, and inline or local processes use the machine
they run on as it is.
"""

from __future__ import annotations

import dataclasses
import math
import os
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Self

from ..config import Config, config, register
from ..hashing import KEY_EXCLUDED
from ..validation import at_least, positive
from .protocols import Preparable

__all__ = [
    "Executor",
    "ExecutorError",
    "Jobs",
    "InlineExecutor",
    "LocalExecutor",
    "ACTIVE_STATES",
    "split_chunks",
]

#: Job states of jobs that may still produce results (SLURM's vocabulary).
ACTIVE_STATES = frozenset(
    {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "UNKNOWN", "READY", "CONFIGURING",
     "SUSPENDED", "RESIZING", "PREEMPTED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING",
     "STAGE_OUT"}
)  # fmt: skip


class ExecutorError(RuntimeError):
    """Jobs could not be started (no ``sbatch``, a refused submission); the message says why."""


ChunkFn = Callable[[Sequence[Any], int], Any]


def split_chunks(items: Sequence[Any], n_chunks: int) -> list[list[Any]]:
    """Split ``items`` into ``n_chunks`` contiguous chunks whose sizes differ by at most one."""
    n_chunks = max(1, min(n_chunks, len(items)))
    base, extra = divmod(len(items), n_chunks)
    out, start = [], 0
    for i in range(n_chunks):
        stop = start + base + (1 if i < extra else 0)
        out.append(list(items[start:stop]))
        start = stop
    return out


class Jobs:
    """Handle on the jobs of one ``prepare`` round (one job per chunk)."""

    #: Job id per chunk (as written by workers in their manifests).
    ids: list[str]
    #: Whether the driver may sleep between polls (False when polling does the work).
    sleeps: bool = True

    def states(self) -> list[str]:
        """Current state of each job (``ACTIVE_STATES`` until final: COMPLETED, FAILED, ...)."""
        raise NotImplementedError

    def failure(self, i: int) -> str:
        """Why job ``i`` failed (traceback or scheduler message), if known."""
        return ""

    def log(self, job_id: str) -> str:
        """Path of the log of ``job_id`` ('' when there is none)."""
        return ""

    def cancel(self) -> None:
        """Cancel the jobs still active."""

    def close(self) -> None:
        """Release resources (worker processes)."""


@config
class Executor(Config):
    """Base of the executors.

    Parameters
    ----------
    max_jobs
        At most this many jobs (chunks) per ``prepare``.
    min_items_per_job
        At least this many items per job (fewer jobs when there are few items).
    poll_s
        Seconds between two polls of the job states by the driver.
    """

    max_jobs: int = dataclasses.field(default=256, metadata=KEY_EXCLUDED)
    min_items_per_job: int = dataclasses.field(default=1, metadata=KEY_EXCLUDED)
    poll_s: float = dataclasses.field(default=0.5, metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        at_least(self, "max_jobs", 1)
        at_least(self, "min_items_per_job", 1)
        positive(self, "poll_s", "seconds")

    def n_chunks(self, n_items: int, batch_size: int) -> int:
        """Number of jobs for ``n_items`` items: at most ``max_jobs``, >= ``min_items_per_job`` each."""
        if n_items == 0:
            return 0
        return max(1, min(self.max_jobs, n_items // self.min_items_per_job))

    def start(self, fn: ChunkFn, chunks: list[list[Any]], *, folder: Path, name: str) -> Jobs:
        """Launch ``fn(chunk, index)`` for every chunk; ``folder`` may hold job logs."""
        raise NotImplementedError

    def with_resources(self, *, gpus: int = 0) -> Self:
        """This executor, asking for at least ``gpus`` GPUs per job where it allocates them.

        The base class runs on the machine as it is and returns itself; executors that
        request resources from a scheduler override this (never lowering what was configured).
        """
        return self

    def for_extractor(self, extractor: Preparable[Any]) -> Self:
        """This executor with the resources ``extractor`` needs (a GPU when ``requires_gpu``)."""
        return self.with_resources(gpus=1 if extractor.requires_gpu else 0)


class _InlineJobs(Jobs):
    sleeps = False

    def __init__(self, fn: ChunkFn, chunks: list[list[Any]]) -> None:
        self.fn, self.chunks = fn, chunks
        self.ids = [f"inline-{os.getpid()}"] * len(chunks)
        self._states = ["PENDING"] * len(chunks)
        self._errors = [""] * len(chunks)
        self._next = 0

    def states(self) -> list[str]:
        if self._next < len(self.chunks):
            i = self._next
            self._next += 1
            try:
                self.fn(self.chunks[i], i)
                self._states[i] = "COMPLETED"
            except Exception:
                self._states[i] = "FAILED"
                self._errors[i] = traceback.format_exc()
        return list(self._states)

    def failure(self, i: int) -> str:
        return self._errors[i]


@register("inline")
@config
class InlineExecutor(Executor):
    """Run everything in the calling process, one batch after the other (default; debuggable)."""

    def n_chunks(self, n_items: int, batch_size: int) -> int:
        return math.ceil(n_items / max(batch_size, 1))

    def start(self, fn: ChunkFn, chunks: list[list[Any]], *, folder: Path, name: str) -> Jobs:
        return _InlineJobs(fn, chunks)


class _LocalJobs(Jobs):
    def __init__(self, pool: Any, futures: list[Any]) -> None:
        self.pool, self.futures = pool, futures
        self.ids = [f"local-{i}" for i in range(len(futures))]
        self._stopped = False

    def states(self) -> list[str]:
        from concurrent.futures.process import BrokenProcessPool

        out = []
        for f in self.futures:
            if not f.done():
                out.append("RUNNING" if f.running() else "PENDING")
            elif f.cancelled():
                out.append("CANCELLED")
            elif f.exception() is None:
                out.append("COMPLETED")
            else:
                out.append("CRASHED" if isinstance(f.exception(), BrokenProcessPool) else "FAILED")
        return out

    def failure(self, i: int) -> str:
        f = self.futures[i]
        if not f.done() or f.cancelled() or f.exception() is None:
            return ""
        err = f.exception()
        return "".join(traceback.format_exception(type(err), err, err.__traceback__))

    def cancel(self) -> None:
        """Cancel the chunks not started and stop the worker processes now (Ctrl-C)."""
        for f in self.futures:
            f.cancel()
        # the pool offers no way to stop a running call: end its processes
        processes = list((self.pool._processes or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        self._stopped = True

    def close(self) -> None:
        self.pool.shutdown(wait=not self._stopped, cancel_futures=True)


@register("local")
@config
class LocalExecutor(Executor):
    """Run chunks in ``workers`` local processes.

    Parameters
    ----------
    workers
        Number of processes (default: the number of CPUs this process may run on, e.g. those
        of its SLURM allocation or ``taskset``, not all the machine's).
    start_method
        ``"forkserver"`` (fast, safe with threads) or ``"spawn"``. Worker processes import the
        script that runs ``prepare``, so a script needs the usual ``if __name__ ==
        "__main__":`` guard around its work; ``prepare`` called at the top level of a script
        without it fails at once, saying so (it would start the script again in every worker).

    Notes
    -----
    Workers end with their driver: interrupting ``prepare`` (Ctrl-C) terminates them, and a
    driver killed outright (``kill -9``) is noticed by each worker within a second.
    """

    workers: int | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    start_method: Literal["forkserver", "spawn"] = dataclasses.field(
        default="forkserver", metadata=KEY_EXCLUDED
    )
    max_jobs: int = dataclasses.field(default=64, metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        at_least(
            self, "workers", 1, optional=True, fix="None uses every CPU this process may run on"
        )

    @property
    def n_workers(self) -> int:
        if self.workers:
            return self.workers
        if hasattr(os, "sched_getaffinity"):  # the CPUs this process may use (SLURM, taskset)
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1

    def start(self, fn: ChunkFn, chunks: list[list[Any]], *, folder: Path, name: str) -> Jobs:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from .main_guard import check_main_guard, watch_driver

        check_main_guard("LocalExecutor")
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # workers fork from a server that already imported these (applies when it starts)
            context.set_forkserver_preload(
                ["neuralset.execution.records", "neuralset.extractors.base"]
            )
        pool = ProcessPoolExecutor(
            max_workers=min(self.n_workers, max(len(chunks), 1)),
            mp_context=context,
            initializer=watch_driver,  # a worker ends when its driver is killed
            initargs=(os.getpid(),),
        )
        futures = [pool.submit(fn, chunk, i) for i, chunk in enumerate(chunks)]
        return _LocalJobs(pool, futures)
