"""PCA against sklearn.decomposition.PCA fitted on the same (training) rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.events import AssignSplits
from neuralset.execution import LocalExecutor, PrepareError
from neuralset.extractors.base import ExtractorNotPreparedError
from neuralset.extractors.events import EventField, LabelEncoder, Pulse
from neuralset.extractors.meta import PCA
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.extractors.stimulus import HuggingFaceText
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models

# float32 features, float64 fit and projection: what separates us from sklearn on the same rows
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def split_events(small_events: pd.DataFrame) -> pd.DataFrame:
    return AssignSplits(by="timeline", ratios=(0.5, 0.5), names=("train", "test"))(small_events)


def _words(events: pd.DataFrame, split: str):
    segs = segment_on_triggers(events, "Word", duration=0.5)
    return segs.select(events["split"].to_numpy()[segs.trigger] == split)


@pytest.fixture(scope="module")
def text() -> HuggingFaceText:
    return HuggingFaceText(
        model=str(hf_models.bert_dir()),
        layers=(0, 1.0),
        layer_aggregation="none",
        output="static",
        aggregation="trigger",
        device="cpu",
    )


@pytest.mark.parametrize("per_layer", [False, True])
def test_equals_sklearn_on_training_words(split_events, text, tmp_path, per_layer):
    from sklearn.decomposition import PCA as SkPCA

    store = Store(tmp_path)
    pca = PCA(extractor=text, n_components=5, fit_on="train", per_layer=per_layer, whiten=True)
    pca.prepare(split_events, store, progress=False)
    train, test = _words(split_events, "train"), _words(split_events, "test")
    x_train = text.read(train, store).data  # (n, layers, features): the stored vectors
    x_test = text.read(test, store).data
    assert x_train.shape[1:] == (2, 32)
    ours = pca.read(test, store).data
    if per_layer:
        refs = [
            SkPCA(n_components=5, whiten=True, svd_solver="full")
            .fit(x_train[:, i])
            .transform(x_test[:, i])
            for i in range(2)
        ]
        assert ours.shape == (len(test), 2, 5)
        np.testing.assert_allclose(ours, np.stack(refs, axis=1), **TOL)
    else:
        sk = SkPCA(n_components=5, whiten=True, svd_solver="full").fit(
            x_train.reshape(len(x_train), -1)
        )
        assert ours.shape == (len(test), 5)
        np.testing.assert_allclose(ours, sk.transform(x_test.reshape(len(x_test), -1)), **TOL)
    # the fit saw the training words only, once per event
    (item,) = pca.items(split_events)
    assert store.meta(item.key)["n_rows"] == len(train)


def test_recordings_rows_are_time_samples_and_no_leakage(split_events, tmp_path):
    from sklearn.decomposition import PCA as SkPCA

    store = Store(tmp_path)
    meg = MegExtractor(frequency=100.0, picks=("meg",))
    pca = PCA(extractor=meg, n_components=3, fit_on="train")
    pca.prepare(split_events, store, progress=False, executor=LocalExecutor(workers=1))
    rows = np.flatnonzero((split_events["type"] == "Meg").to_numpy())
    splits = split_events["split"].astype(str).to_numpy()[rows]
    train_item, test_item = (meg.items(split_events.iloc[[r]])[0] for r in rows)
    if splits[0] != "train":
        train_item, test_item = test_item, train_item
    x_train = np.asarray(store.get_arrays(train_item.key)["data"])  # (time, channels)
    sk = SkPCA(n_components=3, svd_solver="full").fit(x_train)
    test = _words(split_events, "test")
    ours = pca.read(test, store).data  # (n, 3, time)
    windows = meg.read(test, store).data  # (n, channels, time)
    ref = sk.transform(np.moveaxis(windows, 1, -1).reshape(-1, windows.shape[1]))
    ref = np.moveaxis(ref.reshape(len(test), -1, 3), -1, 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # the inner items are stored: more components than time samples is refused at preflight
    n_samples = len(x_train)
    with pytest.raises(ConfigError) as err:
        pca.replace(n_components=n_samples + 1).preflight(split_events, store)
    assert str(err.value) == (
        f"PCA.n_components: {n_samples + 1} components need at least as many training rows, "
        f"but fit_on='train' gives {n_samples} (the time samples of 1 training item); set "
        f"n_components to at most {n_samples}, or fit on more events (fit_on)"
    )
    # not stored yet: counted after the inner prepare, before the fit job
    fresh = Store(tmp_path / "fresh")
    too_many = pca.replace(n_components=n_samples + 1)
    with pytest.raises(ConfigError) as err:
        too_many.prepare(split_events, fresh, progress=False)
    assert str(err.value).startswith(f"PCA.n_components: {n_samples + 1} components need")
    assert fresh.has(train_item.key) and not fresh.has(too_many.fit_key(split_events))
    # changing a test-split event leaves the fit alone; a training one changes it
    key = pca.fit_key(split_events)
    test_word = np.flatnonzero(
        (split_events["type"] == "Word").to_numpy() & (split_events["split"] == "test").to_numpy()
    )[0]
    edited = split_events.copy()
    edited.loc[edited.index[test_word], "duration"] = 0.123
    assert pca.fit_key(edited) == key
    edited_train = split_events.copy()
    edited_train.loc[edited_train.index[rows[splits == "train"][0]], "offset"] = 0.5
    assert pca.fit_key(edited_train) != key


def test_errors(split_events, text, tmp_path):
    with pytest.raises(ConfigError, match=r"^PCA.fit_on: name the training events"):
        PCA(extractor=text, n_components=2)
    with pytest.raises(ConfigError, match=r"^PCA.n_components: must be >= 1, got 0"):
        PCA(extractor=text, n_components=0, fit_on="train")
    store = Store(tmp_path)
    no_split = split_events.drop(columns="split")
    pca = PCA(extractor=text, n_components=2, fit_on="train")
    with pytest.raises(
        ValueError,
        match=r"^PCA.fit_on: 'train' is a split name but the events have no 'split' column",
    ):
        pca.prepare(no_split, store, progress=False)
    assert not list(store.keys())  # checked before the inner extractor ran
    with pytest.raises(ValueError, match=r"^PCA.fit_on: 'validation' selects none of the"):
        pca.replace(fit_on="validation").prepare(split_events, store, progress=False)
    # more components than training words: refused at preflight, before the model runs
    n_train = int(((split_events["type"] == "Word") & (split_events["split"] == "train")).sum())
    with pytest.raises(ConfigError) as err:
        pca.replace(n_components=n_train + 1).prepare(split_events, store, progress=False)
    assert str(err.value) == (
        f"PCA.n_components: {n_train + 1} components need at least as many training rows, but "
        f"fit_on='train' gives {n_train} (one per training event); set n_components to at most "
        f"{n_train}, or fit on more events (fit_on)"
    )
    assert not list(store.keys())
    # enough rows but more components than the 32 features of a layer: only the fit can tell
    too_many = PCA(extractor=text, n_components=n_train - 1, fit_on="train", per_layer=True)
    assert 32 < n_train - 1
    with pytest.raises(
        PrepareError,
        match=rf"PCA.n_components: {n_train - 1} components from {n_train} training rows of 32 "
        r"features \(at most 32\); lower it",
    ):
        too_many.prepare(split_events, store, progress=False)
    with pytest.raises(ExtractorNotPreparedError, match="PCA has no stored fit"):
        pca.read(_words(split_events, "test"), store)
    assert pca.to_dict()["kind"] == "pca"
    meg_pca = PCA(extractor=MegExtractor(frequency=50.0), n_components=2, fit_on="split == 'train'")
    back = from_dict(meg_pca.to_dict())  # YAML round trip, the inner extractor by its kind
    assert back == meg_pca and back.prepare_key == meg_pca.prepare_key
    assert pca.prepare_key != pca.replace(n_components=3).prepare_key
    assert pca.prepare_key != pca.replace(extractor=text.replace(layers=(0,))).prepare_key


@pytest.mark.parametrize(
    "inner",
    [
        EventField(event_type="Word", field="code"),
        Pulse(event_type="Word", frequency=10.0),
        LabelEncoder(event_type="Word", field="text"),
    ],
)
def test_table_extractors_are_refused_at_construction(inner):
    """Values read from the events table are not stored: nothing to fit on (was a
    NotImplementedError about row_keys in prepare)."""
    with pytest.raises(
        ConfigError,
        match=rf"^PCA.extractor: {type(inner).__name__} stores no features to fit on \(its "
        r"values are read from the events table\); give an extractor whose prepare stores one "
        r"vector or series per event \(a text, image or audio extractor\), or a recording$",
    ):
        PCA(extractor=inner, n_components=1, fit_on="all")


def test_samples_without_event_stay_zero(tmp_path):
    """Painted features are zeros where no event is: projected they stay zeros (they were
    -mean_ @ components_.T, a constant vector over every silence); event samples equal
    sklearn's transform of the event's vector."""
    from sklearn.decomposition import PCA as SkPCA
    from sklearn.feature_extraction.text import CountVectorizer

    from neuralset.events import validate_events
    from neuralset.extractors.meta import Aggregate
    from neuralset.extractors.stimulus import BagOfWords
    from neuralset.segments import Segments

    texts = ["a cat sat", "the dog ran", "a dog sat", "the cat ran far", "cat cat dog"]
    events = validate_events(
        pd.DataFrame(
            {
                "type": "Sentence",
                "start": [1.0, 2.0, 3.0, 4.0, 5.0],
                "duration": 0.5,
                "timeline": "run-1",
                "text": texts,
            }
        )
    )
    store = Store(tmp_path)
    bow = BagOfWords(fit_on="all", weighting="count", output="dynamic", frequency=4.0)
    pca = PCA(extractor=bow, n_components=2, fit_on="all")
    pca.prepare(events, store, progress=False)
    counts = CountVectorizer(max_features=1000).fit_transform(texts).toarray()
    sk = SkPCA(n_components=2, svd_solver="full").fit(counts)
    # a window [0.5, 2.5): silence, the first sentence [1.0, 1.5), silence, the second [2.0, ...
    windows = Segments(
        events=events,
        start=np.array([0.5, 6.0]),
        duration=np.array([2.0, 2.0]),
        timeline=np.zeros(2, np.int32),
        trigger=np.full(2, -1, np.int64),
    )
    got = pca.read(windows, store).data
    assert got.shape == (2, 2, 8)
    expected = np.zeros((2, 2, 8), np.float32)
    expected[0, :, 2:4] = sk.transform(counts[:1]).T  # samples at 1.0 and 1.25 s
    expected[0, :, 6:8] = sk.transform(counts[1:2]).T  # samples at 2.0 and 2.25 s
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # a static mean over windows: the window without any sentence stays zeros
    mean = PCA(extractor=bow.replace(output="static"), n_components=2, fit_on="all")
    mean.prepare(events, store, progress=False)
    static = mean.read(windows, store).data
    np.testing.assert_allclose(
        static[0], sk.transform(counts[:2].mean(0, keepdims=True))[0], atol=1e-5
    )
    np.testing.assert_array_equal(static[1], [0.0, 0.0])
    # aggregated over time, silence does not count as a constant vector
    agg = Aggregate(extractor=pca, how="sum").read(windows, store).data
    np.testing.assert_allclose(agg, expected.sum(-1), atol=1e-5)


def test_series_at_their_own_rate_stay_zero_before_the_sound(tmp_path):
    """frequency=None: the samples before an Audio event (at the stored 100 Hz) stay zeros;
    the sound's samples equal sklearn's transform of its log-mel frames."""
    from sklearn.decomposition import PCA as SkPCA

    from neuralset.extractors.stimulus import MelSpectrogram
    from neuralset.segments import Segments

    events = hf_models.stimulus_events()
    store = Store(tmp_path)
    mel = MelSpectrogram(n_mels=8, output="dynamic")
    pca = PCA(extractor=mel, n_components=3, fit_on="all")
    pca.prepare(events, store, progress=False)
    row = int(np.flatnonzero(events["type"] == "Audio")[0])
    code = events["timeline"].cat.codes.to_numpy()[row]
    window = Segments(
        events=events,
        start=np.array([events["start"][row] - 0.5]),
        duration=np.array([1.0]),
        timeline=np.array([code], np.int32),
        trigger=np.array([-1]),
    )
    got = pca.read(window, store).data[0]
    assert got.shape == (3, 100)
    np.testing.assert_array_equal(got[:, :50], 0.0)
    frames = np.concatenate(
        [store.get_arrays(key)["data"] for key in pca.training_keys(events)], axis=0
    )
    sk = SkPCA(n_components=3, svd_solver="full").fit(frames.astype(np.float64))
    expected = sk.transform(mel.read(window, store).data[0][:, 50:].T.astype(np.float64)).T
    np.testing.assert_allclose(got[:, 50:], expected, rtol=1e-4, atol=1e-3)
