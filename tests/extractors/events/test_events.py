"""Pulse, EventField and LabelEncoder: extractors computed from the events table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.events import validate_events
from neuralset.extractors.base import ExtractorNotPreparedError
from neuralset.extractors.events import EventField, LabelEncoder, Pulse
from neuralset.segments import Segments, segment_on_triggers
from neuralset.store import Store


@pytest.fixture
def events():
    return validate_events(
        pd.DataFrame(
            {
                "type": ["Stimulus", "Stimulus", "Stimulus", "Word"],
                "start": [1.0, 2.0, 3.5, 1.0],
                "duration": [0.5, 0.0, 0.25, 0.3],
                "timeline": "run-1",
                "code": [7, 3, 7, 0],
                "description": ["face", "house", "face", None],
                "text": [None, None, None, "hello"],
            }
        )
    )


def _window(events, start, duration):
    return Segments(
        events=events,
        start=np.array([start]),
        duration=np.array([duration]),
        timeline=np.zeros(1, np.int32),
        trigger=np.full(1, -1, np.int64),
    )


def test_pulse_boxcar(events, tmp_path):
    store = Store(tmp_path)
    pulse = Pulse(event_type="Stimulus", frequency=10.0)
    report = pulse.prepare(events, store, progress=False)
    assert (report.total, report.computed) == (0, 0)
    data = pulse.read(_window(events, 0.5, 3.5), store).data
    assert data.shape == (1, 1, 35)
    expected = np.zeros(35, np.float32)
    expected[5:10] = 1  # [1.0, 1.5)
    expected[15] = 1  # instantaneous event at 2.0: its onset sample
    expected[30:33] = 1  # [3.5, 3.75)
    np.testing.assert_array_equal(data[0, 0], expected)
    # static: whether the window holds an event
    static = Pulse(event_type="Stimulus", output="static")
    two = Segments(
        events=events,
        start=np.array([0.0, 1.2]),
        duration=np.array([0.5, 1.0]),
        timeline=np.zeros(2, np.int32),
        trigger=np.full(2, -1, np.int64),
    )
    np.testing.assert_array_equal(static.read(two, store).data, [[0.0], [1.0]])


def test_painted_tiled_windows_read_what_one_window_reads(events, tmp_path):
    """An event between two samples marks the next sample, even when it is the first sample
    of the next window (it was painted in neither window)."""
    store = Store(tmp_path)
    ev = events.assign(start=[0.95, 2.0, 3.5, 1.0], duration=[0.02, 0.0, 0.25, 0.3])
    tiled = Segments(
        events=ev,
        start=np.array([0.0, 1.0, 2.0, 3.0]),
        duration=np.full(4, 1.0),
        timeline=np.zeros(4, np.int32),
        trigger=np.full(4, -1, np.int64),
    )
    for extractor, value in [
        (Pulse(event_type="Stimulus", frequency=10.0), 1.0),
        (EventField(event_type="Stimulus", field="code", output="dynamic", frequency=10.0), 7.0),
    ]:
        whole = extractor.read(_window(ev, 0.0, 4.0), store).data[0, 0]
        got = extractor.read(tiled, store).data[:, 0].reshape(-1)
        np.testing.assert_array_equal(got, whole)
        assert got[10] == value  # [0.95, 0.97): sample 10 (1.0 s), window 1's first
        np.testing.assert_array_equal(np.flatnonzero(got), [10, 20, 35, 36, 37])


def test_event_field(events, tmp_path):
    store = Store(tmp_path)
    field = EventField(event_type="Stimulus", field="code")
    field.prepare(events, store, progress=False)
    seg = segment_on_triggers(events, "Stimulus", offset=-0.1, duration=0.5)
    out = field.read(seg, store).data
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[7.0], [3.0], [7.0]])
    painted = EventField(event_type="Stimulus", field="code", output="dynamic", frequency=4.0)
    data = painted.read(_window(events, 1.0, 3.0), store).data[0, 0]
    np.testing.assert_array_equal(data, [7, 7, 0, 0, 3, 0, 0, 0, 0, 0, 7, 0])
    # a window on another trigger type: a clear error
    words = segment_on_triggers(events, "Word", duration=0.5)
    with pytest.raises(ValueError, match=r"needs segments triggered on Stimulus events"):
        field.read(words, store)


def test_event_field_errors(events, tmp_path):
    store = Store(tmp_path)
    with pytest.raises(
        ValueError, match=r"EventField.field: column 'description' is not numeric .*LabelEncoder"
    ):
        EventField(event_type="Stimulus", field="description").prepare(
            events, store, progress=False
        )
    with pytest.raises(
        ValueError, match=r"EventField.field: the events table has no column 'value'"
    ):
        EventField(event_type="Stimulus", field="value").prepare(events, store, progress=False)
    with pytest.raises(
        ValueError, match=r"EventField.field: 'code' is missing on Word event rows \[3\]"
    ):
        ev = events.copy()
        ev["code"] = ev["code"].where(ev["type"] != "Word", np.nan)
        EventField(event_type="Word", field="code").prepare(ev, store, progress=False)
    with pytest.raises(ConfigError, match=r"EventField.field: name the numeric column"):
        EventField(event_type="Stimulus")
    with pytest.raises(ConfigError, match=r"Pulse.event_type: name the event type"):
        Pulse(frequency=10.0)
    with pytest.raises(ConfigError, match=r"Pulse.frequency: set the output rate"):
        Pulse(event_type="Word")


def test_label_encoder(events, tmp_path):
    store = Store(tmp_path)
    before = events.copy()
    enc = LabelEncoder(event_type="Stimulus", field="description")
    seg = segment_on_triggers(events, "Stimulus", duration=0.2)
    with pytest.raises(ExtractorNotPreparedError, match=r"no stored vocabulary"):
        enc.read(seg, store)
    report = enc.prepare(events, store, progress=False)
    assert (report.total, report.computed) == (1, 1)
    assert enc.prepare(events, store, progress=False).computed == 0  # incremental
    assert enc.vocabulary(events, store) == ("face", "house")
    out = enc.read(seg, store).data
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [0, 1, 0])
    pd.testing.assert_frame_equal(events, before)  # inputs untouched
    # a fixed vocabulary: positions in it; values outside it are an error
    fixed = LabelEncoder(event_type="Stimulus", field="description", classes=("house", "face"))
    fixed.prepare(events, store, progress=False)
    np.testing.assert_array_equal(fixed.read(seg, store).data, [1, 0, 1])
    # a value outside the declared classes: an error at prepare, before any work
    narrow = LabelEncoder(event_type="Stimulus", field="description", classes=("face",))
    with pytest.raises(
        ConfigError,
        match=r"^LabelEncoder.classes: Stimulus events \[1\] have description='house', not "
        r"among the declared classes \(face\); add them, or drop those events$",
    ):
        narrow.prepare(events, store, progress=False)
    assert not store.has(narrow._vocab_key(("face",)))  # nothing stored
    # a trigger without a value has no label: an error at read, naming the segment
    other = events.assign(description=["face", None, "house", None])
    enc.prepare(other, store, progress=False)
    with pytest.raises(
        ValueError,
        match=r"segment 1 has description=nan, not in the vocabulary \(2 classes: face, house\)",
    ):
        enc.read(segment_on_triggers(other, "Stimulus", duration=0.2), store)


def test_label_encoder_empty_vocabulary_fails_before_any_work(events, tmp_path):
    """It stored an empty vocabulary, then every read failed."""
    store = Store(tmp_path)
    enc = LabelEncoder(event_type="Word", field="description")  # the Word has no description
    with pytest.raises(ConfigError) as err:
        enc.prepare(events, store, progress=False)
    assert str(err.value) == (
        "LabelEncoder.field: none of the 1 Word events has a description: the vocabulary "
        "would be empty; name the column holding their category"
    )
    assert not list(store.keys())


def test_label_encoder_numeric_order_as_sklearn(events, tmp_path):
    """Numeric values are ordered numerically, as scikit-learn's LabelEncoder ("10" after "9")."""
    from sklearn.preprocessing import LabelEncoder as SkLabelEncoder

    store = Store(tmp_path)
    ev = events.assign(code=[10, 9, 2, 0])
    enc = LabelEncoder(event_type="Stimulus", field="code")
    enc.prepare(ev, store, progress=False)
    assert enc.vocabulary(ev, store) == ("2", "9", "10")
    seg = segment_on_triggers(ev, "Stimulus", duration=0.2)
    expected = SkLabelEncoder().fit(ev["code"][:3]).transform(seg.trigger_values("code"))
    np.testing.assert_array_equal(enc.read(seg, store).data, expected)
    np.testing.assert_array_equal(enc.read(seg, store).data, [2, 1, 0])
    # a float column (missing on the Word row) names its classes as WindowLabel does: "7", not
    # "7.0", so that declared classes match (they were refused: code='7.0' not among them)
    floats = events.assign(code=[7.0, 3.0, 7.0, np.nan])
    assert floats["code"].dtype == np.float64
    fitted = LabelEncoder(event_type="Stimulus", field="code")
    fitted.prepare(floats, store, progress=False)
    assert fitted.vocabulary(floats, store) == ("3", "7")
    seg = segment_on_triggers(floats, "Stimulus", duration=0.2)
    np.testing.assert_array_equal(fitted.read(seg, store).data, [1, 0, 1])
    declared = fitted.replace(classes=("7", "3"))
    declared.prepare(floats, store, progress=False)
    np.testing.assert_array_equal(declared.read(seg, store).data, [0, 1, 0])


def test_label_encoder_config():
    with pytest.raises(ConfigError, match=r"LabelEncoder.output: labels are static"):
        LabelEncoder(event_type="Stimulus", field="description", output="dynamic", frequency=10.0)
    with pytest.raises(ConfigError, match=r"LabelEncoder.field: name the categorical column"):
        LabelEncoder(event_type="Stimulus")
    with pytest.raises(ConfigError, match=r"LabelEncoder.classes: duplicated"):
        LabelEncoder(event_type="Stimulus", field="description", classes=("a", "a"))
    enc = from_dict({"kind": "label_encoder", "event_type": "Word", "field": "text"})
    assert isinstance(enc, LabelEncoder)
    assert enc.prepare_key != enc.replace(field="sentence").prepare_key


def test_on_synthetic_words(small_events, tmp_path):
    store = Store(tmp_path)
    seg = segment_on_triggers(small_events, "Stimulus", offset=-0.2, duration=0.8)
    labels = LabelEncoder(event_type="Stimulus", field="description")
    labels.prepare(small_events, store, progress=False)
    vocab = labels.vocabulary(small_events, store)
    assert set(vocab) <= {"animal", "food", "tool", "function"}
    got = np.asarray(vocab)[labels.read(seg, store).data]
    np.testing.assert_array_equal(got, seg.trigger_values("description"))
    codes = EventField(event_type="Stimulus", field="code").read(seg, store).data[:, 0]
    np.testing.assert_array_equal(codes, seg.trigger_values("code").astype(np.float32))
    pulse = Pulse(event_type="Word", frequency=100.0).read(seg, store).data
    assert pulse.shape == (len(seg), 1, 80)
    # each window: its own word covers samples 20..39 (0.2 s); the next word starts >= 0.24 s later
    assert (pulse[:, 0, 20:40] == 1).all() and (pulse[:, 0, 40:44] == 0).all()
