"""The driver of ``prepare``: find missing items, compute them through an executor, commit.

Workers only write array files and return records; the driver process is the only one that
writes the store index.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from ..config import Config, config, register
from ..store import Store, provenance

__all__ = ["InlineExecutor", "PrepareReport", "PrepareError", "run_prepare", "compute_chunk"]


class PrepareError(RuntimeError):
    """Some items failed during ``prepare``; ``report`` lists them with their tracebacks."""

    def __init__(self, message: str, report: PrepareReport) -> None:
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class PrepareReport:
    """Outcome of ``prepare``: counts and the failures (label, error text)."""

    total: int = 0
    cached: int = 0
    computed: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.total} items: {self.cached} already stored, {self.computed} computed, "
            f"{len(self.failed)} failed ({self.seconds:.1f} s)"
        )


def compute_chunk(extractor: Any, store: Store, items: Sequence[Any]) -> list[tuple[str, dict[str, Any] | None, str]]:
    """Compute a chunk of items and stage their files; return ``(key, record, error)`` per item.

    Runs in workers: it never writes the index. A failing batch is retried item by item so that
    one bad item does not fail its neighbours.
    """
    out: list[tuple[str, dict[str, Any] | None, str]] = []
    try:
        results = extractor.compute_many(items)
        pairs = list(zip(items, results))
    except Exception:
        if len(items) == 1:
            return [(items[0].key, None, traceback.format_exc())]
        pairs = []
        for item in items:
            try:
                pairs.append((item, extractor.compute_many([item])[0]))
            except Exception:
                out.append((item.key, None, traceback.format_exc()))
    for item, computed in pairs:
        prov = provenance(extractor, source=item.label, item_key=item.key)
        if computed.arrays:
            record = store.stage_arrays(item.key, computed.arrays, meta=computed.meta, label=item.label, prov=prov)
            if computed.value is not None:
                record["value"] = computed.value
        else:
            record = {
                "kind": "value",
                "value": computed.value,
                "meta": dict(computed.meta),
                "label": item.label,
                "provenance": prov,
                "nbytes": 0,
            }
        out.append((item.key, record, ""))
    return out


@register("inline")
@config
class InlineExecutor(Config):
    """Run everything in the calling process (the default; easiest to debug)."""

    def map_chunks(
        self, fn: Callable[[Sequence[Any]], list[Any]], chunks: list[list[Any]]
    ) -> Iterator[list[Any]]:
        for chunk in chunks:
            yield fn(chunk)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_prepare(
    extractor: Any,
    events: pd.DataFrame,
    store: Store,
    *,
    executor: Any = None,
    progress: bool = True,
    raise_on_error: bool = True,
) -> PrepareReport:
    """Prepare ``extractor`` on ``events``: compute the missing items and commit them."""
    import functools

    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    items = extractor.items(events)
    unique = list({item.key: item for item in items}.values())
    missing_keys = set(store.missing([i.key for i in unique]))
    todo = [i for i in unique if i.key in missing_keys]
    report = PrepareReport(total=len(unique), cached=len(unique) - len(todo))
    executor = executor or InlineExecutor()
    if todo:
        fn = functools.partial(compute_chunk, extractor, store)
        chunks = executor.chunk(todo, extractor.batch_size) if hasattr(executor, "chunk") else _chunks(todo, extractor.batch_size)
        labels = {i.key: i.label for i in todo}
        bar = tqdm(total=len(todo), desc=f"prepare {type(extractor).__name__}", unit="item", disable=not progress)
        for results in executor.map_chunks(fn, chunks):
            for key, record, error in results:
                if record is None:
                    report.failed.append((labels.get(key, key), error))
                else:
                    store.commit(key, record)
                    report.computed += 1
            bar.update(len(results))
        bar.close()
    extractor.fit(events, store)
    report.seconds = time.perf_counter() - t0
    if report.failed and raise_on_error:
        first_label, first_error = report.failed[0]
        raise PrepareError(
            f"{len(report.failed)} of {len(todo)} items failed in {type(extractor).__name__}.prepare; "
            f"first: {first_label}\n{first_error}",
            report,
        )
    return report
