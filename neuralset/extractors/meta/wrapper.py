"""The base of extractors built on other extractors: keys, prepare, windows, time aggregation.

A wrapper holds one or several *inner* extractors (config fields). Its key chains the inner
extractors' ``prepare_key`` with its own fields, and ``prepare`` prepares each inner extractor
first (through the executor given, under the inner's own keys: an inner extractor prepared
alone is found in the store, not recomputed), then the wrapper's own items, if any (a fitted
PCA, convolved regressors). Reading reads the inner extractors and transforms their outputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config
from ...hashing import class_identity, keyed_fields, legacy_mode, structural_key
from ...memo import Slot, frozen_memo
from ...segments import Segments
from ...store import Store
from ..base import Extractor
from ..event_features import EventFeatureExtractor

__all__ = [
    "Wrapper",
    "own_vectors",
    "with_windows",
    "aggregate_time",
    "merge_reports",
    "TimeAggregation",
]

#: :attr:`Wrapper.prepare_key`, per the inner extractors' keys.
_WRAPPER_KEY: Slot[str] = Slot("wrapper prepare key per inner keys")

TimeAggregation = Literal["mean", "max", "sum", "first", "last"]


@config
class Wrapper(Extractor):
    """An extractor computed from other extractors (the fields named in :attr:`inner_fields`).

    ``output`` and ``frequency`` follow the inner extractor unless the subclass says otherwise
    (:meth:`_derived`); ``event_type`` is the inner extractor's. The base's ``_check`` runs
    first (neuralset runs every class's ``_check``, base first), so a subclass's own checks see
    the derived values.
    """

    #: fields holding the inner extractor(s): an :class:`Extractor` or a tuple of them
    inner_fields: ClassVar[tuple[str, ...]] = ("extractor",)
    #: fields set from the inner extractors (left out of the wrapper's own key)
    derived_fields: ClassVar[tuple[str, ...]] = ("output", "frequency")

    def inners(self) -> tuple[Extractor, ...]:
        """The inner extractors, in field order."""
        out: list[Extractor] = []
        for name in self.inner_fields:
            value = getattr(self, name)
            out.extend(value if isinstance(value, tuple) else (value,))
        return tuple(out)

    def _check(self) -> None:
        name = type(self).__name__
        if self.event_type:
            raise ConfigError(
                f"{name}.event_type: a wrapper reads the events of its inner extractor; "
                f"leave event_type empty (got {self.event_type!r})"
            )
        for value in self._derived().items():
            object.__setattr__(self, value[0], value[1])

    def _derived(self) -> dict[str, Any]:
        """Values of :attr:`derived_fields` (default: the first inner extractor's)."""
        inners = self.inners()
        return {f: getattr(inners[0], f) for f in self.derived_fields} if inners else {}

    @property
    def resolved_event_type(self) -> str:
        return self.inners()[0].resolved_event_type

    @property
    def requires_gpu(self) -> bool:
        """Whether an inner extractor computes on CUDA (its prepare asks SLURM for a GPU)."""
        return False  # the wrapper's own items never do; inner prepares decide for themselves

    @property
    def prepare_key(self) -> str:
        """The wrapper's own keyed fields chained with each inner extractor's ``prepare_key``."""
        inner_keys = tuple(inner.prepare_key for inner in self.inners())
        if legacy_mode():  # migrating a store: old-format keys, never memoised
            return self._wrapper_key(inner_keys)
        return frozen_memo(self).get_or_set(
            _WRAPPER_KEY, lambda: self._wrapper_key(inner_keys), inner_keys
        )

    def _wrapper_key(self, inner_keys: tuple[str, ...]) -> str:
        cls = type(self)
        exclude = self.read_fields + self.inner_fields + self.derived_fields + ("event_type",)
        own = keyed_fields(self, exclude=exclude)
        return structural_key((class_identity(cls), cls._version, own, inner_keys))

    # -- prepare --------------------------------------------------------------------------
    def items(self, events: pd.DataFrame) -> list[Any]:
        """The wrapper's own items (none by default: everything is in the inner extractors)."""
        return []

    def prepare(
        self,
        events: pd.DataFrame,
        store: Store | None = None,
        *,
        executor: Any = None,
        progress: bool = True,
        retry: bool | None = None,
    ) -> Any:
        """Check, prepare every inner extractor, then the wrapper's own items.

        Returns
        -------
        PrepareReport
            The sum of the inner reports and the wrapper's own.
        """
        store = store or Store()
        self.preflight(events, store)
        options = {"executor": executor, "progress": progress, "retry": retry}
        reports = [inner.prepare(events, store, **options) for inner in self.inners()]
        reports.append(self.prepare_own(events, store, **options))
        return merge_reports(reports)

    def prepare_own(
        self, events: pd.DataFrame, store: Store, *, executor: Any, progress: bool, retry: Any
    ) -> Any:
        """Compute the wrapper's own missing items (after the inner extractors are stored)."""
        from ...execution import run_prepare

        return run_prepare(self, events, store, executor=executor, progress=progress, retry=retry)

    def is_prepared(self, events: pd.DataFrame, store: Store) -> list[str]:
        missing: list[str] = []
        for inner in self.inners():
            missing += inner.is_prepared(events, store)
        return missing + super().is_prepared(events, store)


def own_vectors(extractor: Extractor, etype: str) -> Extractor:
    """``extractor`` reading each ``etype`` event's own vector on its span: event-feature
    extractors of that type (also in wrappers) with ``aggregation="trigger"`` (a read field)."""
    if isinstance(extractor, EventFeatureExtractor):
        same = extractor.resolved_event_type == etype
        return extractor.replace(aggregation="trigger") if same else extractor
    if not isinstance(extractor, Wrapper):
        return extractor
    own = {f: getattr(extractor, f) for f in extractor.inner_fields}
    return extractor.replace(
        **{
            f: tuple(own_vectors(e, etype) for e in v)
            if isinstance(v, tuple)
            else own_vectors(v, etype)
            for f, v in own.items()
        }
    )


def with_windows(segments: Segments, start: np.ndarray, duration: np.ndarray) -> Segments:
    """The same segments (events, timelines, triggers, shared event index) with other windows
    (:meth:`Segments.with_windows <neuralset.segments.Segments.with_windows>`)."""
    return segments.with_windows(
        np.ascontiguousarray(start, dtype=np.float64),
        np.ascontiguousarray(duration, dtype=np.float64),
    )


def aggregate_time(data: np.ndarray, mask: np.ndarray | None, how: str) -> np.ndarray:
    """``(n, *features, time)`` -> ``(n, *features)``, over the valid samples of ``mask``.

    ``mask`` is ``(n, time)`` (True where samples are real) or None (all real). ``"mean"``,
    ``"max"`` and ``"sum"`` use the valid samples only; ``"first"`` and ``"last"`` take the
    first and last valid sample. A window without any valid sample gives 0.
    """
    n, n_times = data.shape[0], data.shape[-1]
    if mask is None:
        mask = np.ones((n, n_times), dtype=bool)
    shape = (n,) + (1,) * (data.ndim - 2) + (n_times,)
    valid = mask.reshape(shape)
    count = mask.sum(axis=1).reshape(shape[:-1])
    if how in ("mean", "sum"):
        total = np.where(valid, data, 0).sum(axis=-1, dtype=np.float64)
        out = total / np.maximum(count, 1) if how == "mean" else total
    elif how == "max":
        out = np.where(valid, data, -np.inf).max(axis=-1, initial=-np.inf)
        out = np.where(count > 0, out, 0.0)
    else:
        has = mask.any(axis=1)
        pos = (
            np.argmax(mask, axis=1)
            if how == "first"
            else n_times - 1 - np.argmax(mask[:, ::-1], axis=1)
        )
        pos = np.where(has, pos, 0)
        out = np.take_along_axis(data, pos.reshape(shape[:-1] + (1,)), axis=-1)[..., 0]
        out = np.where(has.reshape(shape[:-1]), out, 0.0)
    return np.ascontiguousarray(out, dtype=np.float32)


def merge_reports(reports: Sequence[Any]) -> Any:
    """One :class:`~neuralset.execution.PrepareReport` summing several."""
    from ...execution import PrepareReport

    out = PrepareReport()
    jobs: Counter[str] = Counter()
    for r in reports:
        out.total += r.total
        out.cached += r.cached
        out.computed += r.computed
        out.recovered += r.recovered
        out.others += r.others
        out.seconds += r.seconds
        out.failed.extend(r.failed)
        out.errors.extend(r.errors)
        jobs.update(r.jobs)
    out.jobs = dict(jobs)
    return out
