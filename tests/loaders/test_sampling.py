"""EpochBatchSampler and LengthBucketSampler arguments: numpy ints accepted, bad values named."""

from __future__ import annotations

import numpy as np
import pytest

from neuralset.loaders import EpochBatchSampler, LengthBucketSampler


def test_numpy_ints_are_ints() -> None:
    # np.int64(2) was refused with "batch_size: must be an int >= 1, got np.int64(2)"
    sampler = EpochBatchSampler(np.int64(5), np.int64(2), seed=np.int64(3), drop_last=False)
    assert sampler.batch_size == 2 and type(sampler.batch_size) is int
    order = np.random.default_rng([3, 0]).permutation(5)
    got = [b.tolist() for b in sampler.batch_indices(0)]
    assert got == [order[:2].tolist(), order[2:4].tolist(), order[4:].tolist()]
    assert [
        b.tolist() for b in EpochBatchSampler(5, 2, seed=3, drop_last=True).batch_indices(0)
    ] == got[:2]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: EpochBatchSampler(5, 0), ValueError, "EpochBatchSampler.batch_size: must be an int >= 1, got 0"),
        (lambda: EpochBatchSampler(5, 2.0), ValueError, "EpochBatchSampler.batch_size: must be an int >= 1, got 2.0"),
        (lambda: EpochBatchSampler(5, 2, seed=1.5), TypeError, "EpochBatchSampler.seed: expected an int >= 0 (the order of epoch e is drawn from numpy.random.default_rng([seed, e])), got 1.5"),
        (lambda: EpochBatchSampler(5, 2, seed=-1), TypeError, "EpochBatchSampler.seed: expected an int >= 0 (the order of epoch e is drawn from numpy.random.default_rng([seed, e])), got -1"),
        (lambda: LengthBucketSampler([1.0, 2.0], True), ValueError, "LengthBucketSampler.batch_size: must be an int >= 1, got True"),
        (lambda: LengthBucketSampler([1.0, 2.0], 1, pool_batches=2.5), ValueError, "LengthBucketSampler.pool_batches: must be an int >= 1, got 2.5"),
    ],
)  # fmt: skip
def test_bad_arguments_name_the_field(build, error: type, message: str) -> None:  # noqa: ANN001
    # a float seed was truncated silently (1.5 and 1.7 gave the order of seed 1)
    with pytest.raises(error) as info:
        build()
    assert str(info.value) == message


def test_seeds_do_not_replay_each_others_epochs() -> None:
    # the order of epoch e came from default_rng(seed + e): the run of seed 1 saw the epochs of
    # the run of seed 0 shifted by one (epoch 0 of seed 1 was epoch 1 of seed 0)
    n = 50
    runs = {seed: EpochBatchSampler(n, 10, seed=seed) for seed in (0, 1)}
    orders = {s: [r.order(e).tolist() for e in range(5)] for s, r in runs.items()}
    assert not set(map(tuple, orders[0])) & set(map(tuple, orders[1]))
    assert orders[0][1] == np.random.default_rng([0, 1]).permutation(n).tolist()
    assert len({tuple(o) for o in orders[0]}) == 5  # every epoch differs
    assert orders[0] == [EpochBatchSampler(n, 10, seed=0).order(e).tolist() for e in range(5)]
    buckets = [LengthBucketSampler(np.arange(n, dtype=float), 10, seed=s) for s in (0, 1)]
    a = [sorted(b.tolist()) for b in buckets[0].batch_indices(1)]
    b = [sorted(b.tolist()) for b in buckets[1].batch_indices(0)]
    assert a != b
