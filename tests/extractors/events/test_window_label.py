"""WindowLabel and DetectionTarget: labels of any window, per-sample targets.

Window positions and labels equal braindecode's ``create_windows_from_events`` and
``create_fixed_length_windows`` on the same recording and annotations.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, dump_yaml, from_dict, load_yaml
from neuralset.events import validate_events
from neuralset.extractors.base import ExtractorNotPreparedError
from neuralset.extractors.events import (
    DetectionTarget,
    UncoveredEventsWarning,
    WindowLabel,
)
from neuralset.loaders import SegmentDataset
from neuralset.segments import Segments, segment_on_triggers, sliding_windows
from neuralset.store import Store
from neuralset.window_labels import WindowLabelError

from .braindecode_ref import braindecode_windowers

SFREQ = 100.0
MAPPING = {"left": 0, "right": 1, "rest": 2}


def trials(seed: int = 0, n: int = 12) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Onsets (samples), durations (samples) and classes of non-overlapping trials."""
    rng = np.random.default_rng(seed)
    onsets, durations, labels = [], [], []
    t = 100
    for _ in range(n):
        dur = int(rng.integers(3, 6)) * 100  # 3-5 s
        onsets.append(t)
        durations.append(dur)
        labels.append(str(rng.choice(list(MAPPING))))
        t += dur + int(rng.integers(50, 250))
    return np.array(onsets), np.array(durations), labels


def raw_with(onsets, durations, labels, n_times):  # noqa: ANN001, ANN201
    import mne

    info = mne.create_info(["C3", "C4"], SFREQ, "eeg")
    data = np.random.default_rng(1).standard_normal((2, n_times)) * 1e-6
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_annotations(mne.Annotations(onsets / SFREQ, durations / SFREQ, labels))
    return raw


def events_of(onsets, durations, labels, n_times, timeline="rec-1", **extra) -> pd.DataFrame:  # noqa: ANN001
    rows = [
        dict(
            type="Eeg",
            start=0.0,
            duration=n_times / SFREQ,
            timeline=timeline,
            filepath="x.fif",
            frequency=SFREQ,
            **extra,
        )
    ]
    rows += [
        dict(
            type="Stimulus", start=o / SFREQ, duration=d / SFREQ, timeline=timeline, description=lab
        )
        for o, d, lab in zip(onsets, durations, labels)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rule", ["majority", "center"])
def test_windows_from_events_equal_braindecode(rule: str, tmp_path) -> None:
    onsets, durations, labels = trials()
    n_times = int(onsets[-1] + durations[-1] + 300)
    raw = raw_with(onsets, durations, labels, n_times)
    with braindecode_windowers() as (windowers, base):
        concat = base.BaseConcatDataset([base.RawDataset(raw, description={"subject": 1})])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bd = windowers.create_windows_from_events(
                concat,
                trial_start_offset_samples=0,
                trial_stop_offset_samples=0,
                window_size_samples=150,
                window_stride_samples=70,
                on_last_window="drop",
                mapping=MAPPING,
                preload=True,
            )
        meta = bd.get_metadata()
    events = validate_events(events_of(onsets, durations, labels, n_times))
    windows = sliding_windows(events, duration=1.5, stride=0.7, blocks="Stimulus")
    assert len(windows) == len(meta) > 40
    np.testing.assert_array_equal(np.round(windows.start * SFREQ), meta["i_start_in_trial"])
    label = WindowLabel(event_type="Stimulus", classes=tuple(MAPPING), rule=rule, missing=None)
    store = Store(tmp_path)
    label.prepare(events, store, progress=False)
    np.testing.assert_array_equal(label.read(windows, store).data, meta["target"].to_numpy())


def test_trial_windows_with_offsets_equal_braindecode(tmp_path) -> None:
    onsets, durations, labels = trials(seed=3)
    durations[:] = 400  # trial windows of one length
    n_times = int(onsets[-1] + durations[-1] + 300)
    raw = raw_with(onsets, durations, labels, n_times)
    with braindecode_windowers() as (windowers, base):
        concat = base.BaseConcatDataset([base.RawDataset(raw, description={"subject": 1})])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bd = windowers.create_windows_from_events(
                concat,
                trial_start_offset_samples=-50,
                trial_stop_offset_samples=50,
                mapping=MAPPING,
                preload=True,
            )
        meta = bd.get_metadata()
    events = validate_events(events_of(onsets, durations, labels, n_times))
    segments = segment_on_triggers(events, "Stimulus", offset=-0.5, duration=5.0)
    np.testing.assert_array_equal(np.round(segments.start * SFREQ), meta["i_start_in_trial"])
    np.testing.assert_array_equal(np.round(segments.stop * SFREQ), meta["i_stop_in_trial"])
    label = WindowLabel(event_type="Stimulus", classes=tuple(MAPPING), rule="majority")
    np.testing.assert_array_equal(label.read(segments, Store(tmp_path)).data, meta["target"])


def test_fixed_length_windows_equal_braindecode(tmp_path) -> None:
    import mne

    targets = {"rec-1": "patient", "rec-2": "control"}
    lengths = {"rec-1": 3000, "rec-2": 2270}
    datasets, tables = [], []
    for name, n_times in lengths.items():
        info = mne.create_info(["Fz"], SFREQ, "eeg")
        raw = mne.io.RawArray(np.zeros((1, n_times)), info, verbose="error")
        datasets.append((raw, {"target": targets[name]}))
        tables.append(events_of([], [], [], n_times, timeline=name, target=targets[name]))
    mapping = {"control": 0, "patient": 1}
    with braindecode_windowers() as (windowers, base):
        concat = base.BaseConcatDataset(
            [base.RawDataset(r, description=d, target_name="target") for r, d in datasets]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bd = windowers.create_fixed_length_windows(
                concat,
                window_size_samples=400,
                window_stride_samples=250,
                on_last_window="drop",
                mapping=mapping,
                preload=True,
            )
        meta = bd.get_metadata()
        # get_metadata shows the description's (unmapped) target; the windows carry the mapped
        targets_bd = np.array([bd[i][1] for i in range(len(bd))])
    events = validate_events(pd.concat(tables, ignore_index=True))
    windows = sliding_windows(events, duration=4.0, stride=2.5, blocks="Eeg")
    assert len(windows) == len(meta) == 11 + 8
    np.testing.assert_array_equal(np.round(windows.start * SFREQ), meta["i_start_in_trial"])
    label = WindowLabel(event_type="Eeg", field="target", classes=tuple(mapping), rule="center")
    np.testing.assert_array_equal(label.read(windows, Store(tmp_path)).data, targets_bd)
    assert targets_bd.tolist() == [1] * 11 + [0] * 8


def stages() -> pd.DataFrame:
    return validate_events(
        pd.DataFrame(
            {
                "type": ["Eeg", "SleepStage", "SleepStage", "SleepStage", "SleepStage"],
                "start": [0.0, 0.0, 30.0, 40.0, 100.0],
                "duration": [120.0, 30.0, 10.0, 20.0, 5.0],
                "timeline": "night",
                "filepath": ["n.edf", None, None, None, None],
                "description": [None, "W", "N1", "N2", "N2"],
            }
        )
    )


def test_window_label_encodings_and_fitted_vocabulary(tmp_path) -> None:
    events = stages()
    windows = sliding_windows(events, duration=30.0, stride=30.0, blocks="Eeg")
    store = Store(tmp_path)
    label = WindowLabel(event_type="SleepStage")
    with pytest.raises(ExtractorNotPreparedError, match="call extractor.prepare"):
        label.read(windows, store)
    report = label.prepare(events, store, progress=False)
    assert report.computed == 1
    assert label.vocabulary(events, store) == ("N1", "N2", "W")
    # [0,30) W; [30,60) N1 10 s / N2 20 s; [60,90) nothing; [90,120) N2 5 s
    assert label.read(windows, store).data.tolist() == [2, 1, 3, 1]
    one_hot = label.replace(encoding="one_hot").read(windows, store).data
    assert one_hot.dtype == np.float32 and one_hot.shape == (4, 4)
    np.testing.assert_array_equal(one_hot.argmax(axis=1), [2, 1, 3, 1])
    multi = label.replace(rule="any").read(windows, store).data
    np.testing.assert_array_equal(multi, [[0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]])
    # the read-only fields share the stored vocabulary: nothing more to prepare
    assert label.replace(rule="fraction").prepare_key == label.prepare_key
    with pytest.raises(WindowLabelError, match=r"2 of 4 windows have no SleepStage|1 of 4"):
        label.replace(missing=None).read(windows, store)


def test_window_label_in_a_dataset_warns_about_uncovered_events(tmp_path) -> None:
    events = stages()
    # 30 s windows every 40 s: [0,30), [40,70), [80,110): the N1 event [30, 40) is never seen
    windows = sliding_windows(events, duration=30.0, stride=40.0, blocks="Eeg")
    label = WindowLabel(event_type="SleepStage", classes=("W", "N1", "N2"))
    dataset = SegmentDataset(windows, {"stage": label}, Store(tmp_path))
    with pytest.warns(UncoveredEventsWarning) as record:
        dataset.check()
    assert str(record[0].message) == (
        "WindowLabel: 1 of 4 SleepStage events overlap no window (rows [2]); their labels are "
        "never read. Cover them (a smaller stride, drop_incomplete=False) or set "
        "on_uncovered='ignore'"
    )
    strict = SegmentDataset(
        windows, {"stage": label.replace(on_uncovered="error")}, Store(tmp_path)
    )
    with pytest.raises(WindowLabelError, match="1 of 4 SleepStage events overlap no window"):
        strict.check()
    quiet = SegmentDataset(
        windows, {"stage": label.replace(on_uncovered="ignore")}, Store(tmp_path)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = quiet.__getitems__([0, 1, 2])
    assert batch["stage"].tolist() == [0, 2, 2]  # W, N2 (20 s of [40, 70)), N2 [100, 105)


def test_declared_classes_are_checked_before_any_work(tmp_path) -> None:
    label = WindowLabel(event_type="SleepStage", classes=("W", "N2"))
    with pytest.raises(ConfigError) as err:
        label.prepare(stages(), Store(tmp_path), progress=False)
    assert str(err.value) == (
        "WindowLabel.classes: SleepStage events [2] have description='N1', not among the "
        "declared classes (W, N2); add them, or drop those events"
    )


def test_events_without_a_class_fail_before_any_work(tmp_path) -> None:
    """A fitted vocabulary left them out and prepare stored it; every read of a window they
    overlap then failed ("description=None, not among the classes")."""
    events = stages()
    events.loc[2, "description"] = None
    store = Store(tmp_path)
    with pytest.raises(ConfigError) as err:
        WindowLabel(event_type="SleepStage").prepare(events, store, progress=False)
    assert str(err.value) == (
        "WindowLabel.field: 1 of 4 SleepStage events (rows [2]) have no description; fill it "
        "in, or drop those events"
    )
    target = DetectionTarget(event_type="SleepStage", field="description", frequency=1.0)
    with pytest.raises(ConfigError) as err:
        target.prepare(events, store, progress=False)
    assert str(err.value) == (
        "DetectionTarget.field: 1 of 4 SleepStage events (rows [2]) have no description; fill "
        "it in, or drop those events (or set field='': one class, the event type)"
    )
    with pytest.raises(ConfigError) as err:
        target.replace(field="stage").prepare(events, store, progress=False)
    assert str(err.value) == (
        "DetectionTarget.field: the events table has no column 'stage'; columns: "
        + ", ".join(map(str, events.columns))
    )
    assert not list(store.keys())


def test_a_fitted_class_named_like_missing_fails_before_any_work(tmp_path) -> None:
    """It failed only when reading (prepare stored the vocabulary), without the field name."""
    events = stages()
    events["description"] = events["description"].replace({"N1": "missing"})
    store = Store(tmp_path)
    with pytest.raises(ConfigError) as err:
        WindowLabel(event_type="SleepStage").prepare(events, store, progress=False)
    assert str(err.value) == (
        "WindowLabel.missing: the reserved class 'missing' is also a value of "
        "SleepStage.description; name the missing class differently (e.g. missing='unlabelled')"
    )
    assert not list(store.keys())
    label = WindowLabel(event_type="SleepStage", missing="unlabelled")
    label.prepare(events, store, progress=False)
    assert label.vocabulary(events, store) == ("N2", "W", "missing")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_type": ""}, "WindowLabel.event_type: name the labelling event type"),
        ({"field": ""}, "WindowLabel.field: name the column holding the class"),
        ({"classes": ("a", "a")}, "WindowLabel.classes: duplicated entries in ('a', 'a')"),
        ({"output": "dynamic"}, "WindowLabel.output: a window label is static"),
        ({"rule": "any", "encoding": "one_hot"}, "WindowLabel.encoding: rule='any' already"),
        ({"min_overlap": 0.5}, "WindowLabel.min_overlap: only used with rule='any'"),
        ({"classes": ("missing",)}, "WindowLabel.missing: the reserved class 'missing'"),
    ],
)
def test_window_label_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WindowLabel(**{"event_type": "SleepStage", **kwargs})


def test_configs_read_back_from_yaml(tmp_path) -> None:
    for cfg in (
        WindowLabel(event_type="SleepStage", rule="any", min_overlap=0.2, classes=("W", "N1")),
        DetectionTarget(event_type="Seizure", frequency=50.0, mode="onset", tolerance=0.1),
    ):
        path = tmp_path / "c.yaml"
        path.write_text(dump_yaml(cfg))
        back = from_dict(load_yaml(path))
        assert back == cfg and back.key == cfg.key


def window(events: pd.DataFrame, start: float, duration: float) -> Segments:
    return Segments(
        events=events,
        start=np.array([start]),
        duration=np.array([duration]),
        timeline=np.zeros(1, np.int32),
        trigger=np.full(1, -1, np.int64),
    )


def test_detection_masks_presence_onset_offset(tmp_path) -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Seizure",
                "start": [1.0, 2.0, 4.95],
                "duration": [0.5, 0.0, 1.0],
                "timeline": "r",
            }
        )
    )
    store = Store(tmp_path)
    seg = window(events, 0.5, 4.5)  # 45 samples at 10 Hz: t = 0.5 .. 4.9
    presence = DetectionTarget(event_type="Seizure", frequency=10.0).read(seg, store).data
    expected = np.zeros(45, np.float32)
    expected[5:10] = 1  # [1.0, 1.5)
    expected[15] = 1  # instantaneous at 2.0
    # the event at 4.95 starts after the last sample (4.9): nothing
    assert presence.shape == (1, 1, 45)
    np.testing.assert_array_equal(presence[0, 0], expected)
    onset = DetectionTarget(event_type="Seizure", frequency=10.0, mode="onset")
    np.testing.assert_array_equal(np.flatnonzero(onset.read(seg, store).data[0, 0]), [5, 15])
    offset = DetectionTarget(event_type="Seizure", frequency=10.0, mode="offset")
    np.testing.assert_array_equal(np.flatnonzero(offset.read(seg, store).data[0, 0]), [10, 15])
    wide = onset.replace(tolerance=0.2)
    # +-2 samples around 5 and 15; the event at 4.95 (onset sample 45, outside) marks 43, 44
    np.testing.assert_array_equal(
        np.flatnonzero(wide.read(seg, store).data[0, 0]),
        [3, 4, 5, 6, 7, 13, 14, 15, 16, 17, 43, 44],
    )


def test_detection_classes_and_background(tmp_path) -> None:
    events = stages()
    windows = sliding_windows(events, duration=60.0, stride=60.0, blocks="Eeg")
    store = Store(tmp_path)
    target = DetectionTarget(
        event_type="SleepStage", field="description", frequency=0.1, background="none"
    )
    target.prepare(events, store, progress=False)
    assert target.channels(events, store) == ("N1", "N2", "W", "none")
    data = target.read(windows, store).data  # samples every 10 s
    assert data.shape == (2, 4, 6)
    np.testing.assert_array_equal(
        data[0],
        [
            [0, 0, 0, 1, 0, 0],  # N1 [30, 40)
            [0, 0, 0, 0, 1, 1],  # N2 [40, 60)
            [1, 1, 1, 0, 0, 0],  # W [0, 30)
            [0, 0, 0, 0, 0, 0],
        ],
    )
    np.testing.assert_array_equal(data[1, 3], [1, 1, 1, 1, 0, 1])  # N2 at [100, 105)
    with pytest.raises(ConfigError, match="DetectionTarget.frequency: set the output rate"):
        DetectionTarget(event_type="Seizure")
    with pytest.raises(ConfigError, match="DetectionTarget.background: only with mode='presence'"):
        DetectionTarget(event_type="Seizure", frequency=1.0, mode="onset", background="bg")
    with pytest.raises(ConfigError, match="DetectionTarget.classes: classes need a field"):
        DetectionTarget(event_type="Seizure", frequency=1.0, classes=("a",))


def test_detection_equals_a_per_sample_oracle(tmp_path) -> None:
    rng = np.random.default_rng(5)
    starts = np.round(np.sort(rng.uniform(0, 60, 40)), 3)
    durs = np.where(rng.random(40) < 0.2, 0.0, np.round(rng.uniform(0.05, 3, 40), 3))
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Artifact",
                "start": starts,
                "duration": durs,
                "timeline": "r",
                "description": rng.choice(["eye", "muscle"], 40),
            }
        )
    )
    windows = sliding_windows(events, duration=4.0, stride=1.3)
    freq = 25.0
    target = DetectionTarget(
        event_type="Artifact", field="description", classes=("eye", "muscle"), frequency=freq
    )
    data = target.read(windows, Store(tmp_path)).data
    for i in range(len(windows)):
        t = windows.start[i] + np.arange(100) / freq
        for c, name in enumerate(("eye", "muscle")):
            want = np.zeros(100, bool)
            for s, d, lab in zip(starts, durs, events["description"]):
                if lab != name:
                    continue
                on = np.ceil((s - windows.start[i]) * freq - 1e-6)
                if d == 0:
                    want |= np.arange(100) == on
                else:
                    want |= (t >= s - 1e-6 / freq) & (t < s + d - 1e-6 / freq)
            np.testing.assert_array_equal(data[i, c].astype(bool), want, err_msg=f"window {i}")


@pytest.mark.parametrize("mode", ["presence", "onset", "offset"])
def test_detection_tiled_windows_read_what_one_window_reads(mode: str, tmp_path) -> None:
    """An event (or an offset) between two samples marks the next sample, even when that
    sample is the first of the next window (it was lost from both windows)."""
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Seizure",
                "start": [0.95, 2.2, 3.5],  # between samples; ends between samples; inside
                "duration": [0.0, 0.75, 0.02],
                "timeline": "r",
            }
        )
    )
    store = Store(tmp_path)
    target = DetectionTarget(event_type="Seizure", frequency=10.0, mode=mode)
    whole = target.read(window(events, 0.0, 4.0), store).data[0, 0]
    tiled = Segments(
        events=events,
        start=np.array([0.0, 1.0, 2.0, 3.0]),
        duration=np.full(4, 1.0),
        timeline=np.zeros(4, np.int32),
        trigger=np.full(4, -1, np.int64),
    )
    got = target.read(tiled, store).data[:, 0].reshape(-1)
    expected = {
        "presence": [10, 22, 23, 24, 25, 26, 27, 28, 29, 35],
        "onset": [10, 22, 35],
        "offset": [10, 30, 36],  # [2.2, 2.95) ends at sample 30 (3.0 s): window 3's first
    }[mode]
    np.testing.assert_array_equal(np.flatnonzero(whole), expected)
    np.testing.assert_array_equal(np.flatnonzero(got), expected)
