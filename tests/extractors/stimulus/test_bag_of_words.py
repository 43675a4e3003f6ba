"""BagOfWords against scikit-learn's vectorizers fitted on the same training texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.extractors.stimulus.bag_of_words import BagOfWords
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

TEXTS = [
    "the cat sat on the mat",
    "the dog ran in the park",
    "a cat and a dog",
    "birds sing in the trees",
    "the cat chased the birds",
    "unicorns never seen before",  # test split: its words must not enter the vocabulary
]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "type": "Sentence",
            "start": np.arange(len(TEXTS)) * 5.0,
            "duration": 4.0,
            "timeline": "a",
            "text": TEXTS,
            "split": ["train"] * 4 + ["test"] * 2,
        }
    )
    return validate_events(raw)


@pytest.mark.parametrize(
    "settings",
    [
        dict(weighting="tfidf"),
        dict(weighting="tfidf", norm=None, sublinear_tf=True, ngram_range=(1, 2)),
        dict(weighting="count", max_features=5),
        dict(weighting="binary", stop_words="english"),
    ],
)
def test_equals_sklearn_fitted_on_training_texts(events, tmp_path, settings):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    ex = BagOfWords(fit_on="train", output="static", aggregation="trigger", **settings)
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    got = ex.read(segment_on_triggers(events, "Sentence", duration=1.0), store).data
    kw = {k: v for k, v in settings.items() if k not in ("weighting",)}
    if settings["weighting"] == "tfidf":
        ref_vec = TfidfVectorizer(max_features=kw.pop("max_features", 1000), **kw)
    else:
        ref_vec = CountVectorizer(
            binary=settings["weighting"] == "binary",
            max_features=kw.pop("max_features", 1000),
            **kw,
        )
    ref = ref_vec.fit(TEXTS[:4]).transform(TEXTS).toarray()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    assert "unicorns" not in ref_vec.vocabulary_  # no leakage, by construction of the reference
    vocabulary = ex.fitted(events)["vocabulary"]
    assert tuple(ref_vec.get_feature_names_out()) == vocabulary


def test_fit_is_in_the_key_and_errors(events, tmp_path):
    ex = BagOfWords(fit_on="train")
    everything = ex.replace(fit_on="all")
    rows = ex.event_rows(events)
    assert ex.row_keys(events, rows) != everything.row_keys(events, rows)
    # another test sentence does not change the training fit (same keys for the training texts)
    more = validate_events(
        pd.concat(
            [events, events.iloc[[5]].assign(start=60.0, text="zebras too")], ignore_index=True
        )
    )
    assert ex.row_keys(more, rows[:4]) == ex.row_keys(events, rows[:4])
    with pytest.raises(ConfigError, match=r"^BagOfWords.fit_on: name the training events"):
        BagOfWords()
    with pytest.raises(
        ConfigError,
        match=r"^BagOfWords.norm: norm and sublinear_tf apply to weighting='tfidf' only",
    ):
        BagOfWords(fit_on="all", weighting="count", norm="l1")
    with pytest.raises(ConfigError, match=r"^BagOfWords.ngram_range: expected \(min_n, max_n\)"):
        BagOfWords(fit_on="all", ngram_range=(2, 1))
    with pytest.raises(ValueError, match=r"^BagOfWords.fit_on: 'dev' selects none of the 6 events"):
        BagOfWords(fit_on="dev").prepare(events, Store(tmp_path), progress=False)


def test_fits_that_cannot_work_name_the_field_and_fail_before_any_work(events, tmp_path):
    store = Store(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"^BagOfWords.min_df: 5 documents, but fit_on='train' selects 4 training texts; "
        r"lower min_df$",  # scikit-learn said "max_df corresponds to < documents than min_df"
    ):
        BagOfWords(fit_on="train", min_df=5).prepare(events, store, progress=False)
    stop_words_only = events.assign(text=["the", "a", "of the", "and", "x y", "z"])
    with pytest.raises(
        ValueError,
        match=r"^BagOfWords: fitting on the 4 training texts of 'text' \(fit_on='train'\) "
        r"failed: empty vocabulary; perhaps the documents only contain stop words$",
    ):
        BagOfWords(fit_on="train", stop_words="english").prepare(
            stop_words_only, store, progress=False
        )
    assert not list(store.keys())
