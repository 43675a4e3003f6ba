"""Cheap extractors for tests and benchmarks of the execution machinery.

* :class:`NoopExtractor` - one tiny value per event; measures the overhead of ``prepare``.
* :class:`SleepExtractor` - a recording extractor that stands for real work: it sleeps or spins
  the CPU for ``seconds`` per recording, can log each computation and fail on demand, and stores
  the bytes of the recording file (so results are deterministic and bitwise comparable).

Both live in an importable module: submitit and process pools pickle them by reference.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import config, register
from ..extractors.base import (
    Computed,
    Extractor,
    ExtractorNotPreparedError,
    Item,
    OutOfBounds,
    Output,
)
from ..extractors.recording import RecordingExtractor
from ..hashing import KEY_EXCLUDED
from ..segments import Segments
from ..store import Store
from ..validation import require

__all__ = ["NoopExtractor", "SleepExtractor"]


def _work(seconds: float, busy: bool) -> None:
    if seconds <= 0:
        return
    if not busy:
        time.sleep(seconds)
        return
    deadline = time.process_time() + seconds  # CPU time: slower when cores are shared
    x = 0.0
    while time.process_time() < deadline:
        for i in range(10_000):
            x += i * 1e-9


@register("noop")
@config
class NoopExtractor(Extractor):
    """One item per event of ``event_type``; computing an item costs nothing.

    The stored value is the event's start (a float), so results can still be checked:
    :meth:`read` returns it for each segment's trigger event, ``(batch,)`` float32.
    """

    default_event_type: ClassVar[str] = "Stimulus"

    output: Literal["dynamic", "static"] = "static"

    def _check(self) -> None:
        require(
            self.output == "static", self, "output", "it stores one number per event; use 'static'"
        )

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        return self._items(events, rows)

    def _items(self, events: pd.DataFrame, rows: np.ndarray) -> list[Item]:
        timelines = events["timeline"].astype(str).to_numpy()[rows]
        starts = events["start"].to_numpy()[rows]
        durations = events["duration"].to_numpy()[rows]
        return [
            Item(
                key=self.item_key(str(tl), float(s), float(d)),
                label=f"{tl}@{s:g}",
                payload=float(s),
            )
            for tl, s, d in zip(timelines, starts, durations)
        ]

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        return [Computed(value=item.payload) for item in items]

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        rows = segments.trigger
        types = segments.events["type"].to_numpy()
        if (rows < 0).any() or (types[np.maximum(rows, 0)] != self.resolved_event_type).any():
            raise ValueError(
                f"NoopExtractor: needs segments triggered on {self.resolved_event_type} events"
            )
        values = []
        for item in self._items(segments.events, rows):
            if not store.has(item.key):
                raise ExtractorNotPreparedError(
                    f"NoopExtractor has no stored value for {item.label}; call prepare first"
                )
            values.append(store.get_value(item.key))
        return Output(data=np.asarray(values, dtype=np.float32))


@register("sleep")
@config
class SleepExtractor(RecordingExtractor):
    """A recording extractor whose cost and failures are controlled (tests, benchmarks).

    Stores the recording file's bytes as ``data[time, 1]`` (float32) at ``frequency`` Hz
    (1 Hz by default). None of the parameters below changes results, so none is in the key.

    Parameters
    ----------
    seconds
        Work per recording.
    busy
        Spin the CPU for ``seconds`` of CPU time instead of sleeping.
    log
        Append ``"<pid> <file>"`` to this file for every computed recording.
    fail_marker
        While this file exists, computing the recordings named in ``fail_labels`` (all when
        empty) raises ``RuntimeError``.
    fail_labels
        Substrings of the recording paths that fail while ``fail_marker`` exists.
    fail_mode
        ``"raise"`` a ``RuntimeError``, ``"setup"`` a
        :class:`~neuralset.execution.ComputeSetupError` (what a model that cannot be loaded
        raises; logged as ``"<pid> setup <file>"``), or ``"exit"`` the process at once (a
        crashed or OOM-killed worker).
    """

    default_event_type: ClassVar[str] = "Meg"

    seconds: float = dataclasses.field(default=0.0, metadata=KEY_EXCLUDED)
    busy: bool = dataclasses.field(default=False, metadata=KEY_EXCLUDED)
    log: Path | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    fail_marker: Path | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    fail_labels: tuple[str, ...] = dataclasses.field(default=(), metadata=KEY_EXCLUDED)
    fail_mode: Literal["raise", "setup", "exit"] = dataclasses.field(
        default="raise", metadata=KEY_EXCLUDED
    )

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        path = str(payload["path"])
        if self.fail_marker is not None and self.fail_marker.exists():
            if not self.fail_labels or any(label in path for label in self.fail_labels):
                if self.fail_mode == "exit":
                    os._exit(3)
                if self.fail_mode == "setup":
                    from ..execution.records import ComputeSetupError

                    self._log(f"setup {path}")
                    raise ComputeSetupError(f"SleepExtractor: cannot set up for {path}")
                raise RuntimeError(
                    f"SleepExtractor: failing on {path} while {self.fail_marker} exists"
                )
        _work(self.seconds, self.busy)
        self._log(path)
        data = np.fromfile(path, dtype=np.uint8).astype(np.float32)[:, None]
        return data, float(self.frequency or 1.0), {"source_bytes": int(data.shape[0])}

    def _log(self, line: str) -> None:
        if self.log is not None:
            with open(self.log, "a") as fh:
                fh.write(f"{os.getpid()} {line}\n")
