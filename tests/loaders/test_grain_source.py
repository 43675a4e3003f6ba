"""GrainBatchSource/GrainSource: the same batches as the JAX iterator and the torch loader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from neuralset.loaders import EpochBatchSampler, JaxBatchIterator, SegmentDataset

pytest.importorskip("jax")
pytest.importorskip("grain")


def test_batches_match_the_jax_iterator_and_the_torch_loader(dataset: SegmentDataset) -> None:
    from neuralset.loaders.grain_source import GrainBatchSource, GrainSource

    n = len(dataset)
    order = np.random.default_rng([7, 0]).permutation(n)
    source = GrainBatchSource(dataset, 16, seed=7, drop_last=False)
    assert len(source) == -(-n // 16)
    jax_batches = list(JaxBatchIterator(dataset, 16, seed=7, prefetch=0))
    torch_batches = list(dataset.loader(sampler=EpochBatchSampler(n, 16, seed=7)))
    for k in range(len(source)):
        expected = order[16 * k : 16 * (k + 1)]  # the last batch is partial
        record = source[k]
        np.testing.assert_array_equal(record["index"], expected)
        np.testing.assert_array_equal(np.asarray(jax_batches[k].index), expected)
        np.testing.assert_array_equal(torch_batches[k].index.numpy(), expected)
        np.testing.assert_array_equal(record["data"]["meg"], np.asarray(jax_batches[k]["meg"]))
        np.testing.assert_array_equal(record["data"]["meg"], torch_batches[k]["meg"].numpy())
    assert source[len(source)]["index"].tolist() == source[0]["index"].tolist()  # epochs wrap
    one = GrainSource(dataset)[int(order[0])]
    np.testing.assert_array_equal(one["data"]["meg"], source[0]["data"]["meg"][0])
    dropped = GrainBatchSource(dataset, 16, seed=7, drop_last=True)
    assert [dropped[k]["index"].tolist() for k in range(len(dropped))] == [
        order[16 * k : 16 * (k + 1)].tolist() for k in range(n // 16)
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # was built, then every record raised ZeroDivisionError: integer modulo by zero
        ({"batch_size": 1000, "drop_last": True}, ValueError, "GrainBatchSource: no batch: drop_last=True leaves out the last, smaller batch, and batch_size=1000 exceeds the 76 segments of the dataset; lower batch_size, or pass drop_last=False"),
        ({"batch_size": 0}, ValueError, "GrainBatchSource.batch_size: must be an int >= 1, got 0"),
        # a float seed was truncated silently
        ({"batch_size": 4, "seed": 0.5}, TypeError, "GrainBatchSource.seed: expected an int >= 0 (the order of epoch e is drawn from numpy.random.default_rng([seed, e])), got 0.5"),
    ],
)  # fmt: skip
def test_bad_arguments_fail_at_construction(
    dataset: SegmentDataset, kwargs: dict[str, Any], error: type, message: str
) -> None:
    from neuralset.loaders.grain_source import GrainBatchSource

    with pytest.raises(error) as info:
        GrainBatchSource(dataset, **kwargs)
    assert str(info.value) == message


def test_dropped_segments_are_skipped_by_grain_iterators(setup: dict[str, Any]) -> None:
    import grain

    from neuralset.loaders.grain_source import GrainSource
    from tests.loaders.conftest import SFREQ, RampExtractor

    segs = setup["segments"]  # some run past a recording's start or end
    inside = np.flatnonzero(segs.covering("Meg") >= 0)
    ds = SegmentDataset(
        segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"], out_of_bounds="drop"
    )
    ds.prepare(progress=False)
    source = GrainSource(ds)
    outside = int(np.flatnonzero(segs.covering("Meg") < 0)[0])
    assert source[outside] is None
    batches = grain.MapDataset.source(source).to_iter_dataset().batch(16)
    seen = [int(i) for b in batches for i in b["index"]]
    assert seen == inside.tolist()
    with pytest.raises(ValueError, match="Expected all input elements to have the same structure"):
        list(grain.MapDataset.source(source).batch(16))  # as the docstring says
