"""HuggingFace options: the untrained-network control, layers stored once and chosen at read,
token pooling of image patches."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import AddContext, validate_events
from neuralset.extractors.stimulus import HuggingFaceText
from neuralset.extractors.stimulus.hf import clear_model_cache
from neuralset.extractors.stimulus.image import aggregate_tokens
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models

WORDS = "the cat sat on the mat and the dog ran".split()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "type": "Word",
            "start": 0.5 + np.arange(len(WORDS)) * 0.4,
            "duration": 0.3,
            "timeline": "a",
            "text": WORDS,
        }
    )
    return AddContext()(validate_events(raw))


def _text(**kw) -> HuggingFaceText:
    base = dict(
        model=str(hf_models.gpt2_dir()), output="static", aggregation="trigger", device="cpu"
    )
    return HuggingFaceText(**{**base, **kw})


def test_untrained_control_is_the_same_architecture_seeded(events, tmp_path):
    import torch
    from transformers import AutoModel

    store = Store(tmp_path)
    segs = segment_on_triggers(events, "Word", duration=0.3)
    trained = _text(layers=1.0)
    untrained = _text(layers=1.0, pretrained=False, seed=3)
    assert untrained.prepare_key != trained.prepare_key
    assert untrained.prepare_key != _text(layers=1.0, pretrained=False, seed=4).prepare_key
    for ex in (trained, untrained):
        ex.prepare(events, store, progress=False)
    a, b = trained.read(segs, store).data, untrained.read(segs, store).data
    assert a.shape == b.shape and np.abs(a - b).max() > 1e-2
    # the reference: the checkpoint's class and config, re-initialised after manual_seed(3)
    net, _ = untrained._model()
    pretrained_net = AutoModel.from_pretrained(hf_models.gpt2_dir())
    torch.manual_seed(3)
    ref = type(pretrained_net)(pretrained_net.config).eval()
    ours_state, ref_state = net.state_dict(), ref.state_dict()
    assert ours_state.keys() == ref_state.keys() == pretrained_net.state_dict().keys()
    for k in ref_state:
        torch.testing.assert_close(ours_state[k], ref_state[k], rtol=0, atol=0)
    assert any(
        not torch.equal(v, pretrained_net.state_dict()[k])
        for k, v in ref_state.items()
        if v.is_floating_point()
    )
    # seeded: built again in a fresh cache, the same weights and features
    clear_model_cache()
    again = Store(tmp_path / "again")
    untrained.prepare(events, again, progress=False)
    np.testing.assert_array_equal(untrained.read(segs, again).data, b)
    with pytest.raises(
        ConfigError, match=r"^HuggingFaceText.seed: only used with pretrained=False"
    ):
        _text(seed=2)


@pytest.mark.parametrize(
    ("layers", "agg"), [(0.5, "mean"), ((0, -1), "concat"), ((0, 1.0), "mean"), ((1, 2), "none")]
)
def test_layers_stored_once_chosen_at_read(events, tmp_path, layers, agg):
    store = Store(tmp_path)
    segs = segment_on_triggers(events, "Word", duration=0.3)
    every = _text(store_all_layers=True, layers=layers, layer_aggregation=agg)
    every.prepare(events, store, progress=False)
    # another layer choice reads the same stored items: nothing to compute
    other = every.replace(layers=(0,), layer_aggregation="none")
    assert other.prepare_key == every.prepare_key
    assert other.prepare(events, store, progress=False).computed == 0
    direct = _text(layers=layers, layer_aggregation=agg)  # stores only the chosen layers
    direct.prepare(events, store, progress=False)
    np.testing.assert_array_equal(every.read(segs, store).data, direct.read(segs, store).data)
    dyn = every.replace(output="dynamic", frequency=10.0)
    np.testing.assert_array_equal(
        dyn.read(segs, store).data,
        direct.replace(output="dynamic", frequency=10.0).read(segs, store).data,
    )


def test_layer_index_out_of_range_is_an_error_not_another_layer(events, tmp_path):
    # the tiny GPT-2 has 3 hidden states: layers=3 used to read layer 3 % 3 = 0 (the embeddings)
    from neuralset.execution import PrepareError
    from neuralset.extractors.stimulus.hf import select_layers

    message = (
        "layers: index {} is out of range for this model's 3 hidden states (the embeddings, "
        "then 2 layers); use an int in [-3, 2] or a relative depth in [0, 1] (1.0: the last layer)"
    )
    assert select_layers(range(3), (-3, 2, 0.5)) == [0, 2, 1]
    for bad in (3, -4):
        with pytest.raises(ValueError, match=f"^{re.escape(message.format(bad))}$"):
            select_layers(range(3), bad)
    store = Store(tmp_path)
    with pytest.raises(PrepareError, match=re.escape(f"(ValueError: {message.format(3)})")):
        _text(layers=(1, 3)).prepare(events, store, progress=False)
    every = _text(store_all_layers=True)
    every.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Word", duration=0.3)
    with pytest.raises(ValueError, match=f"^{re.escape(message.format(-4))}$"):
        every.replace(layers=-4).read(segments, store)


def test_patch_token_pooling():
    tokens = np.random.default_rng(0).normal(size=(2, 5, 3))  # (batch, CLS + 4 patches, features)
    np.testing.assert_array_equal(aggregate_tokens(tokens, "first"), tokens[:, 0])
    np.testing.assert_array_equal(aggregate_tokens(tokens, "sum"), tokens[:, 1:].sum(1))
    np.testing.assert_array_equal(aggregate_tokens(tokens, "max"), tokens[:, 1:].max(1))
    np.testing.assert_array_equal(aggregate_tokens(tokens, "mean"), tokens[:, 1:].mean(1))
