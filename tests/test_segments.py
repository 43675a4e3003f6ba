import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.events.selectors import SelectorError
from neuralset.segments import (
    SlidingSegmenter,
    TriggerSegmenter,
    segment_on_triggers,
    sliding_windows,
)


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(0)
    rows = []
    for tl in ("a", "b"):
        rows.append(dict(type="Meg", start=1.0, duration=20.0, timeline=tl, filepath="m.fif"))
        t = 0.0
        for i in range(40):
            t += rng.uniform(0.3, 0.7)
            rows.append(dict(type="Word", start=t, duration=0.2, timeline=tl, text=f"w{i}"))
            rows.append(dict(type="Phoneme", start=t + 0.05, duration=0.0, timeline=tl, text="p"))
    rows.append(dict(type="Stimulus", start=5.0, duration=0.0, timeline="a", code=1))
    return validate_events(pd.DataFrame(rows))


def _brute_overlap(events, start, stop, tl_name, type_name):
    ev = events[(events.type == type_name) & (events.timeline == tl_name)]
    ev_stop = ev.start + ev.duration
    inside = (ev.start < stop) & ((ev_stop > start) | ((ev.duration == 0) & (ev.start >= start)))
    return set(ev.index[inside])


def test_trigger_segments(events):
    before = events.copy()
    seg = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8)
    pd.testing.assert_frame_equal(events, before)
    words = events[events.type == "Word"]
    assert len(seg) == 80
    np.testing.assert_array_equal(seg.trigger, words.index)
    np.testing.assert_allclose(seg.start, words.start - 0.2)
    assert (seg.duration == 0.8).all()
    assert list(seg.timeline_names[:2]) == ["a", "a"]
    own = segment_on_triggers(events, "type == 'Word' and start > 10")
    np.testing.assert_allclose(own.duration, 0.2)
    assert (events.start.to_numpy()[own.trigger] > 10).all()
    with pytest.raises(ValueError, match="duration must be > 0"):
        segment_on_triggers(events, "Word", duration=0)


def test_overlapping_matches_brute_force(events):
    seg = segment_on_triggers(events, "Word", offset=-0.5, duration=1.3)
    for type_name in ("Word", "Phoneme", "Meg", "Stimulus"):
        pos, rows = seg.overlapping(type_name)
        got = {i: set() for i in range(len(seg))}
        for p, r in zip(pos, rows):
            got[p].add(r)
        for i in range(len(seg)):
            expected = _brute_overlap(
                events, seg.start[i], seg.stop[i], seg.timeline_names[i], type_name
            )
            assert got[i] == expected, (type_name, i)


def test_require_and_covering(events):
    seg = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8)
    meg = events[events.type == "Meg"]
    inside = (seg.start >= 1.0) & (seg.stop <= 21.0)
    cover = seg.covering("Meg")
    np.testing.assert_array_equal(cover >= 0, inside)
    assert set(cover[cover >= 0]) == set(meg.index)
    has_meg = seg.has_type("Meg")
    np.testing.assert_array_equal(has_meg, (seg.stop > 1.0) & (seg.start < 21.0))
    stim = seg.require("Stimulus")
    assert len(stim) >= 1 and all((s <= 5.0 < s + 0.8) for s in stim.start)
    with pytest.raises(SelectorError, match=r"^unknown event type 'meg'; did you mean 'Meg'\? "):
        seg.require("meg")  # a typo dropped every segment
    assert len(seg.require("Image")) == 0


def test_getitem_builds_segment(events):
    seg = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8)
    one = seg[3]
    assert one.trigger == seg.trigger[3]
    assert seg.trigger[3] in one.events.index
    assert set(one.events.type) >= {"Word", "Meg"}
    with pytest.raises(IndexError):
        seg[1000]


def test_sliding_windows_counts(events):
    # timeline extent: first event 'Meg' at 1.0 ... last stop 21.0 (Meg) -> 20 s
    seg = sliding_windows(events, duration=2.0, stride=1.0, blocks="Meg")
    assert len(seg) == 2 * 19  # windows starting at 1..19 fit within 20 s
    np.testing.assert_allclose(seg.start[:3], [1.0, 2.0, 3.0])
    keep = sliding_windows(events, duration=2.0, stride=1.0, blocks="Meg", drop_incomplete=False)
    assert len(keep) == 2 * 20
    assert (keep.trigger == -1).all()
    whole = sliding_windows(events, duration=2.0, stride=2.0)
    assert whole.start[0] == pytest.approx(events[events.timeline == "a"].start.min())


def test_segmenter_configs(events):
    seg = TriggerSegmenter(triggers="Word", offset=-0.2, duration=0.8, require=("Stimulus",))(
        events
    )
    assert 1 <= len(seg) <= 3
    sl = SlidingSegmenter(duration=2.0, stride=1.0, blocks="Meg")(events)
    assert len(sl) == 38
    with pytest.raises(ConfigError, match=r"SlidingSegmenter.stride: must be > 0 seconds, got 0.0"):
        SlidingSegmenter(duration=1.0, stride=0.0)
    with pytest.raises(ConfigError, match=r"TriggerSegmenter.duration: must be > 0"):
        TriggerSegmenter(triggers="Word", duration=-1.0)


def test_segmenter_errors_name_their_field(events):
    # require=("MEG",) kept no segment, silently ("segments: 0" in `neuralset inspect`)
    with pytest.raises(ConfigError) as err:
        TriggerSegmenter(triggers="Word", duration=0.8, require=("MEG",))
    assert str(err.value).startswith(
        "TriggerSegmenter.require: unknown event type 'MEG'; did you mean 'Meg'? Known types: "
    )
    with pytest.raises(ConfigError, match=r"^SlidingSegmenter.require: unknown event type 'wrod'"):
        SlidingSegmenter(duration=1.0, stride=1.0, require=("wrod",))
    # selector errors were bare ValueErrors (a traceback from the CLI), naming no field
    with pytest.raises(ConfigError) as err:
        TriggerSegmenter(triggers="Wrod", duration=0.8)(events)
    assert str(err.value).startswith(
        "TriggerSegmenter.triggers: unknown event type 'Wrod'; did you mean 'Word'? Known types: "
    )
    with pytest.raises(ConfigError) as err:
        TriggerSegmenter(triggers="Sentence", duration=0.8)(events)
    assert str(err.value) == (
        "TriggerSegmenter.triggers: segment_on_triggers: the triggers 'Sentence' select no event "
        "of the table (event types present: Phoneme (80), Word (80), Meg (2), Stimulus (1))"
    )
    with pytest.raises(ConfigError, match=r"^SlidingSegmenter.blocks: sliding_windows: blocks "):
        SlidingSegmenter(duration=1.0, stride=1.0, blocks="Image")(events)


def test_select_and_split(events):
    from neuralset.events import AssignSplits

    ev = AssignSplits(by="timeline", ratios=(0.5, 0.5), names=("train", "test"))(events)
    seg = segment_on_triggers(ev, "Word", duration=0.5)
    train = seg.select(seg.trigger_values("split") == "train")
    assert 0 < len(train) < len(seg)
    assert set(train.timeline_names) == {"a"} or set(train.timeline_names) == {"b"}
    with pytest.raises(ValueError):
        train.start[0] = 1.0  # frozen arrays


# -- issue 8, case 1: a pandas boolean Series selects what its numpy mask selects -----------------
def test_series_selector_equals_its_numpy_mask(events):
    series = events["type"] == "Word"
    by_series = segment_on_triggers(events, series, offset=-0.1, duration=0.3)
    by_mask = segment_on_triggers(events, series.to_numpy(), offset=-0.1, duration=0.3)
    assert len(by_series) == (events["type"] == "Word").sum() == 80
    np.testing.assert_array_equal(by_series.trigger, by_mask.trigger)
    np.testing.assert_array_equal(by_series.start, by_mask.start)
    blocks = sliding_windows(events, duration=2.0, stride=1.0, blocks=events["type"] == "Meg")
    np.testing.assert_array_equal(
        blocks.start, sliding_windows(events, duration=2.0, stride=1.0, blocks="Meg").start
    )
    # a Series with the same labels in another order is aligned by label, like pandas does
    shuffled = series.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(
        segment_on_triggers(events, shuffled, duration=0.3).trigger, by_mask.trigger
    )
    # a list of booleans is a mask too, not a list of type names
    assert len(segment_on_triggers(events, series.tolist(), duration=0.3)) == 80


def test_misaligned_series_selector_is_an_error(events):
    words = events[events["type"] == "Word"]
    with pytest.raises(ValueError) as info:
        segment_on_triggers(events, words["type"] == "Word", duration=0.3)  # 80 labels, not 162
    assert str(info.value) == (
        "the boolean Series selector is not aligned with the events table: its index has 80 "
        "labels (1, 3, 5, ...), the table's 163 (0, 1, 2, ...); build the mask from this table "
        "(e.g. events['type'] == 'Word'), or pass a numpy array with one value per row"
    )
    with pytest.raises(ValueError, match=r"^a Series selector must be boolean without missing"):
        segment_on_triggers(events, events["start"], duration=0.3)


def test_selectors_that_select_nothing_are_errors(events):
    with pytest.raises(ValueError) as info:
        segment_on_triggers(events, "Sentence", duration=0.5)
    assert str(info.value) == (
        "segment_on_triggers: the triggers 'Sentence' select no event of the table (event types "
        "present: Phoneme (80), Word (80), Meg (2), Stimulus (1))"
    )
    with pytest.raises(ValueError, match=r"unknown event type 'Wrod'; did you mean 'Word'"):
        segment_on_triggers(events, ["Wrod"], duration=0.5)
    with pytest.raises(ValueError) as info:
        sliding_windows(events, duration=2.0, stride=1.0, blocks="Stimulus")
    assert str(info.value) == (
        "sliding_windows: no window of 2 s fits in the 1 blocks 'Stimulus': the longest spans 0 s; "
        "their events last 0 s: give them a duration; shorten the windows or pass "
        "drop_incomplete=False"
    )
    with pytest.raises(ValueError, match=r"duration=None uses each trigger's duration, but 80"):
        segment_on_triggers(events, "Phoneme")


# -- issue 8, case 6: sliding windows carry the split of what they cover -------------------------
def test_sliding_windows_take_the_split_of_their_timeline(events):
    from neuralset.events import AssignSplits

    ev = AssignSplits(by="timeline", ratios=(0.5, 0.5), names=("train", "test"))(events)
    windows = sliding_windows(ev, duration=2.0, stride=1.0, blocks="Meg")
    split = windows.trigger_values("split")
    expected = ev.groupby("timeline", observed=True)["split"].first()
    assert list(split) == [expected[t] for t in windows.timeline_names]
    train = windows.split("train")
    assert 0 < len(train) < len(windows) and set(train.timeline_names) == {
        t for t, s in expected.items() if s == "train"
    }
    with pytest.raises(ValueError) as info:
        windows.split("val")
    assert str(info.value) == (
        "no segment is in split 'val' (column 'split'); the 38 segments have: 'train': 19, "
        "'test': 19. Check the split names given to AssignSplits(names=...), or which events "
        "the segments lie in"
    )
    with pytest.raises(KeyError, match=r"assign splits first, e.g. AssignSplits\(by='timeline'\)"):
        sliding_windows(events, duration=2.0, stride=1.0).values("split")


def test_sliding_windows_take_the_split_of_the_events_they_lie_in(events):
    from neuralset.events import validate_events

    # one timeline, two blocks with different splits (e.g. by run)
    blocks = pd.DataFrame(
        {"type": "Stimulus", "start": [0.0, 10.0], "duration": [6.0, 4.0], "timeline": "x",
         "code": [1, 2], "split": ["train", "test"]}
    )  # fmt: skip
    words = pd.DataFrame({"type": "Word", "start": np.arange(0.5, 14, 1.0), "timeline": "x",
                          "text": "w", "duration": 0.2})  # fmt: skip
    ev = validate_events(pd.concat([blocks, words], ignore_index=True))
    inside = sliding_windows(ev, duration=2.0, stride=2.0, blocks="Stimulus")
    assert list(inside.values("split")) == ["train"] * 3 + ["test"] * 2
    across = sliding_windows(ev, duration=2.0, stride=2.0)  # the whole timeline, gaps included
    with pytest.raises(ValueError) as info:
        across.values("split")
    assert str(info.value) == (
        "2 window(s) have no single 'split' value, e.g. window [6, 8) s of timeline 'x' (values "
        "test, train) lies in no event with a 'split' value; cut windows inside the events that "
        "carry it (sliding_windows(..., blocks=<those events>)) or assign 'split' per timeline "
        "(AssignSplits(by='timeline'))"
    )


@pytest.fixture(scope="module")
def edge_events():
    """Recording 'a' spans 0-10 s, 'b' spans 2-7 s (one stimulus at 3 s); words near a's edges."""
    rows = [
        dict(type="Meg", start=0.0, duration=10.0, timeline="a", filepath="m.fif"),
        dict(type="Meg", start=2.0, duration=5.0, timeline="b", filepath="m.fif"),
        dict(type="Word", start=9.9, duration=0.2, timeline="a", text="x"),
        dict(type="Word", start=0.0, duration=0.2, timeline="a", text="y"),
        dict(type="Stimulus", start=3.0, duration=0.0, timeline="b", code=1),
    ]
    return validate_events(pd.DataFrame(rows))


def test_sliding_windows_stride_not_a_multiple_of_the_span(edge_events):
    seg = sliding_windows(edge_events, duration=1.0, stride=0.3, blocks="Meg")
    # a: starts 0, 0.3, ..., 9.0 (31); b: 2, 2.3, ..., 5.9 (14): every window inside its block
    np.testing.assert_allclose(seg.start, np.r_[np.arange(31) * 0.3, 2 + np.arange(14) * 0.3])
    np.testing.assert_array_equal(seg.timeline, [0] * 31 + [1] * 14)
    keep = sliding_windows(
        edge_events, duration=1.0, stride=0.3, blocks="Meg", drop_incomplete=False
    )
    # every start inside the block is kept: a up to 9.9, b up to 6.8
    np.testing.assert_allclose(keep.start, np.r_[np.arange(34) * 0.3, 2 + np.arange(17) * 0.3])
    # a zero-duration event counts in the window that holds its onset, [3, 4), not [2, 3)
    whole = sliding_windows(edge_events, duration=1.0, stride=1.0, blocks="Meg")
    b = whole.timeline == 1
    np.testing.assert_array_equal(whole.start[b], [2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(whole.has_type("Stimulus")[b], [False, True, False, False, False])


def test_non_finite_windows_are_refused(edge_events):
    # offset=nan gave segments starting at NaN, silently; inf durations/strides were accepted
    with pytest.raises(ValueError) as err:
        segment_on_triggers(edge_events, "Word", offset=float("nan"), duration=1.0)
    assert (
        str(err.value) == "segment_on_triggers: offset must be a finite number of seconds, got nan"
    )
    with pytest.raises(ValueError) as err:
        segment_on_triggers(edge_events, "Word", duration=float("inf"))
    assert str(err.value) == "segment_on_triggers: duration must be > 0 seconds and finite, got inf"
    with pytest.raises(ValueError) as err:  # said "no window of 1 s fits in the 2 timelines"
        sliding_windows(edge_events, duration=1.0, stride=float("nan"))
    assert str(err.value) == (
        "sliding_windows: duration and stride must be > 0 seconds and finite, got 1.0 and nan"
    )
    cases = [
        (lambda: TriggerSegmenter(triggers="Word", offset=float("nan"), duration=1.0),
         "TriggerSegmenter.offset: must be a finite number of seconds, got nan"),
        (lambda: TriggerSegmenter(triggers="Word", duration=float("inf")),
         "TriggerSegmenter.duration: must be a finite number of seconds (or None), got inf"),
        (lambda: SlidingSegmenter(duration=float("inf"), stride=1.0),
         "SlidingSegmenter.duration: must be a finite number of seconds, got inf"),
        (lambda: SlidingSegmenter(duration=1.0, stride=float("inf")),
         "SlidingSegmenter.stride: must be a finite number of seconds, got inf"),
    ]  # fmt: skip
    for build, message in cases:
        with pytest.raises(ConfigError) as info:
            build()
        assert str(info.value) == message


def test_select_nothing(edge_events):
    seg = segment_on_triggers(edge_events, "Word", duration=0.5)
    none = seg.select([])  # was IndexError: arrays used as indices must be of integer type
    assert len(none) == 0 and none.start.dtype == np.float64
    assert len(seg.select(np.zeros(2, dtype=bool))) == 0


def test_segmenter_require_that_keeps_nothing_is_an_error(edge_events):
    # the words are all on timeline a, the stimulus on b: an empty Segments came back silently
    assert len(segment_on_triggers(edge_events, "Word", duration=0.5).require("Stimulus")) == 0
    with pytest.raises(ConfigError) as err:
        TriggerSegmenter(triggers="Word", duration=0.5, require=("Meg", "Stimulus"))(edge_events)
    assert str(err.value) == (
        "TriggerSegmenter.require: none of the 2 segments overlaps an event of each of "
        "['Meg', 'Stimulus'] (segments overlapping each: 'Meg': 2, 'Stimulus': 0); check which "
        "timelines hold these events, or drop the type from require"
    )
    kept = TriggerSegmenter(triggers="Word", duration=0.5, require=("Meg",))(edge_events)
    np.testing.assert_array_equal(kept.trigger, [2, 3])
