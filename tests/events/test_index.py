"""EventIndex searches: the per-timeline binary search of every query, against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neuralset.events import validate_events
from neuralset.events.index import EventIndex


def _events(n_timelines: int, seed: int) -> pd.DataFrame:
    """Words and phonemes on many timelines: repeated starts, negative starts, zero durations."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_timelines):
        starts = np.round(rng.uniform(-5.0, 50.0, size=int(rng.integers(0, 30))), 1)
        for j, s in enumerate(starts):  # rounding to 0.1 s makes ties within and across timelines
            rows.append(dict(type="Word", start=float(s), duration=0.3, timeline=f"t{k}", text="w"))
            if j % 3 == 0:
                rows.append(dict(type="Phoneme", start=float(s), duration=0.0, timeline=f"t{k}",
                                 text="p"))  # fmt: skip
    return validate_events(pd.DataFrame(rows))


def _brute(events: pd.DataFrame, tl: str, ty: str, value: float, side: str) -> int:
    """How many events of (tl, ty) start before ``value`` (left) or at or before it (right)."""
    sel = events[(events["timeline"] == tl) & (events["type"] == ty)]["start"].to_numpy()
    return int((sel < value).sum() if side == "left" else (sel <= value).sum())


def test_search_counts_the_starts_before_each_query_in_its_own_timeline() -> None:
    for seed in range(3):
        events = _events(40, seed)
        index = EventIndex(events)
        rng = np.random.default_rng(100 + seed)
        n = 500
        tl_codes = rng.integers(0, len(index.timelines), n)
        values = np.round(rng.uniform(-8.0, 55.0, n), 1)  # ties with the starts included
        for ty in ("Word", "Phoneme"):
            group = index._groups(tl_codes, ty)
            assert group is not None
            for side in ("left", "right"):
                got = index._search(group, values, side) - index.bounds[group]  # type: ignore[arg-type]
                expected = [
                    _brute(events, str(index.timelines[t]), ty, v, side)
                    for t, v in zip(tl_codes.tolist(), values.tolist())
                ]
                np.testing.assert_array_equal(got, expected)


def test_covering_and_overlapping_over_many_timelines_match_brute_force() -> None:
    events = _events(60, 7)
    index = EventIndex(events)
    rng = np.random.default_rng(3)
    n = 300
    tl = rng.integers(0, len(index.timelines), n)
    start = rng.uniform(-6.0, 52.0, n)
    stop = start + rng.uniform(0.0, 2.0, n)
    seg, rows = index.overlapping(tl, start, stop, "Word")
    got = {(int(s), int(r)) for s, r in zip(seg, rows)}
    ev_start = events["start"].to_numpy()
    ev_stop = ev_start + events["duration"].to_numpy()
    words = np.flatnonzero((events["type"] == "Word").to_numpy())
    codes = events["timeline"].cat.codes.to_numpy()
    expected = {
        (i, int(r))
        for i in range(n)
        for r in words
        if codes[r] == tl[i] and ev_start[r] < stop[i] and ev_stop[r] > start[i]
    }
    assert got == expected


def test_covering_finds_a_long_event_under_many_short_ones() -> None:
    # a 200 s block holding 100 short trials of the same type: windows after the 64th trial
    # were "covered by none" (the walk back stopped after 64 candidates)
    n = 100
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Stimulus",
                "start": np.r_[0.0, 1.0 + np.arange(n) * 0.5, 30.0],
                "duration": np.r_[200.0, np.full(n, 0.1), 100.0],
                "timeline": "r",
            }
        )
    )
    index = EventIndex(events)
    query = np.array([10.0, 40.0, 49.9, 80.0, 150.0, 250.0])
    got = index.covering(np.zeros(len(query), dtype=np.int64), query, query + 0.3, "Stimulus")
    start, stop = events["start"].to_numpy(), events["start"].to_numpy() + events["duration"]
    expected = []
    for q in query:  # the latest-starting event spanning [q, q + 0.3]
        rows = np.flatnonzero((start <= q) & (stop >= q + 0.3))
        expected.append(int(rows[np.argmax(start[rows])]) if len(rows) else -1)
    assert got.tolist() == expected == [0, 101, 101, 101, 0, -1]


def test_containing_is_half_open_as_overlapping() -> None:
    from neuralset.events import AddContext
    from neuralset.events.repetitions import StimulusTime

    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Audio", "Image", "Word", "Word", "Word", "Word"],
                "start": [0.0, 12.0, 0.5, 9.5, 10.0, 12.0],
                "duration": [10.0, 0.0, 0.3, 0.3, 0.3, 0.3],
                "timeline": "r",
                "filepath": ["s.wav", "i.png", None, None, None, None],
                "text": [None, None, "a", "b", "c", "d"],
            }
        )
    )
    index = EventIndex(events)
    times = np.array([0.0, 9.999, 10.0, 12.0])
    tl = np.zeros(4, dtype=np.int64)
    assert index.containing(tl, times, "Audio").tolist() == [0, 0, -1, -1]
    assert index.containing(tl, times, "Image").tolist() == [-1, -1, -1, 1]  # its instant
    out = StimulusTime()(events)
    assert out["stimulus"].isna().tolist()[2:] == [False, False, True, True]  # 10.0: "s.wav"
    sentences = validate_events(
        pd.DataFrame(
            {
                "type": ["Sentence", "Word", "Word", "Word"],
                "start": [0.0, 0.5, 1.0, 2.0],
                "duration": [2.0, 0.3, 0.3, 0.3],
                "timeline": "r",
                "text": ["a b", "a", "b", "c"],
            }
        )
    )
    out = AddContext(scope="sentence")(sentences)
    assert out["sentence"].fillna("-").tolist()[1:] == ["a b", "a b", "-"]  # "c" was in "a b"
    assert out["context"].tolist()[1:] == ["a", "a b", "c"]
