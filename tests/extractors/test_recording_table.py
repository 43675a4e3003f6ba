"""The per-dataset table of recording keys and open arrays: when source files are checked
again, what this process's own writes do, the store cache's bounds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuralset.extractors import recording_table
from neuralset.extractors.base import ExtractorNotPreparedError
from neuralset.loaders import SegmentDataset
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.store.mapped import MAPPED, revalidate
from tests.loaders.conftest import SFREQ, RampExtractor, expected_window, make_events


@pytest.fixture
def study(tmp_path: Path) -> dict[str, Any]:
    events = make_events(tmp_path, n_timelines=4, duration=10.0)
    segments = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8).require("Meg")
    segments = segments.select(segments.covering("Meg") >= 0)
    store = Store(tmp_path / "store")
    extractor = RampExtractor(frequency=SFREQ)
    extractor.prepare(events, store, progress=False)
    return {"root": tmp_path, "events": events, "segments": segments, "store": store,
            "extractor": extractor}  # fmt: skip


@pytest.fixture
def recheck(request: pytest.FixtureRequest) -> Iterator[None]:
    """``MAPPED.recheck_s`` set to the test's parameter for the test's duration."""
    before = MAPPED.recheck_s
    MAPPED.recheck_s = float(request.param)
    yield
    MAPPED.recheck_s = before


def _replace(root: Path, k: int = 0) -> None:
    """Rewrite recording ``k`` with its signal doubled (a new file under the same name)."""
    path = root / f"rec{k}.npy"
    data = 2 * np.load(path)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, data)
    os.replace(tmp, path)


def _windows(study: dict[str, Any], which: np.ndarray) -> np.ndarray:
    return study["extractor"].read(study["segments"].select(which), study["store"]).data


def _first_of_each(segments: Any) -> np.ndarray:
    """Positions of the first segment of each timeline (one per recording)."""
    return np.unique(segments.timeline, return_index=True)[1]


@pytest.mark.parametrize("recheck", [3600], indirect=True)
def test_prepare_in_this_process_is_seen_at_once(study: dict[str, Any], recheck: None) -> None:
    which = _first_of_each(study["segments"])
    before = _windows(study, which)
    _replace(study["root"], 0)
    # the files are not checked again for an hour, but this process's prepare revalidates
    report = study["extractor"].prepare(study["events"], study["store"], progress=False)
    assert report.computed == 1
    after = _windows(study, which)
    np.testing.assert_array_equal(after[0], 2 * before[0])
    np.testing.assert_array_equal(after[1:], before[1:])


def _wait_past_recheck() -> None:
    import time

    time.sleep(0.25)


@pytest.mark.parametrize(
    ("recheck", "rec", "between"),
    [
        (3600, 0, revalidate),  # revalidate(): the next read checks the files
        (0, 1, lambda: None),  # recheck_s=0: every read checks
        (0.2, 2, _wait_past_recheck),  # noticed once recheck_s has passed
    ],
    indirect=["recheck"],
)
def test_a_replaced_file_is_noticed(
    study: dict[str, Any], recheck: None, rec: int, between: Any
) -> None:
    which = _first_of_each(study["segments"])
    _windows(study, which)
    _replace(study["root"], rec)
    between()
    with pytest.raises(
        ExtractorNotPreparedError, match=rf"no stored data for Meg event .*rec{rec}"
    ):
        _windows(study, which)


@pytest.mark.parametrize("recheck", [3600], indirect=True)
def test_source_files_are_checked_once_per_recheck(
    study: dict[str, Any], recheck: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = recording_table.source_stamp

    def counting(path: str) -> Any:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(recording_table, "source_stamp", counting)
    segments = study["segments"]
    for start in range(0, len(segments) - 8, 8):
        _windows(study, np.arange(start, start + 8))
    assert sorted(calls) == sorted(str(study["root"] / f"rec{k}.npy") for k in range(4))
    MAPPED.recheck_s = 0.0
    _windows(study, _first_of_each(segments))
    assert len(calls) == 8  # every file once more


def test_recording_keys_of_other_rows_is_an_error(study: dict[str, Any]) -> None:
    events = study["events"]
    word = int(np.flatnonzero((events["type"] == "Word").to_numpy())[0])
    with pytest.raises(ValueError, match=rf"event rows \[{word}\] are not Meg events"):
        study["extractor"].recording_keys(study["segments"], np.array([word]))


def test_reads_keep_the_cache_bounds(study: dict[str, Any]) -> None:
    """More recordings in a batch than the cache may keep open: the batch is whole, and the
    cache closes what it must (the table only refers to its arrays weakly)."""
    segments, store = study["segments"], study["store"]
    ds = SegmentDataset(segments, {"meg": RampExtractor(frequency=SFREQ)}, store)
    which = _first_of_each(segments)
    before = MAPPED.max_count
    MAPPED.max_count = 2
    try:
        for _ in range(3):
            batch = ds.read(which)["data"]["meg"]
            assert len(MAPPED) <= 2
    finally:
        MAPPED.max_count = before
    for j, start in enumerate(segments.select(which).start):
        np.testing.assert_allclose(batch[j], expected_window(start, 40), rtol=1e-6)
