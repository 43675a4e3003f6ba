"""Variable-length segments (padding + mask, bucketing), sample times, read-time augmentation."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from neuralset.extractors.base import OutOfBoundsError
from neuralset.extractors.events import Pulse
from neuralset.loaders import SegmentDataset
from neuralset.loaders.sampling import BatchIndices, EpochBatchSampler, LengthBucketSampler
from neuralset.segments import Segments, segment_on_triggers

from .conftest import SFREQ, RampExtractor, expected_window


def variable(
    setup: dict[str, Any], durations: list[float], starts: list[float] | None = None
) -> Segments:
    events = setup["events"]
    words = np.flatnonzero((events["type"] == "Word").to_numpy())[: len(durations)]
    start = events["start"].to_numpy()[words] if starts is None else np.asarray(starts)
    return Segments(
        events=events,
        start=np.asarray(start, dtype=float),
        duration=np.asarray(durations, dtype=float),
        timeline=events["timeline"].cat.codes.to_numpy()[words].astype(np.int32),
        trigger=words.astype(np.int64),
    )


def test_padding_to_the_longest_segment_with_a_mask(setup: dict[str, Any]) -> None:
    segs = variable(setup, [0.5, 1.0, 0.3, 0.74])
    ramp = RampExtractor(frequency=SFREQ)
    with pytest.raises(ValueError) as err:
        SegmentDataset(segs, {"meg": ramp}, setup["store"])
    assert str(err.value) == (
        "SegmentDataset: the segments have different durations (0.3 to 1 s) and 'meg' are "
        "dynamic; pass variable_length='pad' to pad each batch to its longest segment (with a mask)"
    )
    ds = SegmentDataset(
        segs,
        {"meg": ramp, "word": Pulse(event_type="Word", frequency=SFREQ)},
        setup["store"],
        variable_length="pad",
    )
    ds.prepare(progress=False)
    batch = ds.__getitems__([0, 1, 2, 3])
    assert batch["meg"].shape == (4, 3, 50) and batch["word"].shape == (4, 1, 50)
    lengths = [25, 50, 15, 37]
    np.testing.assert_array_equal(batch.mask["meg"].sum(dim=1).numpy(), lengths)
    for j, n in enumerate(lengths):
        np.testing.assert_allclose(
            batch["meg"][j, :, :n].numpy(), expected_window(segs.start[j], n), atol=2e-3
        )
        assert not batch["meg"][j, :, n:].any() and not batch["word"][j, :, n:].any()
        assert batch.mask["word"][j].sum() == n
    np.testing.assert_allclose(batch.times["meg"].numpy(), np.arange(50) / SFREQ)
    # a batch of short segments only is padded to its own longest
    small = ds.__getitems__([0, 2])
    assert small["meg"].shape == (2, 3, 25)


def test_padding_and_recording_bounds(setup: dict[str, Any]) -> None:
    # the second segment starts 0.5 s before the end of its recording (1.0 + 20 s)
    segs = variable(setup, [0.4, 1.0], starts=[2.0, 20.5])
    ramp = RampExtractor(frequency=SFREQ)
    ds = SegmentDataset(
        segs, {"meg": ramp}, setup["store"], variable_length="pad", out_of_bounds="pad"
    )
    ds.prepare(progress=False)
    batch = ds.__getitems__([0, 1])
    np.testing.assert_array_equal(batch.mask["meg"].sum(dim=1).numpy(), [20, 25])
    strict = SegmentDataset(segs, {"meg": ramp}, setup["store"], variable_length="pad")
    strict._checked = True  # the read itself must refuse
    with pytest.raises(OutOfBoundsError, match=r"segments \[1\] run past the start or end"):
        strict.__getitems__([0, 1])
    dropping = SegmentDataset(
        segs, {"meg": ramp}, setup["store"], variable_length="pad", out_of_bounds="drop"
    )
    batch = dropping.__getitems__([0, 1])
    assert batch.size == 1 and batch.index.tolist() == [0] and batch["meg"].shape == (1, 3, 50)


def test_times_are_relative_to_the_trigger(setup: dict[str, Any]) -> None:
    segs = setup["segments"]
    segs = segs.select(np.flatnonzero(segs.covering("Meg") >= 0)[:10])
    ds = SegmentDataset(
        segs,
        {"meg": RampExtractor(frequency=SFREQ), "lab": Pulse(event_type="Word", output="static")},
        setup["store"],
    )
    ds.prepare(progress=False)
    batch = ds.__getitems__([1, 2])
    assert ds.time_origin == -0.2
    np.testing.assert_allclose(batch.times["meg"].numpy(), -0.2 + np.arange(40) / SFREQ)
    assert set(batch.times) == {"meg"}  # static outputs have no time axis
    assert str(batch.times["meg"].dtype) == "torch.float64"
    back = pickle.loads(pickle.dumps(batch))
    np.testing.assert_array_equal(back.times["meg"].numpy(), batch.times["meg"].numpy())


def test_length_buckets_reduce_padding_and_cover_every_segment() -> None:
    rng = np.random.default_rng(0)
    durations = rng.uniform(0.5, 6.0, 5000)
    buckets = LengthBucketSampler(durations, 32, seed=1, pool_batches=50)
    plain = LengthBucketSampler(durations, 32, seed=1, pool_batches=1)
    batches = buckets.batch_indices(0)
    assert len(batches) == len(buckets) == 157
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    assert buckets.padding_fraction(0) < 0.05 < 0.3 < plain.padding_fraction(0)
    again = LengthBucketSampler(durations, 32, seed=1).batch_indices(0)
    assert all((a == b).all() for a, b in zip(batches, again))  # seeded
    assert not all(
        len(a) == len(b) and (a == b).all() for a, b in zip(batches, buckets.batch_indices(1))
    )
    first = next(iter(buckets))
    assert isinstance(first, BatchIndices) and first.epoch == 0
    assert next(iter(buckets)).epoch == 1  # each iteration is the next epoch
    dropped = LengthBucketSampler(durations[:100], 32, drop_last=True)
    assert all(len(b) == 32 for b in dropped.batch_indices(0)) and len(dropped) == len(
        dropped.batch_indices(0)
    )


def test_bucketed_torch_and_jax_loading(setup: dict[str, Any]) -> None:
    from neuralset.loaders import JaxBatchIterator

    events = setup["events"]
    rng = np.random.default_rng(3)
    segs = variable(setup, list(np.round(rng.uniform(0.2, 1.0, 30), 2)))
    ds = SegmentDataset(
        segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"], variable_length="pad"
    )
    ds.prepare(progress=False)
    sampler = LengthBucketSampler(segs.duration, 8, seed=0, pool_batches=4)
    seen = []
    for batch in ds.loader(sampler=sampler):
        seen += batch.index.tolist()
        n = np.round(segs.duration[batch.index.numpy()] * SFREQ).astype(int)
        assert batch["meg"].shape[-1] == n.max()
        np.testing.assert_array_equal(batch.mask["meg"].sum(dim=1).numpy(), n)
    assert sorted(seen) == list(range(30))
    jax_seen = [b.index.tolist() for b in JaxBatchIterator(ds, 8, sampler=sampler, prefetch=0)]
    expected = [b.tolist() for b in sampler.batch_indices(0)]
    assert jax_seen == expected
    assert events is setup["events"]


def noisy(data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return data + rng.normal(0.0, 1.0, data.shape).astype(data.dtype)


def test_augmentation_is_seeded_per_epoch_and_outside_the_keys(setup: dict[str, Any]) -> None:
    segs = setup["segments"]
    segs = segs.select(np.flatnonzero(segs.covering("Meg") >= 0)[:12])
    ramp = RampExtractor(frequency=SFREQ)
    plain = SegmentDataset(segs, {"meg": ramp}, setup["store"])
    plain.prepare(progress=False)
    aug = SegmentDataset(segs, {"meg": ramp}, setup["store"], augment={"meg": noisy}, seed=5)
    assert aug.prepare(progress=False)["meg"].computed == 0  # same keys, same store entries
    base = plain.read([0, 1, 2])["data"]["meg"]
    a0 = aug.read([0, 1, 2], epoch=0)["data"]["meg"]
    assert not np.allclose(a0, base) and abs(float((a0 - base).std()) - 1.0) < 0.2
    np.testing.assert_array_equal(aug.read([0, 1, 2], epoch=0)["data"]["meg"], a0)  # seeded
    np.testing.assert_array_equal(aug.read([0, 1, 2], augment=False)["data"]["meg"], base)
    assert not np.allclose(aug.read([0, 1, 2], epoch=1)["data"]["meg"], a0)  # a new draw per epoch
    other_seed = SegmentDataset(segs, {"meg": ramp}, setup["store"], augment={"meg": noisy}, seed=6)
    assert not np.allclose(other_seed.read([0, 1, 2], epoch=0)["data"]["meg"], a0)
    # the epoch travels with the batch to the DataLoader workers
    # spawn: other tests of the session may have started JAX threads (fork is unsafe then)
    # the workers persist across epochs: each batch brings its own epoch
    loader = aug.loader(
        batch_size=4,
        shuffle=True,
        num_workers=2,
        multiprocessing_context="spawn",
        persistent_workers=True,
    )
    first = [b["meg"].numpy() for b in loader]
    order = EpochBatchSampler(12, 4, seed=5).batch_indices(0)
    for got, idx in zip(first, order):
        np.testing.assert_allclose(got, aug.read(idx, epoch=0)["data"]["meg"])
    second_epoch = [b.index.tolist() for b in loader]
    assert second_epoch == [b.tolist() for b in EpochBatchSampler(12, 4, seed=5).batch_indices(1)]
    with pytest.raises(
        ValueError, match=r"SegmentDataset.augment: 'eeg' is not an extractor name \(meg\)"
    ):
        SegmentDataset(segs, {"meg": ramp}, setup["store"], augment={"eeg": noisy})
    bad = SegmentDataset(
        segs, {"meg": ramp}, setup["store"], augment={"meg": lambda d, r: d[:, :1]}
    )
    with pytest.raises(
        ValueError, match=r"augment\['meg'\]: must return an array of the input's shape"
    ):
        bad.read([0, 1])


def test_subset_keeps_the_options(setup: dict[str, Any]) -> None:
    segs = segment_on_triggers(setup["events"], "Word", offset=-0.2, duration=0.8).require("Meg")
    ds = SegmentDataset(
        segs,
        {"meg": RampExtractor(frequency=SFREQ)},
        setup["store"],
        out_of_bounds="pad",
        augment={"meg": noisy},
        seed=2,
    )
    sub = ds.subset([3, 4, 5])
    assert (
        len(sub) == 3 and sub.out_of_bounds == "pad" and sub.seed == 2 and sub.augment == ds.augment
    )
    np.testing.assert_array_equal(sub.segments.start, segs.start[[3, 4, 5]])
