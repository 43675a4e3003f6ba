"""JaxBatchIterator: deterministic shuffling, drop_last, prefetch thread, same values as torch."""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
import pytest

from neuralset.extractors.base import OutOfBoundsError
from neuralset.loaders import DatasetNotReadyError, JaxBatchIterator, SegmentDataset
from neuralset.store import Store

jax = pytest.importorskip("jax")


def epoch_indices(it: JaxBatchIterator, epoch: int) -> list[int]:
    return [int(i) for b in it.epoch_iter(epoch) for i in np.asarray(b.index)]


def test_deterministic_order(dataset: SegmentDataset) -> None:
    n = len(dataset)
    a = JaxBatchIterator(dataset, 8, seed=3)
    b = JaxBatchIterator(dataset, 8, seed=3)
    first_a, first_b = epoch_indices(a, 0), epoch_indices(b, 0)
    assert first_a == first_b
    assert sorted(first_a) == list(range(n)) and first_a != list(range(n))
    assert epoch_indices(a, 1) != first_a  # a new order every epoch
    assert epoch_indices(a, 1) == list(np.random.default_rng([3, 1]).permutation(n))
    # drawn from (seed, epoch), not seed + epoch: seed 4 replayed seed 3's epochs shifted by one
    assert epoch_indices(JaxBatchIterator(dataset, 8, seed=4), 0) != epoch_indices(a, 1)
    assert epoch_indices(JaxBatchIterator(dataset, 8, seed=4), 0) != first_a
    assert epoch_indices(JaxBatchIterator(dataset, 8, shuffle=False), 0) == list(range(n))
    # iterating advances the epoch
    it = JaxBatchIterator(dataset, 8, seed=3)
    e0 = [int(i) for b in it for i in np.asarray(b.index)]
    e1 = [int(i) for b in it for i in np.asarray(b.index)]
    assert (e0, e1, it.epoch) == (first_a, epoch_indices(a, 1), 2)


@pytest.mark.parametrize(("drop_last", "sizes"), [(True, [32, 32]), (False, [32, 32, 12])])
def test_drop_last(dataset: SegmentDataset, drop_last: bool, sizes: list[int]) -> None:
    assert len(dataset) == 76
    it = JaxBatchIterator(dataset, 32, drop_last=drop_last)
    got = [b.size for b in it]
    assert got == sizes and len(it) == len(sizes)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_values_equal_the_torch_path(dataset: SegmentDataset, prefetch: int) -> None:
    it = JaxBatchIterator(dataset, 16, seed=1, prefetch=prefetch)
    seen = 0
    for jb in it:
        assert isinstance(jb.data["meg"], jax.Array)
        idx = np.asarray(jb.index)
        tb = dataset.__getitems__(idx.tolist())
        np.testing.assert_array_equal(np.asarray(jb["meg"]), tb["meg"].numpy())
        np.testing.assert_array_equal(np.asarray(jb.trigger), tb.trigger.numpy())
        seen += jb.size
    assert seen == len(dataset)


def test_time_major_reads_give_the_same_jax_batches(dataset: SegmentDataset) -> None:
    meg = dataset.extractors["meg"].replace(time_major=True)
    fast = SegmentDataset(dataset.segments, {"meg": meg}, dataset.store)
    assert not fast.read([0, 1])["data"]["meg"].flags.c_contiguous  # strided on the host
    for a, b in zip(JaxBatchIterator(fast, 16, seed=2), JaxBatchIterator(dataset, 16, seed=2)):
        assert a["meg"].shape == b["meg"].shape
        np.testing.assert_array_equal(np.asarray(a["meg"]), np.asarray(b["meg"]))


def test_batches_are_pytrees(dataset: SegmentDataset) -> None:
    jb = next(iter(JaxBatchIterator(dataset, 4, shuffle=False)))
    total = jax.jit(lambda b: b.data["meg"].sum(axis=(1, 2)))(jb)
    np.testing.assert_allclose(np.asarray(total), np.asarray(jb["meg"]).sum(axis=(1, 2)), rtol=1e-5)


def test_errors_reach_the_caller(
    setup: dict[str, Any], dataset: SegmentDataset, tmp_path: Any
) -> None:
    unprepared = SegmentDataset(dataset.segments, dataset.extractors, Store(tmp_path / "empty"))
    with pytest.raises(DatasetNotReadyError, match="call dataset.prepare"):
        next(iter(JaxBatchIterator(unprepared, 4)))
    # a read error inside the prefetch thread is raised in the consumer
    outside = SegmentDataset(setup["segments"], dataset.extractors, setup["store"])
    with pytest.raises(OutOfBoundsError, match="start outside their Meg recording"):
        list(JaxBatchIterator(outside, 200, prefetch=2))


def test_early_exit_stops_the_thread(dataset: SegmentDataset) -> None:
    gen = iter(JaxBatchIterator(dataset, 2, prefetch=1))
    next(gen)
    gen.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "neuralset-jax-prefetch"]


def test_bad_arguments(dataset: SegmentDataset) -> None:
    with pytest.raises(ValueError, match="batch_size: must be an int >= 1, got 0"):
        JaxBatchIterator(dataset, 0)
    with pytest.raises(TypeError, match="expected SegmentDataset, got list"):
        JaxBatchIterator([1, 2], 2)  # type: ignore[arg-type]


def test_batches_pickle(dataset: SegmentDataset) -> None:
    import pickle

    from neuralset.loaders.jax_iter import JaxBatch  # type: ignore[attr-defined]

    jb = next(iter(JaxBatchIterator(dataset, 4, shuffle=False)))
    assert isinstance(jb, JaxBatch)
    back = pickle.loads(pickle.dumps(jb))
    np.testing.assert_array_equal(np.asarray(back["meg"]), np.asarray(jb["meg"]))


def test_jax_batch_is_a_mapping_like_the_torch_batch(dataset: SegmentDataset) -> None:
    from collections.abc import Mapping

    jb = next(iter(JaxBatchIterator(dataset, 4, shuffle=False)))
    tb = dataset.__getitems__(list(range(4)))
    assert isinstance(jb, Mapping) and isinstance(tb, Mapping)
    assert list(jb) == list(jb.keys()) == list(tb) == ["meg"] and len(jb) == len(tb) == 1
    assert "meg" in jb and "eeg" not in jb and jb.get("eeg") is None
    for (name, value), (tname, tvalue) in zip(jb.items(), tb.items()):
        assert name == tname
        np.testing.assert_array_equal(np.asarray(value), tvalue.numpy())
    assert [np.asarray(v).shape for v in jb.values()] == [tuple(tb["meg"].shape)]
    assert dict(jb).keys() == {"meg"}  # dict() of a Mapping
    with pytest.raises(KeyError, match=r"no field 'eeg' in this batch; fields: meg"):
        jb["eeg"]
    with pytest.raises(TypeError, match=r"a JaxBatch is keyed by extractor name \(meg\), got 0"):
        jb[0]  # type: ignore[index]
    total = jax.jit(lambda b: sum(v.sum() for v in b.values()))(jb)  # still a pytree
    np.testing.assert_allclose(float(total), float(np.asarray(jb["meg"]).sum()), rtol=1e-5)


def test_arguments_are_checked_at_construction(dataset: SegmentDataset) -> None:
    with pytest.raises(
        TypeError,
        match=re.escape(
            "JaxBatchIterator.sampler: expected a sampler with batch_indices(epoch) and len() "
            "(e.g. neuralset.loaders.LengthBucketSampler), got list"
        ),
    ):
        JaxBatchIterator(dataset, 4, sampler=[[0, 1]])
    with pytest.raises(
        TypeError,
        match=re.escape(
            "JaxBatchIterator.seed: expected an int >= 0 (the permutation of epoch e is "
            "drawn from numpy.random.default_rng([seed, e])), got None"
        ),
    ):
        JaxBatchIterator(dataset, 4, seed=None)  # type: ignore[arg-type]


def test_numpy_integers_are_accepted(dataset: SegmentDataset) -> None:
    it = JaxBatchIterator(dataset, np.int64(4), seed=np.int64(3), prefetch=np.int64(0))  # type: ignore[arg-type]
    assert epoch_indices(it, 0) == epoch_indices(JaxBatchIterator(dataset, 4, seed=3), 0)
    assert [b.size for b in it.epoch_iter(0)][:2] == [4, 4]


def test_a_device_named_as_torch_writes_it(dataset: SegmentDataset) -> None:
    """``device="cpu"`` (a string, as for the torch loader) puts the batches on JAX's CPU
    device; a platform or an index JAX does not have here is refused at construction."""
    import jax

    cpu = jax.devices("cpu")[0]
    for name in ("cpu", "CPU", "cpu:0"):
        it = JaxBatchIterator(dataset, 8, device=name, prefetch=0)
        assert it.device == cpu
        batch = next(iter(it))
        assert batch["meg"].devices() == {cpu}
    assert JaxBatchIterator(dataset, 8, device=cpu).device is cpu  # a device passes through
    seen = ", ".join(f"{d.platform}:{d.id}" for d in jax.devices())
    for bad in ("cpu:7", "tpu", "cpu:x"):
        with pytest.raises(ValueError) as err:
            JaxBatchIterator(dataset, 8, device=bad)
        assert str(err.value) == (
            f"JaxBatchIterator.device: {bad!r} is no device JAX sees here (it sees {seen}); "
            "pass 'cpu', 'gpu', 'gpu:1', a jax.Device or None (JAX's default device)"
        )


def test_a_sampler_refuses_the_flags_it_would_ignore(dataset: SegmentDataset) -> None:
    from neuralset.loaders import EpochBatchSampler

    sampler = EpochBatchSampler(len(dataset), 32, seed=0)
    # drop_last=True and shuffle=False were ignored silently: a partial batch of 12, shuffled
    for flag, value in (("drop_last", True), ("shuffle", False)):
        with pytest.raises(ValueError) as info:
            JaxBatchIterator(dataset, 32, sampler=sampler, **{flag: value})
        assert str(info.value) == (
            f"JaxBatchIterator: {flag}={value} has no effect with a sampler, which chooses the "
            f"batches itself; leave {flag} out (or set it on the sampler)"
        )
    it = JaxBatchIterator(dataset, 32, sampler=sampler, prefetch=0)
    order = np.random.default_rng([0, 1]).permutation(len(dataset))  # seed 0, epoch 1
    assert [np.asarray(b.index).tolist() for b in it.epoch_iter(1)] == [
        order[:32].tolist(),
        order[32:64].tolist(),
        order[64:].tolist(),
    ]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_left_empty_by_drop_are_skipped(setup: dict[str, Any], prefetch: int) -> None:
    from tests.loaders.conftest import SFREQ, RampExtractor, expected_window

    segs = setup["segments"]  # some run past a recording's start or end
    inside = np.flatnonzero(segs.covering("Meg") >= 0)
    outside = np.flatnonzero(segs.covering("Meg") < 0)
    assert len(outside) >= 2 and len(inside) == 76
    ds = SegmentDataset(
        segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"], out_of_bounds="drop"
    )
    ds.prepare(progress=False)
    # batches of one in order: those of the segments outside came out with 0 rows (and 0
    # channels: shape (0, 0, 40)), a NaN mean loss and a new shape to compile
    it = JaxBatchIterator(ds, 1, shuffle=False, prefetch=prefetch)
    batches = list(it)
    assert len(it) == len(segs) and len(batches) == len(inside)
    assert [int(b.index[0]) for b in batches] == inside.tolist()
    for b in batches:
        assert b["meg"].shape == (1, 3, 40)
        start = float(segs.start[int(b.index[0])])
        np.testing.assert_array_equal(np.asarray(b["meg"])[0], expected_window(start, 40))
    # larger batches keep their segments inside, in order
    sizes = [b.size for b in JaxBatchIterator(ds, 8, shuffle=False, prefetch=prefetch)]
    kept = [
        int(np.isin(np.arange(k, min(k + 8, len(segs))), inside).sum())
        for k in range(0, len(segs), 8)
    ]
    assert sizes == [k for k in kept if k]
