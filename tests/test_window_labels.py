"""Window labels by rule, against a brute-force oracle written per window and per event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.segments import Segments, segment_on_triggers, sliding_windows
from neuralset.window_labels import WindowLabelError, uncovered_events, window_labels

CLASSES = ("a", "b", "c")


def random_events(seed: int, n_events: int = 25, n_timelines: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for tl in range(n_timelines):
        starts = np.sort(rng.uniform(0, 100, n_events))
        for s in starts:
            # some instantaneous events, some overlapping ones of the same class
            dur = 0.0 if rng.random() < 0.15 else float(rng.uniform(0.2, 8.0))
            rows.append(
                dict(
                    type="SleepStage",
                    start=round(float(s), 3),
                    duration=round(dur, 3),
                    timeline=f"t{tl}",
                    description=str(rng.choice(CLASSES)),
                )
            )
    return validate_events(pd.DataFrame(rows))


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def oracle(events: pd.DataFrame, start: float, duration: float, timeline: str) -> dict:
    """Per window, plain Python: overlapping events, coverage per class, centre event."""
    stop = start + duration
    centre = start + duration / 2  # as computed by the library (a float tie otherwise)
    cover: dict[str, list[tuple[float, float]]] = {c: [] for c in CLASSES}
    counts = dict.fromkeys(CLASSES, 0)
    at_centre = None
    for i, ev in events.iterrows():
        if ev["timeline"] != timeline:
            continue
        s, e = ev["start"], ev["start"] + ev["duration"]
        inside = (s < stop and e > start) or (ev["duration"] == 0 and start <= s < stop)
        if not inside:
            continue
        cover[ev["description"]].append((max(s, start), min(e, stop)))
        counts[ev["description"]] += 1
        if s <= centre and (e > centre or s == centre):
            if at_centre is None or (s, i) >= at_centre[0]:
                at_centre = ((s, i), ev["description"])
    fraction = {c: union_length(v) / (stop - start) for c, v in cover.items()}
    return {
        "fraction": fraction,
        "counts": counts,
        "centre": at_centre[1] if at_centre else None,
        "any": any(counts.values()),
    }


def majority_of(o: dict) -> str | None:
    if not o["any"]:
        return None
    best = max(o["fraction"].values())
    if best <= 1e-12:
        top = max(o["counts"].values())
        return next(c for c in CLASSES if o["counts"][c] == top)
    return next(c for c in CLASSES if o["fraction"][c] >= best - 1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_rule_equals_the_brute_force_oracle(seed: int) -> None:
    events = random_events(seed)
    windows = sliding_windows(events, duration=5.0, stride=1.7, drop_incomplete=False)
    names = windows.timeline_names
    oracles = [
        oracle(events, s, d, str(t)) for s, d, t in zip(windows.start, windows.duration, names)
    ]
    majority = window_labels(windows, "SleepStage", "description", rule="majority")
    assert majority.classes == (*CLASSES, "missing")
    expected = [majority_of(o) for o in oracles]
    got = [majority.classes[v] if v < 3 else None for v in majority.values]
    assert got == expected
    assert (majority.values == 3).sum() == sum(e is None for e in expected) > 0

    centre = window_labels(windows, "SleepStage", "description", rule="center")
    got = [centre.classes[v] if v < 3 else None for v in centre.values]
    assert got == [o["centre"] for o in oracles]

    fraction = window_labels(windows, "SleepStage", "description", rule="fraction")
    want = np.array([[o["fraction"][c] for c in CLASSES] for o in oracles])
    np.testing.assert_allclose(fraction.values[:, :3], want, atol=1e-6)

    anyl = window_labels(windows, "SleepStage", "description", rule="any")
    want_any = np.array([[o["counts"][c] > 0 for c in CLASSES] for o in oracles])
    np.testing.assert_array_equal(anyl.values[:, :3], want_any.astype(np.float32))
    np.testing.assert_array_equal(anyl.values[:, 3], ~want_any.any(axis=1))

    alll = window_labels(windows, "SleepStage", "description", rule="all")
    want_all = np.array([[o["fraction"][c] >= 1 - 1e-9 for c in CLASSES] for o in oracles])
    np.testing.assert_array_equal(alll.values[:, :3], want_all.astype(np.float32))

    half = window_labels(windows, "SleepStage", "description", rule="any", min_overlap=0.5)
    want_half = np.array([[o["fraction"][c] >= 0.5 - 1e-12 for c in CLASSES] for o in oracles])
    np.testing.assert_array_equal(half.values[:, :3], want_half.astype(np.float32))


def test_fraction_missing_column_is_the_uncovered_part() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Seizure",
                "start": [2.0, 3.0],
                "duration": [2.0, 2.0],  # overlapping: union [2, 5)
                "timeline": "r",
                "description": ["sz", "sz"],
            }
        )
    )
    window = Segments(
        events=events,
        start=np.array([0.0]),
        duration=np.array([10.0]),
        timeline=np.zeros(1, np.int32),
        trigger=np.full(1, -1),
    )
    out = window_labels(window, "Seizure", "description", rule="fraction")
    np.testing.assert_allclose(out.values, [[0.3, 0.7]], atol=1e-6)


def test_declared_classes_order_and_unknown_values() -> None:
    events = random_events(3, n_events=10, n_timelines=1)
    windows = sliding_windows(events, duration=5.0, stride=5.0)
    out = window_labels(windows, "SleepStage", "description", classes=("c", "b", "a"))
    assert out.classes == ("c", "b", "a", "missing")
    plain = window_labels(windows, "SleepStage", "description")
    remap = {0: 2, 1: 1, 2: 0, 3: 3}
    assert [remap[v] for v in plain.values] == out.values.tolist()
    with pytest.raises(WindowLabelError, match=r"not among the classes \(a, b\); add them"):
        window_labels(windows, "SleepStage", "description", classes=("a", "b"))
    with pytest.raises(WindowLabelError, match="reserved class 'a' is also a class"):
        window_labels(windows, "SleepStage", "description", missing="a")
    with pytest.raises(WindowLabelError, match="rule: expected one of 'majority'"):
        window_labels(windows, "SleepStage", "description", rule="mode")  # type: ignore[arg-type]


def test_missing_none_names_unlabelled_windows() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Eeg", "Artifact"],
                "start": [0.0, 4.0],
                "duration": [10.0, 1.0],
                "timeline": "r",
                "filepath": ["x.fif", None],
                "description": [None, "blink"],
            }
        )
    )
    windows = sliding_windows(events, duration=2.0, stride=2.0, blocks="Eeg")
    with pytest.raises(WindowLabelError) as err:
        window_labels(windows, "Artifact", "description", missing=None)
    assert str(err.value) == (
        "4 of 5 windows have no Artifact event to label them (windows [0, 1, 3, 4]); pass "
        "missing='missing' to give them a reserved class, or keep only labelled windows with "
        "segments.require('Artifact')"
    )
    kept = windows.require("Artifact")
    assert window_labels(kept, "Artifact", "description", missing=None).values.tolist() == [0]


def test_uncovered_events_are_reported() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Eeg", "Seizure", "Seizure"],
                "start": [0.0, 1.0, 9.5],
                "duration": [10.0, 1.0, 0.4],
                "timeline": "r",
                "filepath": ["x.fif", None, None],
            }
        )
    )
    # 4 s windows every 4 s, incomplete ones dropped: [0, 4), [4, 8); the event at 9.5 s is lost
    windows = sliding_windows(events, duration=4.0, stride=4.0, blocks="Eeg")
    assert uncovered_events(windows, "Seizure").tolist() == [2]
    assert window_labels(windows, "Seizure", "type").uncovered.tolist() == [2]


def test_numeric_field_classes_and_trigger_segments() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Stimulus",
                "start": [0.0, 2.0, 4.0],
                "duration": 1.0,
                "timeline": "r",
                "code": [3, 1, 3],
            }
        )
    )
    segs = segment_on_triggers(events, "Stimulus", offset=0.0, duration=1.0)
    out = window_labels(segs, "Stimulus", "code", rule="center", missing=None)
    assert out.classes == ("1", "3")
    assert out.values.tolist() == [1, 0, 1]
    # a float column of whole numbers reads as the same classes
    as_float = events.assign(code=events["code"].astype(float))
    segs = segment_on_triggers(as_float, "Stimulus", offset=0.0, duration=1.0)
    assert window_labels(segs, "Stimulus", "code", missing=None).classes == ("1", "3")
    # numbers in numeric order (they were sorted as text: "10" before "9")
    codes = events.assign(code=[10, 9, 10])
    segs = segment_on_triggers(codes, "Stimulus", offset=0.0, duration=1.0)
    out = window_labels(segs, "Stimulus", "code", rule="center", missing=None)
    assert out.classes == ("9", "10")
    assert out.values.tolist() == [1, 0, 1]


def test_classes_given_as_numbers_match_a_numeric_field() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Stimulus",
                "start": [0.0, 2.0, 4.0],
                "duration": 1.0,
                "timeline": "r",
                "code": [3, 1, 3],
            }
        )
    )
    segs = segment_on_triggers(events, "Stimulus", offset=0.0, duration=1.0)
    # a TypeError in the error message before (every value was "not among the classes")
    out = window_labels(segs, "Stimulus", "code", classes=[3, 1.0, 2], rule="center")
    assert out.classes == ("3", "1", "2", "missing")
    assert out.values.tolist() == [0, 1, 0]
    with pytest.raises(WindowLabelError) as err:
        window_labels(segs, "Stimulus", "code", classes=[3, 2])
    assert str(err.value) == (
        "Stimulus events [1] have code='1', not among the classes (3, 2); add them to the classes "
        "or drop those events"
    )
    with pytest.raises(WindowLabelError) as err:
        window_labels(segs, "Stimulus", "code", classes=[3, 1, 3.0])
    assert str(err.value) == (
        "classes: '3' given more than once (compared as text: 3 and 3.0 are '3'); give each "
        "class once (a repeated class would be a column that is never 1)"
    )
