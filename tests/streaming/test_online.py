"""Streaming a recording gives the offline windows, sample for sample.

The offline side is the extractor's own ``prepare`` + ``read`` with ``causal=True``; the online
side replays the recording file in chunks through :class:`OnlinePipeline` with the trigger
events on their own marker stream. Equality is exact (``assert_array_equal`` on float32).
"""

from __future__ import annotations

import numpy as np
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.neural.mne import EegExtractor, MegExtractor
from neuralset.segments import SlidingSegmenter, TriggerSegmenter
from neuralset.store import Store
from neuralset.streaming.causal import Decimator, OnlinePreprocessor, SosFilter
from neuralset.streaming.online import OnlinePipeline, stored_scaling
from neuralset.streaming.source import ArraySource, Marker, StreamInfo, markers_from_events
from neuralset.streaming.windows import WindowEmitter, WindowOverrunError
from neuralset.synthetic import SyntheticStudy

MEG = MegExtractor(
    causal=True,
    frequency=100.0,
    notch=(50.0,),
    filter=(1.0, 40.0),
    scaling="robust",
    clamp=5.0,
    baseline=(-0.1, 0.0),
)
EEG = EegExtractor(
    causal=True, frequency=100.0, filter=(0.5, None), reference="average", scaling="standard"
)
WORDS = TriggerSegmenter(triggers="Word", offset=-0.1, duration=0.5)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> SyntheticStudy:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("stream") / "study",
        n_subjects=1,
        duration=8.0,
        meg_channels=12,
        meg_sfreq=1000.0,
        eeg_channels=8,
        eeg_sfreq=500.0,
        seed=11,
    )
    study.build()
    return study


@pytest.fixture(scope="module")
def prepared(study, tmp_path_factory):
    events = study.events()
    store = Store(tmp_path_factory.mktemp("store"))
    for extractor in (MEG, EEG):
        extractor.prepare(events, store, progress=False)
    return events, store


def _offline(extractor, events, store, kind: str) -> np.ndarray:
    segments = WORDS.replace(require=(kind,))(events)
    return extractor.read(segments, store).data


def _online(extractor, events, store, kind, chunks, backend="numpy"):
    path = events.loc[events["type"] == kind, "filepath"].iloc[0]
    source = ArraySource.from_file(events["study_root"].iloc[0] + "/" + path, chunks)
    pipe = OnlinePipeline(
        extractor,
        source.info,
        WORDS,
        name=kind.lower(),
        scaling=stored_scaling(extractor, events, store),
        backend=backend,
    )
    batches = list(pipe.run(source, markers_from_events(events, "Word", "sub-01")))
    return pipe, batches


@pytest.mark.parametrize("chunks", [1, 37, (5, 120, 3), 100_000])
def test_meg_stream_equals_offline_windows(study, prepared, chunks):
    events, store = prepared
    offline = _offline(MEG, events, store, "Meg")
    pipe, batches = _online(MEG, events, store, "Meg", chunks)
    online = np.stack([w.data for b in batches for w in b])
    assert online.dtype == np.float32 and online.shape == offline.shape == (len(online), 12, 50)
    np.testing.assert_array_equal(online, offline)
    assert pipe.emitter is not None and pipe.emitter.missed == []
    assert pipe.preprocess.labels == ("notch 50 Hz", "band (1.0, 40.0) Hz", "anti-alias 40 Hz")


def test_eeg_stream_with_average_reference_equals_offline(study, prepared):
    events, store = prepared
    offline = _offline(EEG, events, store, "Eeg")
    _, batches = _online(EEG, events, store, "Eeg", 64)
    np.testing.assert_array_equal(np.stack([w.data for b in batches for w in b]), offline)


def test_windows_come_out_as_soon_as_their_last_sample_is_in(study, prepared):
    events, store = prepared
    pipe, batches = _online(MEG, events, store, "Meg", 10)  # chunks of 10 ms at 1 kHz
    starts = np.array([w.start for b in batches for w in b])
    onsets = events.loc[events["type"] == "Word", "start"].to_numpy()[: len(starts)]
    np.testing.assert_allclose(starts, onsets - 0.1)
    assert all(len(b) == 1 for b in batches)  # words are > 50 ms apart: one window per chunk
    # each window is cut in the chunk holding its last sample (0.4 s after the onset)
    path = study.path / "sub-01" / "sub-01_meg.fif"
    source = ArraySource.from_file(path, 10)
    pipe = OnlinePipeline(MEG, source.info, WORDS, scaling=stored_scaling(MEG, events, store))
    for marker in markers_from_events(events, "Word", "sub-01"):
        pipe.push_marker(marker)
    emitted_at = []
    for chunk in source:
        if pipe.push(chunk) is not None:
            emitted_at.append(chunk.first + chunk.n)  # samples in so far
    # a window's last output sample j (100 Hz) is input sample 10 * j (1 kHz)
    first = np.round((onsets[: len(emitted_at)] - 0.1) * 100).astype(int)
    last_needed = 10 * (first + 49) + 1  # input samples in when it is available
    lag = np.array(emitted_at) - last_needed
    assert lag.min() >= 0 and lag.max() < 10  # cut in the very chunk holding that sample


def test_torch_and_jax_batches(study, prepared):
    events, store = prepared
    _, (first, *_) = _online(MEG, events, store, "Meg", 50, backend="torch")
    import torch

    assert isinstance(first["meg"], torch.Tensor) and tuple(first["meg"].shape) == (1, 12, 50)
    assert first.trigger.tolist() == [0] and first.start.dtype == torch.float64
    # sample times relative to the trigger, as a SegmentDataset gives them offline
    np.testing.assert_allclose(first.times["meg"].numpy(), -0.1 + np.arange(50) / 100.0)
    _, (jfirst, *_) = _online(MEG, events, store, "Meg", 50, backend="jax")
    np.testing.assert_array_equal(np.asarray(jfirst["meg"]), first["meg"].numpy())


def test_sliding_windows(study, prepared):
    events, store = prepared
    meg = MEG.replace(baseline=None)  # same stored data (baseline is applied when reading)
    segmenter = SlidingSegmenter(duration=0.5, stride=0.25)
    offline_segments = segmenter(events.query("type == 'Meg'"))
    offline = meg.read(offline_segments, store).data
    source = ArraySource.from_file(study.path / "sub-01" / "sub-01_meg.fif", 64)
    pipe = OnlinePipeline(
        meg, source.info, segmenter, scaling=stored_scaling(meg, events, store), backend="numpy"
    )
    windows = [w for b in pipe.run(source) for w in b]
    assert [w.start for w in windows] == pytest.approx(list(offline_segments.start))
    np.testing.assert_array_equal(np.stack([w.data for w in windows]), offline)


def test_a_gap_in_the_stream_skips_only_the_windows_it_touches(study, prepared):
    events, store = prepared
    plain = MegExtractor(causal=True, frequency=1000.0, scaling="robust")  # stateless steps
    plain.prepare(events, store, progress=False)
    segments = WORDS.replace(require=("Meg",))(events)
    offline = plain.read(segments, store).data
    source = ArraySource.from_file(study.path / "sub-01" / "sub-01_meg.fif", 100)
    lost = [c for c in source if not 3000 <= c.first < 3200]  # two chunks never arrive
    pipe = OnlinePipeline(
        plain, source.info, WORDS, scaling=stored_scaling(plain, events, store), backend="numpy"
    )
    windows = [w for b in pipe.run(lost, markers_from_events(events, "Word", "sub-01")) for w in b]
    assert pipe.dropped == 200 and pipe.emitter is not None
    assert pipe.emitter.gaps == [(3000, 3200)]
    starts = np.asarray(segments.start)
    touched = [i for i, s in enumerate(starts) if s < 3.2 and s + 0.5 > 3.0]
    assert touched and pipe.emitter.missed == touched
    kept = [i for i in range(len(starts)) if i not in touched]
    np.testing.assert_array_equal(np.stack([w.data for w in windows]), offline[kept])


def test_chunked_filtering_and_decimation_equal_one_pass():
    from scipy.signal import sosfilt

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1000))
    sos = np.array([[0.2, 0.4, 0.2, 1.0, -0.5, 0.2], [1.0, -2.0, 1.0, 1.0, -1.8, 0.81]])
    filt, dec = SosFilter(sos, 3), Decimator(4, phase=2)
    parts, firsts = [], []
    for start, stop in ((0, 1), (1, 333), (333, 334), (334, 1000)):
        kept, first = dec(filt(x[:, start:stop]), start)
        parts.append(kept)
        firsts.append(first)
    whole = sosfilt(sos, x, axis=-1)[:, 2::4]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    assert firsts == [0, 0, 83, 83]  # output index of each chunk's first kept sample


def test_errors_name_the_fix(study, prepared):
    events, store = prepared
    info = StreamInfo(("MEG 001",), ("mag",), 1000.0)
    with pytest.raises(ValueError) as err:
        OnlinePreprocessor(MegExtractor(frequency=100.0), info)
    assert str(err.value) == (
        "MegExtractor.causal: streaming needs causal filters; set causal=True (the offline "
        "pipeline then uses the same filters, so stored and streamed windows agree)"
    )
    with pytest.raises(ValueError) as err:
        OnlinePreprocessor(MegExtractor(causal=True, scaling="robust"), info)
    assert str(err.value).startswith(
        "MegExtractor.scaling: 'robust' scaling online needs the statistics fitted offline"
    )
    with pytest.raises(ValueError) as err:
        OnlinePreprocessor(MegExtractor(causal=True, frequency=300.0), info)
    assert str(err.value) == (
        "the stream: causal resampling keeps one sample in q, so the 1000 Hz recording needs "
        "an output frequency of 1000/q Hz, got 300 Hz; pick such a frequency or set causal=False"
    )
    emitter = WindowEmitter(1, 100.0, 0.5, history=1.0)
    emitter.add_samples(np.zeros((300, 1), dtype=np.float32), 0)
    emitter.add_marker(Marker(0.5))
    with pytest.raises(WindowOverrunError) as err:
        emitter.add_samples(np.zeros((1, 1), dtype=np.float32), 300)
    assert str(err.value) == (
        "WindowEmitter: a window needs output sample 50, no longer in the 1.01 s history; "
        "raise history= or send markers earlier"
    )
    emitter = WindowEmitter(1, 100.0, 0.5, offset=-0.2)
    emitter.add_marker(Marker(0.1))  # its window would start before the stream
    assert emitter.add_samples(np.zeros((100, 1), dtype=np.float32), 0) == []
    assert emitter.missed == [0]


def test_causal_offline_filters_differ_from_zero_phase(prepared):
    """causal=True changes what is stored (and its key); the default stays zero-phase."""
    events, store = prepared
    zero_phase = MEG.replace(causal=False)
    assert zero_phase.prepare_key != MEG.prepare_key
    assert "causal" not in zero_phase.to_dict() or zero_phase.to_dict()["causal"] is False


def _stream_all_markers(extractor, events, store, segmenter):
    """Replay the MEG file with a marker for every event of the timeline, of every type."""
    source = ArraySource.from_file(
        events["study_root"].iloc[0] + "/sub-01/sub-01_meg.fif", 37
    )  # fmt: skip
    pipe = OnlinePipeline(
        extractor, source.info, segmenter, scaling=stored_scaling(extractor, events, store),
        backend="numpy",
    )  # fmt: skip
    markers = markers_from_events(events, None, "sub-01")
    windows = [w for b in pipe.run(source, markers) for w in b]
    return pipe, markers, windows


@pytest.mark.parametrize(
    "triggers", ["Word", "type == 'Stimulus' and code == 3", "type == 'Word' and text == 'dog'"]
)
def test_only_the_markers_the_triggers_select_cut_windows(study, prepared, triggers):
    events, store = prepared
    segmenter = WORDS.replace(triggers=triggers, require=("Meg",))
    offline_segments = segmenter(events)  # the offline selection on the same events
    offline = MEG.read(offline_segments, store).data
    pipe, markers, windows = _stream_all_markers(MEG, events, store, segmenter)
    assert {m.type for m in markers} == {"Meg", "Eeg", "Word", "Sentence", "Stimulus"}
    assert len(windows) == len(offline_segments) < len(markers)
    np.testing.assert_allclose([w.start for w in windows], offline_segments.start, atol=1e-12)
    np.testing.assert_array_equal(np.stack([w.data for w in windows]), offline)
    # a window's trigger is its marker's position in the marker stream (the timeline's rows)
    rows = np.flatnonzero(events["timeline"].astype(str) == "sub-01")
    assert list(rows[[w.trigger for w in windows]]) == list(offline_segments.trigger)


def test_sliding_windows_ignore_markers(study, prepared):
    events, store = prepared
    meg = MEG.replace(baseline=None)
    segmenter = SlidingSegmenter(duration=0.5, stride=0.25, blocks="Meg", require=("Meg",))
    offline_segments = segmenter(events)
    _, _, windows = _stream_all_markers(meg, events, store, segmenter)
    assert [w.start for w in windows] == pytest.approx(list(offline_segments.start))
    assert {w.trigger for w in windows} == {-1}
    np.testing.assert_array_equal(
        np.stack([w.data for w in windows]), meg.read(offline_segments, store).data
    )


def test_what_a_stream_cannot_honour_is_refused():
    info = StreamInfo(("MEG 001",), ("mag",), 1000.0)
    meg = MegExtractor(causal=True)
    with pytest.raises(ConfigError) as err:
        OnlinePipeline(meg, info, WORDS.replace(require=("Meg", "Sentence")))
    assert str(err.value) == (
        "TriggerSegmenter.require: online, windows are cut from the Meg stream itself, so only "
        "'Meg' can be required, got ['Meg', 'Sentence']; drop ['Sentence'] from require "
        "(select the trigger events with triggers= instead)"
    )
    with pytest.raises(ConfigError) as err:
        OnlinePipeline(meg, info, SlidingSegmenter(duration=0.5, stride=0.5, blocks="Sentence"))
    assert str(err.value) == (
        "SlidingSegmenter.blocks: online, sliding windows tile the Meg stream from its first "
        "sample, got blocks='Sentence'; set blocks=None or blocks='Meg'"
    )
    with pytest.raises(ConfigError) as err:
        OnlinePipeline(meg, info, WORDS.replace(duration=None))
    assert str(err.value) == (
        "TriggerSegmenter.duration: a stream needs fixed windows, got None; set "
        "TriggerSegmenter.duration"
    )
    pipe = OnlinePipeline(meg, info, WORDS)
    with pytest.raises(ValueError) as err:
        pipe.push_marker(Marker(1.5, "dog"))
    assert str(err.value) == (
        "OnlinePipeline: marker 0 (at 1.5 s, value 'dog') has no event type, so "
        "TriggerSegmenter.triggers='Word' cannot select it as it selects events offline; give "
        "the markers their type (Marker(..., type=...), markers_from_events, "
        "LslMarkers(..., type=...))"
    )
    pipe = OnlinePipeline(meg, info, WORDS.replace(triggers="type == 'Word' and code == 3"))
    with pytest.raises(ConfigError) as err:
        pipe.push_marker(Marker(1.5, "dog", "Word"))
    assert str(err.value).startswith(
        "TriggerSegmenter.triggers: cannot evaluate the event query \"type == 'Word' and "
        'code == 3": '
    )
