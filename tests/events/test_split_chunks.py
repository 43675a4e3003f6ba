"""Chunking that respects split boundaries: no window over the pieces spans two splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.events.split_chunks import SplitChunks, split_regions
from neuralset.events.stimulus_splits import StimulusSplits
from neuralset.segments import sliding_windows

from .test_splits import presentations


def test_windows_over_the_pieces_never_span_two_splits() -> None:
    events = StimulusSplits(ratios=(0.6, 0.2, 0.2), keys={"Word": "sentence", "Sentence": "text"})(
        presentations(seed=2)
    )
    before = events.copy()
    pieces = SplitChunks(event_type="Meg", max_duration=20.0)(events)
    pd.testing.assert_frame_equal(events, before)
    meg = pieces[pieces["type"] == "Meg"]
    assert set(meg["split"]) == {"train", "val", "test"}
    assert (meg["duration"] <= 20.0 + 1e-9).all()
    windows = sliding_windows(pieces, duration=0.5, stride=0.25, blocks="Meg")
    assert len(windows) > 1000
    seg, rows = windows.overlapping("Word")
    word_split = pieces["split"].astype(str).to_numpy()[rows]
    block_split = (
        meg["split"]
        .astype(str)
        .to_numpy()[np.searchsorted(meg.index.to_numpy(), windows.covering("Meg")[seg])]
    )
    assert (word_split == block_split).all()  # every word of a window is of the window's split
    per_window = pd.Series(word_split).groupby(seg).nunique()
    assert per_window.max() == 1


def test_pieces_lie_on_the_sample_grid_and_keep_offsets() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Meg", "Word", "Word", "Word", "Word"],
                "start": [0.5, 1.0013, 2.0, 3.0, 3.5],
                "duration": [10.0, 0.5, 0.5, 0.4, 0.3],
                "timeline": "r",
                "filepath": ["r.fif"] + [None] * 4,
                "frequency": [100.0, 0, 0, 0, 0],
                "offset": [2.0, 0, 0, 0, 0],
                "text": [None, "a", "b", "c", "d"],
                "split": ["", "train", "train", "test", "test"],
            }
        )
    )
    out = SplitChunks()(events)
    meg = out[out["type"] == "Meg"].reset_index(drop=True)
    # train: [1.0013, 2.5) -> grid [1.01, 2.5); test: [3.0, 3.8)
    np.testing.assert_allclose(meg["start"], [1.01, 3.0])
    np.testing.assert_allclose(meg["duration"], [1.49, 0.8])
    np.testing.assert_allclose(meg["offset"], [2.51, 4.5])  # file time follows the cut
    assert meg["split"].tolist() == ["train", "test"]
    mid = SplitChunks(gap="midpoint")(events)
    meg = mid[mid["type"] == "Meg"].reset_index(drop=True)
    # the gap [2.5, 3.0) is shared at 2.75; the time before 1.0013 and after 3.8 goes to the edges
    np.testing.assert_allclose(meg["start"], [0.5, 2.75])
    np.testing.assert_allclose(meg["start"] + meg["duration"], [2.75, 10.5])


def test_time_of_two_splits_at_once_belongs_to_neither() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Sentence", "Sentence"],
                "start": [0.0, 1.0],
                "duration": [2.0, 2.0],
                "timeline": "r",
                "text": ["a", "b"],
                "split": ["train", "test"],
            }
        )
    )
    regions = split_regions(events, "split", exclude_type="Meg")
    assert regions[["start", "stop", "label"]].values.tolist() == [
        [0.0, 1.0, "train"],
        [2.0, 3.0, "test"],
    ]
    with pytest.raises(ConfigError, match="SplitChunks.event_type: no Meg events to cut"):
        SplitChunks()(events)
    with pytest.raises(ConfigError, match="SplitChunks.column: no column 'fold' in the events"):
        SplitChunks(column="fold")(events)


def _triggers(split: list[str]) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame(
            {
                "type": ["Meg"] + ["Stimulus"] * 6,
                "start": [0.0, 1.0, 2.0, 3.0, 6.0, 7.0, 8.0],
                "duration": [10.0] + [0.0] * 6,
                "timeline": "run-1",
                "filepath": ["r.fif"] + [None] * 6,
                "frequency": [100.0] + [0.0] * 6,
                "code": [None, 1, 1, 1, 2, 2, 2],
                "split": split,
            }
        )
    )


def test_instantaneous_events_mark_the_time_of_their_split() -> None:
    # triggers without a duration raised IndexError in split_regions
    events = _triggers(["", "train", "train", "train", "test", "test", "test"])
    meg = lambda out: out.loc[out["type"] == "Meg", ["start", "duration", "split"]]  # noqa: E731
    assert meg(SplitChunks(event_type="Meg")(events)).values.tolist() == [
        [1.0, 2.0, "train"],
        [6.0, 2.0, "test"],
    ]
    assert meg(SplitChunks(event_type="Meg", gap="midpoint")(events)).values.tolist() == [
        [0.0, 4.5, "train"],
        [4.5, 5.5, "test"],
    ]
    # two splits at one instant: neither has the time on either side of it
    both = pd.concat([events, events.iloc[[3]].assign(split="test")], ignore_index=True)
    regions = split_regions(validate_events(both), "split", exclude_type="Meg")
    assert regions[["start", "stop", "label"]].values.tolist() == [
        [1.0, 2.0, "train"],
        [6.0, 8.0, "test"],
    ]


def test_recordings_outside_every_split_are_an_error() -> None:
    events = _triggers([""] * 7)  # splits forgotten: every recording vanished silently
    with pytest.raises(ConfigError) as err:
        SplitChunks(event_type="Meg")(events)
    assert str(err.value) == (
        "SplitChunks: no Meg time lies in a split: 0 split regions from the other events' "
        "'split' values (one needs events with a split and a duration, or two of a split, "
        "inside the recordings); assign splits to those events first (AssignSplits, "
        "KFoldSplits, StimulusSplits)"
    )
