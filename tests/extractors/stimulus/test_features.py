"""Classic stimulus features, and the painting of per-event values (static and series) over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, config
from neuralset.events import validate_events
from neuralset.extractors.base import Computed, Item
from neuralset.extractors.event_features import EventFeatureExtractor, Series, resample_series
from neuralset.extractors.stimulus import (
    ImageStatistics,
    MelSpectrogram,
    SpeechEnvelope,
    WordFrequency,
    WordLength,
    image_statistics,
)
from neuralset.segments import segment_on_triggers, sliding_windows
from neuralset.store import Store
from neuralset.synthetic.stimuli import IMAGE_LEVELS, image_pixels
from tests.extractors.stimulus import hf_models


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return hf_models.stimulus_events()


# -- painting per-event values --------------------------------------------------------------
@config
class _Code(EventFeatureExtractor):
    """Static value per Stimulus event: ``[code, start]`` (distinct per event)."""

    default_event_type: ClassVar[str] = "Stimulus"

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        return [self.item_key(int(r)) for r in rows]

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows = self.event_rows(events)
        starts = events["start"].to_numpy()
        return [
            Item(k, str(r), (float(events["code"][r]), float(starts[r])))
            for k, r in zip(self.row_keys(events, rows), rows)
        ]

    def compute(self, item: Item) -> Computed:
        return Computed(value=np.array(item.payload, dtype=np.float32))


@config
class _Clock(EventFeatureExtractor):
    """Series per Stimulus event at ``rate`` Hz whose every sample equals its time since onset."""

    default_event_type: ClassVar[str] = "Stimulus"
    rate: float = 50.0

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        return [self.item_key(int(r)) for r in rows]

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows = self.event_rows(events)
        durs = events["duration"].to_numpy()
        return [Item(k, str(r), float(durs[r])) for k, r in zip(self.row_keys(events, rows), rows)]

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        out = []
        for item in items:
            n = int(np.ceil(item.payload * self.rate)) + 1
            data = (np.arange(n) / self.rate)[:, None].astype(np.float32)
            out.append(Computed(arrays={"data": data}, meta={"sfreq": self.rate}))
        return out


def _overlapping_events() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 40
    starts = np.sort(rng.uniform(0, 10, n))
    return validate_events(
        pd.DataFrame(
            {
                "type": "Stimulus",
                "start": starts,
                "duration": rng.uniform(0, 0.8, n),
                "timeline": "t",
                "code": np.arange(n),
            }
        )
    )


@pytest.mark.parametrize("time_major", [False, True])
def test_vectorised_painting_equals_a_per_event_loop(tmp_path, time_major):
    events = _overlapping_events()  # overlapping events, instantaneous ones included
    ex = _Code(frequency=37.0, time_major=time_major)
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = sliding_windows(events, duration=1.3, stride=0.41)
    got = ex.read(segments, store).data
    # the loop of the original implementation: later events overwrite earlier ones
    expected = np.zeros_like(got)
    seg, rows = segments.overlapping("Stimulus")
    for i, r in zip(seg, rows):
        s0, d = events["start"][r], events["duration"][r]
        lo = int(np.ceil((s0 - segments.start[i]) * 37.0 - 1e-6))
        hi = max(int(np.ceil((s0 + d - segments.start[i]) * 37.0 - 1e-6)), lo + 1)
        a, b = np.clip([lo, hi], 0, got.shape[-1])
        expected[i, :, a:b] = np.array([events["code"][r], s0], dtype=np.float32)[:, None]
    np.testing.assert_array_equal(got, expected)
    # time_major: the same values, time the slow axis in memory (a view, no copy)
    assert np.moveaxis(got, -1, 1).flags.c_contiguous is time_major


KEYED_ROWS: list[int] = []


@config
class _CountedCode(_Code):
    """``_Code`` counting the event rows it computes a store key for."""

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        KEYED_ROWS.extend(np.asarray(rows).tolist())
        return super().row_keys(events, rows)


def test_check_and_reads_compute_each_row_key_once(tmp_path):
    # check() asks for the keys the reads use (memoised on the event index): each event's key
    # is computed once for the check and a whole epoch, and a missing item is still named
    from neuralset.loaders import DatasetNotReadyError, SegmentDataset

    events = _overlapping_events()
    ex = _CountedCode(frequency=37.0)
    segments = sliding_windows(events, duration=1.3, stride=0.41)
    with pytest.raises(DatasetNotReadyError, match=r"40 items missing: 0, 1, 2 \(and 37 more\)"):
        SegmentDataset(segments, {"code": ex}, Store(tmp_path / "empty")).check()
    store = Store(tmp_path / "store")
    ex.prepare(events, store, progress=False)
    ds = SegmentDataset(sliding_windows(events, duration=1.3, stride=0.41), {"code": ex}, store)
    KEYED_ROWS.clear()
    ds.check()
    for start in range(0, len(ds), 7):
        ds.__getitems__(list(range(start, min(start + 7, len(ds)))))
    assert sorted(KEYED_ROWS) == list(range(40))


@pytest.mark.parametrize(("frequency", "time_major"), [(50.0, False), (200.0, True), (None, False)])
def test_series_painted_on_their_own_clock(tmp_path, frequency, time_major):
    events = validate_events(
        pd.DataFrame(
            {"type": "Stimulus", "start": [1.003, 2.5], "duration": [1.0, 0.6], "timeline": "t"}
        )
    )
    ex = _Clock(frequency=frequency, time_major=time_major)
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Stimulus", offset=-0.1, duration=0.5)
    got = ex.read(segments, store).data[:, 0]  # (segments, time): one feature, one layout
    f = frequency or 50.0
    times = (
        segments.start[:, None] + np.arange(got.shape[1]) / f - events["start"].to_numpy()[:, None]
    )
    inside = times >= -1e-9
    np.testing.assert_allclose(got[inside], times[inside], atol=1e-5)  # each sample = its own time
    assert (got[~inside] == 0).all()
    static = ex.replace(output="static", aggregation="trigger").read(segments, store).data[:, 0]
    np.testing.assert_allclose(
        static, [np.arange(51).mean() / 50, np.arange(31).mean() / 50], atol=1e-6
    )


@pytest.mark.parametrize("time_major", [False, True])
def test_a_batch_overlapping_no_event_reads_zeros_of_the_stored_shape(tmp_path, time_major):
    # windows over a block, the events only in its first second: a batch of later windows
    # overlaps none, and reads zeros shaped like any other batch (not 0 features)
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Stimulus", "Stimulus", "Action"],
                "start": [0.1, 0.5, 0.0],
                "duration": [0.3, 0.4, 10.0],
                "timeline": "t",
                "code": [1, 2, 0],
            }
        )
    )
    store = Store(tmp_path)
    windows = sliding_windows(events, duration=1.0, stride=1.0, blocks="Action")
    empty = windows.select(slice(5, 8))
    code = _Code(frequency=20.0, time_major=time_major)
    clock = _Clock(frequency=None, time_major=time_major)  # the series' own 50 Hz
    for ex in (code, clock):
        ex.prepare(events, store, progress=False)
    first = code.read(windows.select(slice(0, 2)), store).data
    assert first.shape == (2, 2, 20) and first[0, 0, 2] == 1.0
    got = code.read(empty, store).data
    assert got.shape == (3, 2, 20) and not got.any()
    assert np.moveaxis(got, -1, 1).flags.c_contiguous is time_major
    got = clock.read(empty, store).data
    assert got.shape == (3, 1, 50) and not got.any()
    static = code.replace(output="static", aggregation="mean")
    np.testing.assert_array_equal(static.read(empty, store).data, np.zeros((3, 2), np.float32))
    np.testing.assert_array_equal(
        static.read(windows.select(slice(0, 1)), store).data, np.float32([[1.5, 0.3]])
    )
    blocks = events[events["type"] == "Action"].reset_index(drop=True)
    alone = sliding_windows(blocks, duration=1.0, stride=1.0, blocks="Action")
    with pytest.raises(
        ValueError,
        match=r"^_Code reads Stimulus events, but the events table has none \(event types "
        r"present: Action \(1\)\); set event_type or add these events$",
    ):
        code.read(alone, store)


def test_dynamic_read_without_frequency_names_the_fix(tmp_path):
    events = _overlapping_events()
    store = Store(tmp_path)
    ex = _Code()  # the defaults: dynamic output, frequency None
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Stimulus", duration=0.5)
    with pytest.raises(ConfigError) as err:
        ex.read(segments, store)
    assert str(err.value) == (
        "_Code.frequency must be set for dynamic outputs: its stored features are one vector "
        "per event, painted over each segment's samples at that rate; set frequency (Hz, e.g. "
        "that of the brain signal read alongside), or output='static'"
    )
    assert ex.replace(frequency=10.0).read(segments, store).data.shape == (40, 2, 5)


def test_resample_series_downsampling_box_average():
    series = Series(data=(np.arange(100) / 100.0)[:, None].astype(np.float32), sfreq=100.0)
    times = np.arange(1, 9) / 10.0  # 10 Hz: mean of 10 samples around each time
    np.testing.assert_allclose(resample_series(series, times)[:, 0], times, atol=1e-6)


# -- classic features -------------------------------------------------------------------------
def test_mel_spectrogram_matches_transformers_audio_utils(events, tmp_path):
    import soundfile
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    ex = MelSpectrogram(n_mels=24)
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Audio", duration=1.5)
    got = ex.read(segments, store).data  # frequency None -> 100 Hz frames
    assert got.shape == (len(segments), 24, 150)
    path = hf_models.stimulus_study().path / events[events["type"] == "Audio"]["filepath"].iloc[0]
    x, sr = soundfile.read(str(path), dtype="float32")
    filters = mel_filter_bank(201, 24, 0.0, 8000.0, sr, norm="slaney", mel_scale="slaney")
    ref = spectrogram(
        x,
        window_function(400, "hann"),
        frame_length=400,
        hop_length=160,
        power=2.0,
        mel_filters=filters,
        log_mel="dB",
        mel_floor=1e-10,
    )
    np.testing.assert_allclose(got[0], ref[:, :150], atol=1e-3)


def test_speech_envelope_of_an_am_tone(tmp_path):
    import soundfile

    sr = 16000
    t = np.arange(3 * sr) / sr
    modulator = 1 + 0.5 * np.sin(2 * np.pi * 3 * t)
    path = tmp_path / "am.wav"
    soundfile.write(
        str(path),
        (0.4 * modulator * np.sin(2 * np.pi * 1000 * t)).astype(np.float32),
        sr,
        subtype="FLOAT",
    )
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Audio"],
                "start": [2.0],
                "duration": [3.0],
                "timeline": ["t"],
                "filepath": [str(path)],
            }
        )
    )
    ex = SpeechEnvelope(cutoff=10.0, envelope_rate=100.0)
    store = Store(tmp_path / "store")
    ex.prepare(events, store, progress=False)
    got = ex.read(segment_on_triggers(events, "Audio"), store).data[0, 0]  # 300 samples at 100 Hz
    expected = 0.4 * (1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(300) / 100))
    np.testing.assert_allclose(got[30:270], expected[30:270], atol=0.01)


def test_word_length_and_frequency(events, tmp_path):
    from wordfreq import zipf_frequency

    store = Store(tmp_path)
    segments = segment_on_triggers(events, "Word", duration=0.2)
    words = events.loc[events["type"] == "Word", "text"].to_numpy()
    length = WordLength(output="static", aggregation="trigger")
    length.prepare(events, store, progress=False)
    np.testing.assert_array_equal(length.read(segments, store).data[:, 0], [len(w) for w in words])
    freq = WordFrequency(output="static", aggregation="trigger")
    freq.prepare(events, store, progress=False)
    np.testing.assert_allclose(
        freq.read(segments, store).data[:, 0], [zipf_frequency(w, "en") for w in words], atol=1e-6
    )
    study = WordFrequency(source="study", output="static", aggregation="trigger")
    study.prepare(events, store, progress=False)
    counts = pd.Series(words).value_counts()
    expected = [np.log10(counts[w] / len(words) * 1e9) for w in words]
    np.testing.assert_allclose(study.read(segments, store).data[:, 0], expected, atol=1e-5)


def test_image_statistics(events, tmp_path):
    ex = ImageStatistics(n_bins=4, output="static", aggregation="trigger")
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    got = ex.read(segment_on_triggers(events, "Image"), store).data
    assert got.shape == (int((events["type"] == "Image").sum()), 2 + 12)
    # image 0 of the study: gray background at IMAGE_LEVELS[0], 64 of 1024 pixels in a colored square
    rng = hf_models.stimulus_study().rng(0, "image")
    pixels = image_pixels(0, rng)
    lum = pixels.astype(float) / 255 @ [0.2126, 0.7152, 0.0722]
    np.testing.assert_allclose(got[0, :2], [lum.mean(), lum.std()], atol=1e-6)
    assert got[0, 2 + IMAGE_LEVELS[0] // 64] >= 960 / 1024  # red histogram: the background bin
    np.testing.assert_allclose(got[0, 2:6].sum(), 1.0, atol=1e-6)
    gray = np.full((4, 4, 3), 51, np.uint8)
    np.testing.assert_allclose(image_statistics(gray, 2), [0.2, 0.0, 1, 0, 1, 0, 1, 0], atol=1e-6)


def test_feature_config_errors():
    with pytest.raises(ConfigError, match="MelSpectrogram.fmax: 9000.0 Hz exceeds the Nyquist"):
        MelSpectrogram(fmax=9000.0)
    with pytest.raises(ConfigError, match="SpeechEnvelope.cutoff: must be > 0 Hz"):
        SpeechEnvelope(cutoff=0.0)
    with pytest.raises(ConfigError, match="WordFrequency.source: expected one of"):
        WordFrequency(source="web")


def test_mel_bands_outside_the_spectrum_are_refused_before_any_work(tmp_path):
    """Inverted bands, or bands above a file's Nyquist frequency read at its own rate, were
    computed silently (filters of zeros: -100 dB)."""
    import soundfile

    with pytest.raises(ConfigError) as err:
        MelSpectrogram(fmin=4000.0, fmax=2000.0)
    assert str(err.value) == (
        "MelSpectrogram.fmin: the mel bands span [fmin, fmax), got fmin=4000.0 Hz with "
        "fmax=2000.0 Hz (Nyquist: 8000.0 Hz); give 0 <= fmin below fmax and the Nyquist frequency"
    )
    path = tmp_path / "low.wav"
    soundfile.write(str(path), np.zeros(8000, np.float32), 8000)
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Audio"],
                "start": [0.0],
                "duration": [1.0],
                "timeline": ["t"],
                "filepath": [str(path)],
            }
        )
    )
    store = Store(tmp_path / "store")
    with pytest.raises(ConfigError) as err:
        MelSpectrogram(sample_rate=None, fmax=6000.0).prepare(events, store, progress=False)
    assert str(err.value) == (
        "MelSpectrogram.fmax: bands [0.0, 6000.0) Hz exceed the Nyquist frequency (4000 Hz) of "
        f"{path} read at its own rate (sample_rate=None); lower fmax and fmin, or set sample_rate"
    )
    assert not list(store.keys())
    MelSpectrogram(sample_rate=None, fmax=4000.0).prepare(events, store, progress=False)


def test_speech_envelope_cutoff_above_a_files_nyquist_is_refused_before_any_work(tmp_path):
    """The low-pass was skipped without a word when cutoff reached the Nyquist frequency."""
    import soundfile

    path = tmp_path / "low.wav"
    soundfile.write(str(path), np.zeros(800, np.float32), 800)
    events = validate_events(
        pd.DataFrame(
            {"type": ["Audio"], "start": [0.0], "duration": [1.0], "timeline": ["t"],
             "filepath": [str(path)]}
        )
    )  # fmt: skip
    store = Store(tmp_path / "store")
    with pytest.raises(ConfigError) as err:
        SpeechEnvelope(cutoff=400.0).prepare(events, store, progress=False)
    assert str(err.value) == (
        f"SpeechEnvelope.cutoff: 400.0 Hz is not below the Nyquist frequency (400 Hz) of {path}; "
        "lower cutoff"
    )
    assert not list(store.keys())
    SpeechEnvelope(cutoff=399.0).prepare(events, store, progress=False)
    assert len(list(store.keys())) == 1
