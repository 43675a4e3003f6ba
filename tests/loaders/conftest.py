"""Shared fixtures for the loader tests: a real RecordingExtractor over ramp recordings.

Each recording is a ``.npy`` file; channel ``c`` at sample ``s`` holds ``t + 1000 * c`` where
``t = rec_start + s / sfreq`` is the sample's time on the timeline, so any window read back
can be checked against its own time grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from neuralset.config import config
from neuralset.events import validate_events
from neuralset.extractors.recording import RecordingExtractor
from neuralset.loaders import SegmentDataset
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

SFREQ = 50.0
N_CHANNELS = 3


@config
class RampExtractor(RecordingExtractor):
    """Reads a ramp recording from a .npy file (time-major) at its event's frequency."""

    default_event_type = "Meg"

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        data = np.load(payload["path"])
        return data, SFREQ, {"n_channels": data.shape[1]}


def ramp(rec_start: float, n_samples: int) -> np.ndarray:
    t = rec_start + np.arange(n_samples) / SFREQ
    return (t[:, None] + 1000.0 * np.arange(N_CHANNELS)[None, :]).astype(np.float32)


def expected_window(start: float, n_times: int) -> np.ndarray:
    t = start + np.arange(n_times) / SFREQ
    return (1000.0 * np.arange(N_CHANNELS)[:, None] + t[None, :]).astype(np.float32)


def make_events(
    root: Path, n_timelines: int = 2, duration: float = 20.0, word_every: float = 0.5
) -> pd.DataFrame:
    rows = []
    for k in range(n_timelines):
        rec_start = 1.0 + k  # recordings do not start at 0
        path = root / f"rec{k}.npy"
        np.save(path, ramp(rec_start, int(duration * SFREQ)))
        tl = f"sub-{k}"
        rows.append(
            dict(
                type="Meg",
                start=rec_start,
                duration=duration,
                timeline=tl,
                filepath=path.name,
                frequency=SFREQ,
            )
        )
        for j, onset in enumerate(
            np.arange(rec_start + 0.1, rec_start + duration - 0.05, word_every)
        ):
            rows.append(
                dict(type="Word", start=float(onset), duration=0.2, timeline=tl, text=f"w{j}")
            )
    table = pd.DataFrame(rows)
    table["study_root"] = str(root)
    return validate_events(table)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ramp")
    events = make_events(root)
    store = Store(root / "store")
    segments = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8).require("Meg")
    return {"root": root, "events": events, "store": store, "segments": segments}


@pytest.fixture(scope="module")
def dataset(setup: dict[str, Any]) -> SegmentDataset:
    """The ramp segments that have a recording, read by :class:`RampExtractor`, prepared (a
    test module may define its own ``dataset``)."""
    segs = setup["segments"]
    ds = SegmentDataset(
        segs.select(segs.covering("Meg") >= 0),
        {"meg": RampExtractor(frequency=SFREQ)},
        setup["store"],
    )
    ds.prepare(progress=False)
    return ds
