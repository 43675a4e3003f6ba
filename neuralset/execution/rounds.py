"""The rounds of ``prepare``: the jobs of the items one driver claimed, followed to the end,
and the wait for the items other drivers claimed (see :mod:`neuralset.execution.prepare`).

An interrupted round (Ctrl-C, an exception in the driver) stops its jobs at once (local worker
processes are terminated, SLURM jobs cancelled), commits what they finished, releases the
claims of the rest and says so: a new ``prepare`` continues from there.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import Store
from .claims import Claims
from .executors import ACTIVE_STATES, Executor, Jobs, split_chunks
from .protocols import ItemT, Preparable, WorkItem
from .records import ItemError, commit_manifests, read_errors, work_chunk, write_error

if TYPE_CHECKING:
    from .prepare import PrepareReport

__all__ = ["run_round", "wait_for_others", "say"]

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


def say(report: PrepareReport, message: str, progress: bool) -> None:
    """Record ``message`` in ``report.notes``; print it (stderr) when showing progress."""
    report.notes.append(message)
    if progress:
        print(f"neuralset: {message}", file=sys.stderr, flush=True)


def _state_summary(states: list[str]) -> str:
    counts = Counter(
        "active" if s in ("UNKNOWN", "READY", "CONFIGURING") else s.lower() for s in states
    )
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def run_round(
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
    except BaseException as err:  # nothing started: let others (or a rerun) compute these items
        claims.release(item.key for item in items)
        if isinstance(err, KeyboardInterrupt):
            say(
                report,
                "prepare interrupted while starting its workers: nothing was computed "
                f"in this round, the {len(items)} items are free; run prepare again",
                True,
            )
        raise
    round_ = _Round(store, claims, run_dir, report, chunks, jobs, started)
    try:
        states = round_.follow(executor.poll_s, progress=progress, desc=f"prepare {name}")
    except BaseException as err:
        round_.interrupted(err, progress)
        raise
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
        """Commit manifests as they appear until every job is final; return the final states.

        Interrupted (Ctrl-C, an error here), the jobs still running are stopped first.
        """
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
        except BaseException:
            self.jobs.cancel()
            raise
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

    def interrupted(self, err: BaseException, progress: bool) -> None:
        """After an interruption: keep what the stopped jobs finished, free the rest, say so."""
        try:
            self._commit()
        except Exception:  # the store itself may be what failed: the next prepare recovers
            pass
        self.claims.release(self.chunk_of)  # stored, failed or free: none is held any more
        _remove_empty(self.run_dir)
        left = len(self.items) - len(self.settled)
        say(
            self.report,
            f"prepare interrupted ({type(err).__name__}): its workers are stopped; the "
            f"{self.report.computed} items computed so far are stored, {left} are not; run "
            "prepare again to compute them",
            True,  # an interruption is always said, progress bars or not
        )

    def settle(self, states: list[str]) -> None:
        """Account for every item once the jobs are final, then release the claims."""
        report = self.report
        report.jobs.update(Counter(report.jobs) + Counter(s.split()[0] for s in states))
        self._settled_elsewhere()
        self._fail_unfinished(states)
        self.claims.release(self.chunk_of)
        _remove_empty(self.run_dir)

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


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def wait_for_others(
    store: Store,
    claims: Claims,
    items: list[ItemT],
    report: PrepareReport,
    started: float,
    poll_s: float,
    progress: bool = False,
) -> list[ItemT]:
    """Wait until items claimed by other drivers are stored; return those whose claim lapsed
    (expired, or its owner's processes exited)."""
    manifests = store.root / "manifests"
    pending = list(items)
    told = False
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
        if not told:
            told = True
            say(report, _waiting_message(claims, live), progress)
        pending = live + lapsed
        claims.refresh(())  # this driver's holder file: it is alive
        time.sleep(poll_s)
    return []


def _waiting_message(claims: Claims, live: list[Any]) -> str:
    holders = Counter(claims.holder_of(i.key) for i in live)
    shown = "; ".join(f"{n} by {who}" for who, n in holders.most_common(3))
    return (
        f"waiting for {len(live)} items being computed by another prepare ({shown}); they are "
        f"taken over as soon as its processes exit, or after {claims.ttl:g} s without a sign "
        "of life"
    )
