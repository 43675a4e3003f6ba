"""The driver of ``prepare``: find missing items, claim them, run chunks, commit manifests.

1. **Recover**: commit the manifests that earlier drivers left behind (a driver that died while
   its jobs ran, or was interrupted); those items are not recomputed. Stored entries whose
   files are missing or cut short are removed, to be computed again.
2. **Find** the missing items (one index query) - in ``retry`` mode only those with an error entry.
3. **Claim** them (:class:`~neuralset.execution.claims.Claims`): items claimed by another live
   driver are not computed here; the driver waits for them to appear in the store, and takes
   them over at once when that driver's processes have exited (``kill -9``, Ctrl-C, a crash;
   on this machine), or when its claim expires (``claim_ttl`` without a sign of life).
4. **Run**: split the claimed items into at most ``executor.max_jobs`` chunks of at least
   ``executor.min_items_per_job`` items and start one job per chunk (one SLURM array). Workers
   stage array files and write one manifest per batch; the driver commits manifests as they
   appear (progress of items and job states) until every job is in a final state.
5. **Report**: items of a job killed by the scheduler (timeout, out of memory, ``scancel``)
   or whose code raised get an error entry (traceback, job id, log); all failures are listed
   together in the :class:`PrepareReport` (and in the :class:`PrepareError` raised). What
   was recovered, taken over or waited for is said (``report.notes``, and on stderr with
   progress on).

Interrupting ``prepare`` (Ctrl-C) stops its workers at once (see
:mod:`neuralset.execution.rounds`), keeps what they finished and frees the rest.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..store import Store, StoreReadOnlyError
from .claims import Claims
from .executors import Executor, InlineExecutor
from .protocols import ItemT, Preparable
from .records import ItemError, commit_manifests, read_errors
from .rounds import run_round, say, wait_for_others

__all__ = ["InlineExecutor", "PrepareReport", "PrepareError", "run_prepare", "prepare_options"]

_OPTIONS: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "neuralset_prepare_options", default=()
)


@contextlib.contextmanager
def prepare_options(**options: Any) -> Any:
    """Defaults of :func:`run_prepare`'s options (``retry``, ``raise_on_error``, ``claim_ttl``)
    inside the block, also when ``prepare`` is reached through ``extractor.prepare(...)``.

    Parameters
    ----------
    **options
        ``retry``, ``raise_on_error`` or ``claim_ttl`` (any other name is a ``TypeError``).

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
    damaged
        Items whose stored files were found missing or cut short: recomputed, never counted
        as stored.
    failed
        ``(label, error text)`` per failed item.
    seconds
        Wall-clock duration of the run.
    errors
        The failures as :class:`~neuralset.execution.records.ItemError` (reason, job id, log).
    jobs
        Final job states and their counts (``{"COMPLETED": 3, "TIMEOUT": 1}``).
    notes
        What the run recovered or waited for (also printed when showing progress): manifests
        of an interrupted run committed, claims of exited processes taken over, damaged
        entries recomputed, an interruption.
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
    damaged: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        extra = "".join(
            f", {n} {what}"
            for n, what in (
                (self.recovered, "recovered"),
                (self.others, "by another driver"),
                (self.damaged, "damaged (recomputed)"),
            )
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

    Returns
    -------
    PrepareReport

    Notes
    -----
    Options left to ``None`` take their value from an enclosing :func:`prepare_options` block,
    else the defaults above.
    """
    t0 = time.perf_counter()
    started = time.time()
    retry, raise_on_error, claim_ttl = _resolve_options(retry, raise_on_error, claim_ttl)
    executor = (executor or InlineExecutor()).for_extractor(extractor)
    report, todo = _plan(extractor.items(events), store, retry, progress)
    run = uuid.uuid4().hex[:12]
    claims = Claims(store.root / "claims", owner=run, ttl=claim_ttl)
    run_dir = store.root / "manifests" / run
    if todo:
        store.check_writable()  # a read-only store: say so before any work
        claims.register()
    try:
        while todo:
            mine = set(claims.acquire(i.key for i in todo))
            _note_takeovers(claims, report, progress)
            if mine:
                claimed = [i for i in todo if i.key in mine]
                run_round(extractor, store, executor, claimed, claims, run_dir, report, progress)
            else:  # all held by others (or a takeover in progress): do not spin
                time.sleep(executor.poll_s)
            foreign = [i for i in todo if i.key not in mine]
            todo = wait_for_others(
                store, claims, foreign, report, started, executor.poll_s, progress
            )
    finally:
        claims.unregister()
        claims.forget_dead()
    extractor.fit(events, store)
    report.seconds = time.perf_counter() - t0
    if report.errors and raise_on_error:
        first = report.errors[0]
        cause = first.error.strip().splitlines()[-1] if first.error.strip() else first.reason
        raise PrepareError(
            f"{len(report.errors)} of {report.total} items failed in {type(extractor).__name__}.prepare"
            f" ({cause}); fix the cause, then prepare again (retry=True recomputes only the "
            f"failed items):\n{report.describe_failures()}\nfirst traceback:\n{first.error}",
            report,
        )
    return report


def _note_takeovers(claims: Claims, report: PrepareReport, progress: bool) -> None:
    """Say which claims of exited processes were just taken over."""
    for owner, n in claims.taken_over.items():
        note = f"took over {n} items claimed by prepare run {owner}, whose processes have exited"
        if note not in report.notes:
            say(report, note, progress)


def _refuse_damaged(store: Store, damaged: dict[str, str]) -> None:
    """Raise :class:`StoreReadOnlyError`: ``damaged`` entries cannot be recomputed here."""
    first = next(iter(damaged.values()))
    raise StoreReadOnlyError(
        f"{len(damaged)} of the entries to prepare are damaged in {store.root}, a read-only "
        f"store ({store.write_denied()}) where they cannot be computed again (first: {first}); "
        f"ask whoever maintains it to run `neuralset cache verify --fix --store {store.root}` "
        "then prepare again, or prepare into a writable store (Store(path) or NEURALSET_CACHE)"
    )


def _plan(
    items: Sequence[ItemT], store: Store, retry: bool, progress: bool = False
) -> tuple[PrepareReport, list[ItemT]]:
    """The report's first counts and the items to compute, after recovering old manifests.

    Manifests left behind by drivers that died (or that are running right now) are committed
    first: their items are not computed again. Stored entries whose files are missing or cut
    short are removed and computed again. In ``retry`` mode only the missing items with an
    error entry are computed.
    """
    unique = list({item.key: item for item in items}.values())
    keys = [i.key for i in unique]
    before = set(store.missing(keys))
    writable = store.write_denied() is None
    manifests = store.root / "manifests"
    if writable and manifests.exists():
        commit_manifests(
            store, sorted(p for p in manifests.iterdir() if p.is_dir()), remove_empty=True
        )
    missing = set(store.missing(keys)) if before else before
    damaged = store.damaged([k for k in keys if k not in missing])
    if damaged and not writable:
        _refuse_damaged(store, damaged)
    for key in damaged:
        store.delete(key)
    report = PrepareReport(total=len(unique), cached=len(unique) - len(before | set(damaged)))
    report.recovered = len(before - missing - set(damaged))
    report.damaged = len(damaged)
    if report.recovered:
        say(
            report,
            f"recovered {report.recovered} items finished by an interrupted prepare (their "
            "files were complete; committed, not computed again)",
            progress,
        )
    if damaged:
        first = next(iter(damaged.values()))
        say(report, f"recomputing {len(damaged)} damaged store entries (e.g. {first})", progress)
    missing |= set(damaged)
    wanted = {e.key for e in read_errors(store, missing)} | set(damaged) if retry else missing
    return report, [i for i in unique if i.key in wanted]
