"""Golden keys: the keys of a fixed set of configs are pinned.

A change that moves one of these keys changes what every store holds under it. Make such a
change on purpose: bump the class's ``_version`` (and update the value here), never by
accident (a moved module, a renamed class, a reordered field default...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.events.transforms import AssignSplits, Query
from neuralset.execution import InlineExecutor, LocalExecutor
from neuralset.extractors import (
    FmriExtractor,
    HuggingFaceAudio,
    HuggingFaceText,
    LabelEncoder,
    MegExtractor,
    Pulse,
    WordLength,
)
from neuralset.hashing import class_identity, legacy_keys, structural_key
from neuralset.pipeline import Pipeline
from neuralset.segments import SlidingSegmenter, TriggerSegmenter
from neuralset.synthetic import SyntheticStudy

GOLDEN = {
    "MegExtractor.key": "5534308605c2b199d2113454d0245309",
    "MegExtractor.prepare_key": "064528d3a8c66be21d9e56f950088e91",
    "MegExtractor.item_key": "ef112621a0054729fb78577cf7de258a",
    "LabelEncoder.prepare_key": "5602cafac3c0e159c9d2ead1fb040921",
    "WordLength.prepare_key": "ccfa0c573261a077bae523bb67cf8870",
    "Pulse.key": "3704f00b1b974059e8d9a0294822295a",
    "HuggingFaceText.prepare_key": "70c35b78e4793959886ffa0af8807cf1",
    "HuggingFaceText.word_key": "831cd3a5fac23ad3f8c45731bd955479",
    # _version 2: wav2vec2-style frames at the centres of their windows (was 5c6b4663...)
    "HuggingFaceAudio.prepare_key": "dbf863f207b481655517ade94a57171b",
    "FmriExtractor.key": "0b9d3f60d2ed52d915c2d598f9a2e13c",  # _version 2: NaN voxels
    "SyntheticStudy.key": "746e128bc16c384e584944bd66919116",
    "TriggerSegmenter.key": "759523cc4a6626301ba41a9f377e8189",
    "SlidingSegmenter.key": "41633d7c7f414af81dc71d5940ac6621",
    "Query.key": "e7a68d7661db2bd9b77aa10445e4b662",
    "AssignSplits.key": "fa5f0f21c0485846725211743c9fd4bf",
    "InlineExecutor.key": "cdd9baf3038b5288351444d4cf3c43d8",
    "LocalExecutor.key": "43383a8c95037174484dc28c44e0220c",
    "Pipeline.key": "79bba4da954f9c43640c894ee19984ec",
    "plain": "3e8ef64a0149080a5da8aeef6e649581",
}


def _keys() -> dict[str, str]:
    meg = MegExtractor(frequency=100.0, filter=(0.5, 40.0))
    study = SyntheticStudy(path=Path("/data/synthetic"))
    identity = ("sub-01/sub-01_meg.fif", 8341, 1796037232358035233)
    segmenter = TriggerSegmenter(triggers="Word")
    text = HuggingFaceText(model="gpt2", layers=0.5)
    words = pd.DataFrame({"type": "Word", "text": ["the", "cat", "the"], "context": "the cat"})
    return {
        "MegExtractor.key": meg.key,
        "MegExtractor.prepare_key": meg.prepare_key,
        "MegExtractor.item_key": meg.item_key(identity, 0.0, 6.0),
        "LabelEncoder.prepare_key": LabelEncoder(event_type="Word", field="text").prepare_key,
        "WordLength.prepare_key": WordLength(frequency=50.0).prepare_key,
        "Pulse.key": Pulse(event_type="Word", frequency=100.0).key,
        "HuggingFaceText.prepare_key": text.prepare_key,
        # the second "the" in context: a repeated word, whose key is reused
        "HuggingFaceText.word_key": text.row_keys(words, np.arange(3))[2],
        "HuggingFaceAudio.prepare_key": HuggingFaceAudio(
            model="facebook/wav2vec2-base", layers=0.5
        ).prepare_key,
        "FmriExtractor.key": FmriExtractor().key,
        "SyntheticStudy.key": study.key,
        "TriggerSegmenter.key": TriggerSegmenter(triggers="Word", offset=-0.2, duration=0.8).key,
        "SlidingSegmenter.key": SlidingSegmenter(duration=2.0, stride=1.0).key,
        "Query.key": Query(query="type == 'Word'").key,
        "AssignSplits.key": AssignSplits(seed=3).key,
        "InlineExecutor.key": InlineExecutor().key,
        "LocalExecutor.key": LocalExecutor(workers=4).key,
        "Pipeline.key": Pipeline(study=study, segmenter=segmenter, extractors={"meg": meg}).key,
        "plain": structural_key({"a": 1.0, "b": [1, "x", None], "c": np.arange(3.0)}),
    }


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_key(name: str) -> None:
    assert _keys()[name] == GOLDEN[name], (
        f"the key of {name} moved: if on purpose, bump the class's _version and update GOLDEN"
    )


def test_keys_name_classes_by_kind_not_module() -> None:
    assert class_identity(MegExtractor) == "kind:meg"
    assert class_identity(HuggingFaceText) == "kind:hf_text"
    with legacy_keys():  # store format 1 named classes by their 0.1 module
        assert class_identity(MegExtractor) == "neuralset.extractors.meeg.MegExtractor"
        assert class_identity(WordLength) == "neuralset.extractors.features.WordLength"


def test_moving_a_class_keeps_its_keys() -> None:
    before = MegExtractor(frequency=100.0, filter=(0.5, 40.0))
    keys = (before.key, before.prepare_key)
    module, qualname = MegExtractor.__module__, MegExtractor.__qualname__
    try:  # the class moves to another module, under another name
        MegExtractor.__module__ = "somewhere.else.entirely"
        MegExtractor.__qualname__ = "RenamedMeg"
        after = MegExtractor(frequency=100.0, filter=(0.5, 40.0))
        moved = (after.key, after.prepare_key)
    finally:
        MegExtractor.__module__, MegExtractor.__qualname__ = module, qualname
    assert moved == keys == (GOLDEN["MegExtractor.key"], GOLDEN["MegExtractor.prepare_key"])


def test_an_unregistered_class_is_keyed_by_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from neuralset.config import Config, config

    @config
    class Mine(Config):
        x: int = 0

    key = Mine().key
    assert class_identity(Mine) == f"{__name__}.{Mine.__qualname__}"
    monkeypatch.setattr(Mine, "__module__", "moved")
    assert Mine().key != key  # documented: register a kind to make keys survive a move


def test_the_version_is_in_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MegExtractor, "_version", MegExtractor._version + 1)
    meg = MegExtractor(frequency=100.0, filter=(0.5, 40.0))
    assert meg.key != GOLDEN["MegExtractor.key"]
    assert meg.prepare_key != GOLDEN["MegExtractor.prepare_key"]
