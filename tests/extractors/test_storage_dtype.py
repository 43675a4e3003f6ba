"""store_dtype="float16": half the bytes on disk, reads within float16 rounding of float32."""

from __future__ import annotations

import numpy as np
import pytest

from neuralset.execution import PrepareError
from neuralset.extractors.events import LabelEncoder
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.extractors.stimulus import WordLength
from neuralset.hashing import keyed_fields
from neuralset.segments import segment_on_triggers
from neuralset.store import Store

HALF_ULP = 2.0**-11  # float16 keeps 11 significant bits: relative rounding error <= 2**-11


def test_recordings_half_the_bytes_within_rounding(small_events, tmp_path):
    store = Store(tmp_path)
    full = MegExtractor(frequency=100.0, scaling="standard")
    half = full.replace(store_dtype="float16")
    assert half.prepare_key != full.prepare_key
    assert "store_dtype" not in keyed_fields(full)  # the default leaves existing keys unchanged
    for ex in (full, half):
        ex.prepare(small_events, store, progress=False)
    for f_item, h_item in zip(full.items(small_events), half.items(small_events)):
        a, b = store.get_arrays(f_item.key)["data"], store.get_arrays(h_item.key)["data"]
        assert a.dtype == np.float32 and b.dtype == np.float16
        assert store.info(h_item.key)["nbytes"] * 2 == store.info(f_item.key)["nbytes"]
        assert np.abs(b.astype(np.float32) - a).max() <= HALF_ULP * np.abs(a).max()
    segs = segment_on_triggers(small_events, "Word", offset=-0.1, duration=0.5).require("Meg")
    ref, got = full.read(segs, store).data, half.read(segs, store).data
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() <= HALF_ULP * np.abs(ref).max()
    # static means are summed in float32 (float16 sums would lose more)
    static_ref = full.replace(output="static").read(segs, store).data
    static = half.replace(output="static").read(segs, store).data
    np.testing.assert_allclose(static, static_ref, atol=HALF_ULP * np.abs(ref).max())


def test_out_of_range_values_are_an_error(small_events, tmp_path):
    raw_tesla = MegExtractor(frequency=100.0, picks=("mag",), store_dtype="float16")
    with pytest.raises(
        PrepareError,
        match=r"MegExtractor.store_dtype='float16': the values of .* reach [0-9.e-]+ in magnitude, outside float16's normal range \(6.1e-05 to 65504\); rescale them",
    ):
        raw_tesla.prepare(small_events, Store(tmp_path), progress=False)


def test_event_features_and_other_values(small_events, tmp_path):
    store = Store(tmp_path)
    lengths = WordLength(output="static", aggregation="trigger", store_dtype="float16")
    lengths.prepare(small_events, store, progress=False)
    segs = segment_on_triggers(small_events, "Word", duration=0.3)
    got = lengths.read(segs, store).data
    np.testing.assert_array_equal(
        got[:, 0], [len(t) for t in small_events["text"].to_numpy()[segs.trigger]]
    )
    key = lengths.items(small_events)[0].key
    assert store.get_value(key).dtype == np.float16
    # a vocabulary (not a float array) is stored as it is
    labels = LabelEncoder(event_type="Word", field="text", store_dtype="float16")
    labels.prepare(small_events, store, progress=False)
    assert labels.read(segs, store).data.dtype == np.int64
