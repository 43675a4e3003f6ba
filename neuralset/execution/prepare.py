"""The driver of ``prepare``: find missing items, claim them, run chunks, commit manifests.

1. **Recover**: commit the manifests that earlier drivers left behind (a driver that died while
   its jobs ran); those items are not recomputed.
2. **Find** the missing items (one index query) - in ``retry`` mode only those with an error entry.
3. **Claim** them (:class:`~neuralset.execution.claims.Claims`): items claimed by another live
   driver are not computed here; the driver waits for them to appear in the store, and takes
   them over only if their claim expires.
4. **Run**: split the claimed items into at most ``executor.max_jobs`` chunks of at least
   ``executor.min_items_per_job`` items and start one job per chunk (one SLURM array). Workers
   stage array files and write one manifest per batch; the driver commits manifests as they
   appear (progress of items and job states) until every job is in a final state.
5. **Report**: items of a job killed by the scheduler (timeout, out of memory, ``scancel``)
   or whose code raised get an error entry (traceback, job id, log); all failures are listed
   together in the :class:`PrepareReport` (and in the :class:`PrepareError` raised).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..store import Store
from .claims import Claims
from .executors import ACTIVE_STATES, Executor, InlineExecutor, Jobs, split_chunks
from .protocols import ItemT, Preparable, WorkItem
from .records import ItemError, commit_manifests, read_errors, work_chunk, write_error

__all__ = ["InlineExecutor", "PrepareReport", "PrepareError", "run_prepare", "prepare_options"]

_OPTIONS: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "neuralset_prepare_options", default=()
)


@contextlib.contextmanager
def prepare_options(**options: Any) -> Any:
    """Defaults of :func:`run_prepare`'s options (``retry``, ``raise_on_error``, ``claim_ttl``)
    inside the block, also when ``prepare`` is reached through ``extractor.prepare(...)``.

    Examples
    --------
    >>> with prepare_options(retry=True):  # doctest: +SKIP
    ...     meg.prepare(events, store, executor=SlurmExecutor())
    """
    unknown = sorted(set(options) - {"retry", "raise_on_error", "claim_ttl"})
    if unknown:
        raise TypeError(
            f"prepare_options: unknown option {unknown[0]!r}; use retry, raise_on_error, claim_ttl"
        )
    token = _OPTIONS.set(tuple({**dict(_OPTIONS.get()), **options}.items()))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


#: Reason recorded for the items of a job that ended in a given state without a manifest.
_REASONS = {
    "TIMEOUT": "timeout",
    "CANCELLED": "cancelled",
    "OUT_OF_MEMORY": "out of memory",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failure",
    "DEADLINE": "timeout",
    "FAILED": "failed",
    "CRASHED": "crashed",
    "COMPLETED": "lost",
    "LOST": "lost",
}


class PrepareError(RuntimeError):
    """Some items failed during ``prepare``; ``report`` lists them with their tracebacks."""

    def __init__(self, message: str, report: PrepareReport) -> None:
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class PrepareReport:
    """Outcome of ``prepare``.

    Attributes
    ----------
    total
        Distinct items needed.
    cached
        Items already stored before this run.
    recovered
        Items committed from manifests left by an earlier driver (not recomputed).
    computed
        Items computed by this run's jobs.
    others
        Items computed meanwhile by another driver (claimed by it).
    failed
        ``(label, error text)`` per failed item.
    errors
        The failures as :class:`~neuralset.execution.records.ItemError` (reason, job id, log).
    jobs
        Final job states and their counts (``{"COMPLETED": 3, "TIMEOUT": 1}``).
    """

    total: int = 0
    cached: int = 0
    computed: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    recovered: int = 0
    others: int = 0
    errors: list[ItemError] = dataclasses.field(default_factory=list)
    jobs: dict[str, int] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        extra = "".join(
            f", {n} {what}"
            for n, what in ((self.recovered, "recovered"), (self.others, "by another driver"))
            if n
        )
        jobs = (
            f"; jobs: {', '.join(f'{v} {k}' for k, v in sorted(self.jobs.items()))}"
            if self.jobs
            else ""
        )
        return (
            f"{self.total} items: {self.cached} already stored, {self.computed} computed{extra}, "
            f"{len(self.failed)} failed ({self.seconds:.1f} s){jobs}"
        )

    def describe_failures(self, limit: int = 20) -> str:
        """One line per failed item (which item, why, which job and log)."""
        lines = [e.summary() for e in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"... and {len(self.errors) - limit} more")
        return "\n".join(lines)

    def _fail(self, error: ItemError) -> None:
        self.errors.append(error)
        self.failed.append((error.label, error.error))


def _state_summary(states: list[str]) -> str:
    counts = Counter(
        "active" if s in ("UNKNOWN", "READY", "CONFIGURING") else s.lower() for s in states
    )
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def _resolve_options(
    retry: bool | None, raise_on_error: bool | None, claim_ttl: float | None
) -> tuple[bool, bool, float]:
    """The options of :func:`run_prepare`: given, else from :func:`prepare_options`, else defaults."""
    context = dict(_OPTIONS.get())
    return (
        bool(context.get("retry", False) if retry is None else retry),
        bool(context.get("raise_on_error", True) if raise_on_error is None else raise_on_error),
        float(context.get("claim_ttl", 300.0) if claim_ttl is None else claim_ttl),
    )


def run_prepare(
    extractor: Preparable[ItemT],
    events: pd.DataFrame,
    store: Store,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    raise_on_error: bool | None = None,
    retry: bool | None = None,
    claim_ttl: float | None = None,
) -> PrepareReport:
    """Prepare ``extractor`` on ``events``: compute the missing items and commit them.

    Parameters
    ----------
    extractor
        The extractor (any :class:`~neuralset.execution.protocols.Preparable`: its ``items``,
        ``compute_many``, ``batch_size``, ``requires_gpu`` and ``fit`` are used).
    events
        Validated events table.
    store
        Where items are stored.
    executor
        How to run (:class:`InlineExecutor` by default; ``LocalExecutor``, ``SlurmExecutor``,
        ``AutoExecutor``). It is asked for the extractor's resources
        (:meth:`~neuralset.execution.executors.Executor.for_extractor`).
    progress
        Show progress (items, job states).
    raise_on_error
        Raise :class:`PrepareError` listing the failures at the end (else only report them).
        Default True.
    retry
        Recompute only the items that failed before (those with an error entry). Default False.
    claim_ttl
        Seconds after which a claim whose holder stopped refreshing it may be taken over.
        Default 300.

    Options left to ``None`` take their value from an enclosing :func:`prepare_options` block,
    else the defaults above.

    Returns
    -------
    PrepareReport
    """
    t0 = time.perf_counter()
    started = time.time()
    retry, raise_on_error, claim_ttl = _resolve_options(retry, raise_on_error, claim_ttl)
    executor = (executor or InlineExecutor()).for_extractor(extractor)
    report, todo = _plan(extractor.items(events), store, retry)
    run = uuid.uuid4().hex[:12]
    claims = Claims(store.root / "claims", owner=run, ttl=claim_ttl)
    run_dir = store.root / "manifests" / run
    while todo:
        mine = set(claims.acquire(i.key for i in todo))
        if mine:
            claimed = [i for i in todo if i.key in mine]
            _run_round(extractor, store, executor, claimed, claims, run_dir, report, progress)
        else:  # all held by others (or a takeover in progress): do not spin
            time.sleep(executor.poll_s)
        foreign = [i for i in todo if i.key not in mine]
        todo = _wait_for_others(store, claims, foreign, report, started, executor.poll_s)
    extractor.fit(events, store)
    report.seconds = time.perf_counter() - t0
    if report.errors and raise_on_error:
        raise PrepareError(
            f"{len(report.errors)} of {report.total} items failed in {type(extractor).__name__}.prepare "
            f"(fix the cause, then prepare again; retry=True recomputes only the failed items):\n"
            f"{report.describe_failures()}\nfirst traceback:\n{report.errors[0].error}",
            report,
        )
    return report


def _plan(items: Sequence[ItemT], store: Store, retry: bool) -> tuple[PrepareReport, list[ItemT]]:
    """The report's first counts and the items to compute, after recovering old manifests.

    Manifests left behind by drivers that died (or that are running right now) are committed
    first: their items are not computed again. In ``retry`` mode only the missing items with
    an error entry are computed.
    """
    unique = list({item.key: item for item in items}.values())
    keys = [i.key for i in unique]
    before = set(store.missing(keys))
    manifests = store.root / "manifests"
    if manifests.exists():
        commit_manifests(
            store, sorted(p for p in manifests.iterdir() if p.is_dir()), remove_empty=True
        )
    missing = set(store.missing(keys)) if before else before
    report = PrepareReport(total=len(unique), cached=len(unique) - len(before))
    report.recovered = len(before) - len(missing)
    wanted = {e.key for e in read_errors(store, missing)} if retry else missing
    return report, [i for i in unique if i.key in wanted]


def _run_round(
    extractor: Preparable[ItemT],
    store: Store,
    executor: Executor,
    items: list[ItemT],
    claims: Claims,
    run_dir: Path,
    report: PrepareReport,
    progress: bool,
) -> None:
    """Compute ``items`` (all claimed by this driver) through ``executor``; commit; report."""
    started = time.time()
    chunks = split_chunks(items, executor.n_chunks(len(items), extractor.batch_size))
    fn = functools.partial(
        work_chunk, extractor, store, str(run_dir), str(claims.root), claims.ttl, claims.owner
    )
    name = type(extractor).__name__
    try:
        jobs: Jobs = executor.start(fn, chunks, folder=store.root / "slurm", name=name)
    except BaseException:  # nothing started: let others (or a rerun) compute these items
        claims.release(item.key for item in items)
        raise
    round_ = _Round(store, claims, run_dir, report, chunks, jobs, started)
    states = round_.follow(executor.poll_s, progress=progress, desc=f"prepare {name}")
    round_.settle(states)


class _Round:
    """The jobs of one round (one per chunk of items claimed by this driver), followed to the end."""

    def __init__(
        self,
        store: Store,
        claims: Claims,
        run_dir: Path,
        report: PrepareReport,
        chunks: list[list[ItemT]],
        jobs: Jobs,
        started: float,
    ) -> None:
        self.store, self.claims, self.run_dir, self.report = store, claims, run_dir, report
        self.items: list[WorkItem] = [item for chunk in chunks for item in chunk]
        self.chunk_of = {item.key: c for c, chunk in enumerate(chunks) for item in chunk}
        self.jobs, self.started = jobs, started
        self.settled: set[str] = set()

    def follow(self, poll_s: float, *, progress: bool, desc: str) -> list[str]:
        """Commit manifests as they appear until every job is final; return the final states."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(self.items), desc=desc, unit="item", disable=not progress)
        last_refresh = time.time()
        try:
            while True:
                states = self.jobs.states()
                finished = all(s not in ACTIVE_STATES for s in states)
                bar.update(self._commit())
                bar.set_postfix_str(f"jobs: {_state_summary(states)}", refresh=False)
                if finished:
                    return states
                if time.time() - last_refresh > self.claims.ttl / 4:
                    self.claims.refresh(k for k in self.chunk_of if k not in self.settled)
                    last_refresh = time.time()
                if self.jobs.sleeps:
                    time.sleep(poll_s)
        finally:
            bar.close()
            self.jobs.close()

    def _commit(self) -> int:
        """Commit this run's manifests; the number of items settled (stored or failed)."""
        committed, errors, _ = commit_manifests(self.store, [self.run_dir], log_of=self.jobs.log)
        self.report.computed += len(committed)
        for err in errors:
            self.report._fail(err)
        self.settled.update(committed)
        self.settled.update(e.key for e in errors)
        return len(committed) + len(errors)

    def settle(self, states: list[str]) -> None:
        """Account for every item once the jobs are final, then release the claims."""
        report = self.report
        report.jobs.update(Counter(report.jobs) + Counter(s.split()[0] for s in states))
        self._settled_elsewhere()
        self._fail_unfinished(states)
        self.claims.release(self.chunk_of)
        try:
            self.run_dir.rmdir()
        except OSError:
            pass

    def _settled_elsewhere(self) -> None:
        """Items committed (or failed) by another driver, which recovers every manifest."""
        unsettled = [i.key for i in self.items if i.key not in self.settled]
        if not unsettled:
            return
        still = set(self.store.missing(unsettled))
        self.report.computed += len(unsettled) - len(still)
        self.settled.update(k for k in unsettled if k not in still)
        for err in read_errors(self.store, still):
            if err.time >= self.started:
                self.report._fail(err)
                self.settled.add(err.key)

    def _fail_unfinished(self, states: list[str]) -> None:
        """Error entries for the items of jobs that ended without their manifest.

        Such a job was killed (timeout, out of memory, ``scancel``), crashed, or raised.
        """
        jobs = self.jobs
        for item in self.items:
            if item.key in self.settled:
                continue
            c = self.chunk_of[item.key]
            state = states[c]
            text = (
                jobs.failure(c)
                or f"job {jobs.ids[c]} ended in state {state} before computing this item"
            )
            error = ItemError(
                item.key,
                item.label,
                _REASONS.get(state, state.lower()),
                text,
                job_id=jobs.ids[c],
                log=jobs.log(jobs.ids[c]),
                time=time.time(),
            )
            write_error(self.store, error)
            self.report._fail(error)


def _wait_for_others(
    store: Store,
    claims: Claims,
    items: list[ItemT],
    report: PrepareReport,
    started: float,
    poll_s: float,
) -> list[ItemT]:
    """Wait until items claimed by other drivers are stored; return those whose claim lapsed."""
    manifests = store.root / "manifests"
    pending = list(items)
    while pending:
        if manifests.exists():
            commit_manifests(store, sorted(p for p in manifests.iterdir() if p.is_dir()))
        missing = set(store.missing(i.key for i in pending))
        report.others += sum(1 for i in pending if i.key not in missing)
        pending = [i for i in pending if i.key in missing]
        if not pending:
            break
        new_errors = {e.key: e for e in read_errors(store, missing) if e.time >= started}
        lapsed = []
        for item in pending:
            if item.key in new_errors:
                report._fail(new_errors[item.key])
            elif not claims.is_live(item.key):
                lapsed.append(item)
        live = [i for i in pending if i.key not in new_errors and i not in lapsed]
        if not live:
            return lapsed
        pending = live + lapsed
        time.sleep(poll_s)
    return []
