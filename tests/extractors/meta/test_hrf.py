"""HrfConvolve against nilearn's compute_regressor / glover_hrf on the same onsets and frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.events import validate_events
from neuralset.extractors.base import ExtractorNotPreparedError
from neuralset.extractors.events import EventField, LabelEncoder, Pulse
from neuralset.extractors.meta import Concat, HrfConvolve
from neuralset.extractors.stimulus import WordLength
from neuralset.segments import Segments, sliding_windows
from neuralset.store import Store

TR = 2.0
RUN_START = 3.0
N_FRAMES = 60


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    onsets = np.sort(rng.uniform(RUN_START - 20.0, RUN_START + N_FRAMES * TR - 5, size=40))
    durations = rng.choice([0.0, 0.3, 1.7, 4.0], size=len(onsets))
    words = pd.DataFrame(
        {
            "type": "Word",
            "start": onsets,
            "duration": durations,
            "timeline": "run-1",
            "text": rng.choice(["a", "tree", "house", "encyclopedia"], size=len(onsets)),
            "a": rng.normal(size=len(onsets)),
            "b": rng.uniform(1, 3, size=len(onsets)),
        }
    )
    run = pd.DataFrame(
        {
            "type": ["Fmri"],
            "start": [RUN_START],
            "duration": [N_FRAMES * TR],
            "timeline": ["run-1"],
            "filepath": ["run-1_bold.nii"],
            "frequency": [1 / TR],
        }
    )
    return validate_events(pd.concat([run, words], ignore_index=True))


def _whole_run(events: pd.DataFrame) -> Segments:
    code = events["timeline"].cat.codes.to_numpy()[0]
    return Segments(
        events=events,
        start=np.array([RUN_START]),
        duration=np.array([N_FRAMES * TR]),
        timeline=np.array([code], dtype=np.int32),
        trigger=np.array([0]),
    )


def _nilearn(events: pd.DataFrame, amplitudes: np.ndarray, hrf: str) -> np.ndarray:
    """compute_regressor per feature column: (features, basis, frames)."""
    from nilearn.glm.first_level import compute_regressor

    words = events[events["type"] == "Word"]
    frame_times = RUN_START + np.arange(N_FRAMES) * TR
    out = []
    for column in np.atleast_2d(amplitudes.T):
        cond = np.vstack([words["start"], words["duration"], column])
        reg, _ = compute_regressor(cond, hrf, frame_times, oversampling=50, min_onset=-24)
        out.append(reg.T)
    return np.stack(out)


@pytest.mark.parametrize(
    "hrf", ["glover", "spm", "glover + derivative + dispersion", "spm + derivative"]
)
def test_equals_nilearn_compute_regressor(events, tmp_path, hrf):
    store = Store(tmp_path)
    inner = Concat(
        extractors=(
            EventField(event_type="Word", field="a"),
            EventField(event_type="Word", field="b"),
        )
    )
    ex = HrfConvolve(extractor=inner, hrf=hrf, frequency=1 / TR)
    ex.prepare(events, store, progress=False)
    ours = ex.read(_whole_run(events), store).data[0]  # (features * basis, frames)
    words = events[events["type"] == "Word"]
    ref = _nilearn(events, words[["a", "b"]].to_numpy(), hrf)
    assert ours.shape == (2 * ex.n_basis, N_FRAMES)
    # float32 storage of nilearn's float64 result
    np.testing.assert_allclose(
        ours.reshape(ref.shape), ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max()
    )


def test_word_feature_from_the_store_and_windows(events, tmp_path):
    """A stored word feature (WordLength), read back on sliding windows of the grid."""
    store = Store(tmp_path)
    inner = WordLength(output="static", aggregation="trigger")
    ex = HrfConvolve(extractor=inner, frequency=1 / TR)
    report = ex.prepare(events, store, progress=False)
    assert report.computed == 1 + len(set(events["text"].dropna()))  # 1 run + distinct words
    lengths = events.loc[events["type"] == "Word", "text"].str.len().to_numpy(float)
    ref = _nilearn(events, lengths, "glover")[0, 0]
    whole = ex.read(_whole_run(events), store).data[0, 0]
    np.testing.assert_allclose(whole, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # one static segment per frame (the usual encoding set-up) gives the frame's value
    frames = sliding_windows(events, duration=TR, stride=TR, blocks="Fmri")
    static = ex.replace(output="static").read(frames, store).data[:, 0]
    np.testing.assert_allclose(static, ref[: len(static)], rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # a 10 s dynamic window starting at frame 7
    seg = _whole_run(events)
    win = Segments(
        events=events,
        start=np.array([RUN_START + 7 * TR]),
        duration=np.array([10.0]),
        timeline=seg.timeline,
        trigger=np.array([-1]),
    )
    np.testing.assert_array_equal(ex.read(win, store).data[0, 0], whole[7:12])
    # prepared again: nothing recomputed, and the inner extractor alone is found in the store
    assert ex.prepare(events, store, progress=False).computed == 0
    assert inner.prepare(events, store, progress=False).computed == 0


def test_series_input_equals_convolution_with_glover_hrf(events, tmp_path):
    from nilearn.glm.first_level import glover_hrf

    store = Store(tmp_path)
    pulse = Pulse(event_type="Word", frequency=10.0)
    ex = HrfConvolve(extractor=pulse, frequency=1 / TR, min_onset=-10.0)
    ex.prepare(events, store, progress=False)
    ours = ex.read(_whole_run(events), store).data[0, 0]
    # the reference: the pulse series from min_onset before the run, convolved, interpolated
    t0 = RUN_START - 10.0
    frame_times = RUN_START + np.arange(N_FRAMES) * TR
    n_in = int(np.ceil((frame_times[-1] - t0) * 10.0)) + 2
    code = np.array([events["timeline"].cat.codes.iloc[0]], dtype=np.int32)
    seg = Segments(events, np.array([t0]), np.array([n_in / 10.0]), code, np.array([-1]))
    series = pulse.read(seg, store).data[0, 0].astype(np.float64)
    conv = np.convolve(series, glover_hrf(0.1, 1))[:n_in]
    ref = np.interp(frame_times, t0 + np.arange(n_in) / 10.0, conv)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    assert ref.max() > 0.1  # the words really are there


def test_errors_and_yaml(events, tmp_path):
    static = WordLength(output="static", aggregation="trigger")
    with pytest.raises(ConfigError, match=r"^HrfConvolve.frequency: give the fMRI frame rate"):
        HrfConvolve(extractor=static)
    with pytest.raises(ConfigError, match=r"WordLength is dynamic without a frequency"):
        HrfConvolve(extractor=WordLength(), frequency=0.5)
    with pytest.raises(ConfigError, match=r"^HrfConvolve.min_onset: must be <= 0 s, got 3.0"):
        HrfConvolve(extractor=static, frequency=0.5, min_onset=3.0)
    # class positions are not amplitudes (they were convolved as such, silently)
    with pytest.raises(
        ConfigError,
        match=r"^HrfConvolve.extractor: LabelEncoder reads class positions \(int64\), not "
        r"amplitudes \(convolved, each class would weigh its position in the vocabulary\); "
        r"convolve amplitudes: a Pulse per condition, an EventField, stimulus features$",
    ):
        HrfConvolve(extractor=LabelEncoder(event_type="Word", field="text"), frequency=0.5)
    field = EventField(event_type="Word", field="a")
    ex = HrfConvolve(extractor=field, frequency=0.5, hrf="spm + derivative")
    back = from_dict(ex.to_dict())
    assert back == ex and back.prepare_key == ex.prepare_key
    assert ex.to_dict()["kind"] == "hrf_convolve"
    assert ex.to_dict()["extractor"]["kind"] == "event_field"
    with pytest.raises(ExtractorNotPreparedError, match="HrfConvolve has no stored regressors"):
        ex.read(_whole_run(events), Store(tmp_path))
    # the key follows the inner extractor's key and the HRF settings
    assert ex.prepare_key != ex.replace(hrf="spm").prepare_key
    assert ex.prepare_key != ex.replace(extractor=field.replace(field="b")).prepare_key


def test_runs_missing_or_too_short_are_refused_before_the_inner_prepare(events, tmp_path):
    static = WordLength(output="static", aggregation="trigger")
    store = Store(tmp_path)
    typo = HrfConvolve(extractor=static, frequency=1 / TR, grid="fmri")
    with pytest.raises(ValueError) as err:  # was: prepared nothing, then failed at read
        typo.prepare(events, store, progress=False)
    assert str(err.value) == (
        "HrfConvolve.grid: the events table has no 'fmri' event (the runs whose frames set the "
        "grid; event types present: Word (40), Fmri (1)); set grid to the event type of the "
        "fMRI runs"
    )
    short = events.copy()
    short.loc[0, "duration"] = 1.4  # 0.7 frame at TR = 2 s
    short = validate_events(short)
    with pytest.raises(ValueError) as err:
        HrfConvolve(extractor=static, frequency=1 / TR).prepare(short, store, progress=False)
    assert str(err.value) == (
        "HrfConvolve: the Fmri event of row 0 spans 1 frame(s) at 0.5 Hz; nilearn's regressors "
        "need at least 2: check its duration and HrfConvolve.frequency (1 / TR)"
    )
    assert list(store.keys()) == []  # nothing computed, not even the inner word lengths


def test_composes_with_pca(events, tmp_path):
    """HrfConvolve(PCA(HuggingFaceText)): the regressors of the projected word vectors (the
    PCA through a local executor is tested in test_pca)."""
    from neuralset.extractors.meta import PCA
    from neuralset.extractors.stimulus import HuggingFaceText
    from tests.extractors.stimulus import hf_models

    words = events["type"] == "Word"
    split = np.where(events["start"] < RUN_START + 60.0, "train", "test")
    table = events.assign(split=np.where(words, split, "train"))
    text = HuggingFaceText(
        model=str(hf_models.bert_dir()), output="static", aggregation="trigger", device="cpu"
    )
    pca = PCA(extractor=text, n_components=2, fit_on="train")
    ex = HrfConvolve(extractor=pca, frequency=1 / TR)
    store = Store(tmp_path)
    ex.prepare(table, store, progress=False)
    ours = ex.read(_whole_run(table), store).data[0]
    rows = np.flatnonzero(words.to_numpy())
    segs = Segments(
        events=table,
        start=table["start"].to_numpy()[rows],
        duration=np.maximum(table["duration"].to_numpy()[rows], 1e-6),
        timeline=table["timeline"].cat.codes.to_numpy()[rows].astype(np.int32),
        trigger=rows,
    )
    projected = pca.read(segs, store).data  # (words, 2): the PCA of each word's vector
    ref = _nilearn(table, projected.astype(np.float64), "glover")[:, 0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    # a different training split changes the PCA fit, hence the regressors' keys
    other = table.assign(
        split=np.where(words, np.where(split == "train", "test", "train"), "train")
    )
    assert [i.key for i in ex.items(other)] != [i.key for i in ex.items(table)]


def test_two_runs_on_one_timeline_equal_nilearn_on_each_runs_own_words(tmp_path):
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(0)  # run 2 starts 180 s after run 1's words end
    word_times = [np.sort(rng.uniform(0, 110, 400)), np.sort(rng.uniform(300, 410, 60))]
    runs = pd.DataFrame(
        [dict(type="Fmri", start=s, duration=N_FRAMES * TR, timeline="ses-1", filepath=f"r{s}.nii",
              frequency=1 / TR) for s in (0.0, 300.0)]
    )  # fmt: skip
    words = pd.DataFrame(
        {
            "type": "Word",
            "start": np.concatenate(word_times),
            "duration": 0.3,
            "timeline": "ses-1",
            "text": "w",
        }
    )
    events = validate_events(pd.concat([runs, words], ignore_index=True))
    ex = HrfConvolve(extractor=Pulse(event_type="Word", output="static"), frequency=1 / TR)
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    for item, onsets in zip(ex.items(events), word_times, strict=True):
        start = float(events["start"].iloc[item.payload["row"]])
        cond = np.vstack([onsets, np.full(len(onsets), 0.3), np.ones(len(onsets))])
        ref, _ = compute_regressor(cond, "glover", start + np.arange(N_FRAMES) * TR)
        ours = np.asarray(store.get_arrays(item.key)["data"])[:, 0]
        # before: run 1's 400 words stacked at the start of run 2's grid (-0.015 at frame 0)
        np.testing.assert_allclose(ours, ref[:, 0], rtol=1e-5, atol=1e-6)


def test_a_start_halfway_between_frames_reads_the_later_frame(events, tmp_path):
    # the FmriExtractor's volumes round the same way: features and BOLD stay on one frame
    store = Store(tmp_path)
    ex = HrfConvolve(extractor=Pulse(event_type="Word", output="static"), frequency=1 / TR)
    ex.prepare(events, store, progress=False)
    stored = np.asarray(store.get_arrays(ex.items(events)[0].key)["data"])[:, 0]
    code = events["timeline"].cat.codes.to_numpy()[0]
    offsets = np.array([1.0, 3.0, 5.0, 7.0])  # 0.5, 1.5, 2.5, 3.5 frames
    segments = Segments(
        events=events,
        start=RUN_START + offsets,
        duration=np.full(4, TR),
        timeline=np.full(4, code, dtype=np.int32),
        trigger=np.full(4, -1),
    )
    got = ex.replace(output="static", aggregation="trigger").read(segments, store).data[:, 0]
    np.testing.assert_array_equal(got, stored[[1, 2, 3, 4]])
    np.testing.assert_array_equal(ex.read(segments, store).data[:, 0, 0], stored[[1, 2, 3, 4]])


@pytest.mark.parametrize("aggregation", ["trigger", "mean"])
def test_overlapping_events_keep_their_own_amplitudes(aggregation, tmp_path):
    """With aggregation="mean", an event's boxcar was the mean of the events overlapping its
    span (here 3 instead of 1 and 5, 3 instead of 2 and 4), under the same key as "trigger"."""
    from nilearn.glm.first_level import compute_regressor

    onsets, durations = np.array([10.0, 10.5, 30.0, 30.0]), np.array([2.0, 0.0, 1.0, 1.0])
    amplitudes = np.array([1.0, 5.0, 2.0, 4.0])
    run = {"type": ["Fmri"], "start": [0.0], "duration": [60.0], "timeline": ["r"]}
    events = validate_events(
        pd.concat(
            [
                pd.DataFrame({**run, "filepath": ["r.nii"], "frequency": [0.5]}),
                pd.DataFrame(
                    {
                        "type": "Stimulus",
                        "start": onsets,
                        "duration": durations,
                        "timeline": "r",
                        "a": amplitudes,
                    }
                ),
            ],
            ignore_index=True,
        )
    )
    inner = EventField(event_type="Stimulus", field="a", aggregation=aggregation)
    hrf = HrfConvolve(extractor=inner, frequency=0.5)
    store = Store(tmp_path)
    hrf.prepare(events, store, progress=False)
    whole = Segments(
        events=events,
        start=np.array([0.0]),
        duration=np.array([60.0]),
        timeline=np.zeros(1, np.int32),
        trigger=np.array([0]),
    )
    frames = np.arange(30) * 2.0
    ref, _ = compute_regressor(np.vstack([onsets, durations, amplitudes]), "glover", frames)
    np.testing.assert_allclose(hrf.read(whole, store).data[0, 0], ref[:, 0], atol=1e-6)
