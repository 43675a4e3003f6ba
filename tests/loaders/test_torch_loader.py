"""SegmentDataset.loader: persistent forked workers, grouped tasks, batches in shared slots."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from neuralset.extractors import buffers
from neuralset.loaders import Batch, SegmentDataset
from neuralset.loaders.torch_loader import GroupSampler, IndexGroup, group_size, loader_options
from neuralset.loaders.transport import (
    SharedSlots,
    SlotWriter,
    dense_order,
    from_placed,
    slot_bytes_for,
    wire_batch,
)

from .conftest import SFREQ

torch = pytest.importorskip("torch")


def test_workers_give_the_batches_of_the_main_process(dataset: SegmentDataset) -> None:
    n = len(dataset)
    loader = dataset.loader(batch_size=4, num_workers=2)
    # small batches: each worker task reads a group of 32 consecutive batches
    assert loader.batch_sampler.k == 32 and len(loader) == -(-n // 4)
    assert loader.head_groups >= 1  # read here while the workers start
    direct = dataset.__getitems__(list(range(n)))
    for _ in range(2):  # two epochs through the same (persistent) workers
        batches = list(loader)
        assert [b.size for b in batches] == [4] * (n // 4) + ([n % 4] if n % 4 else [])
        assert all(isinstance(b, Batch) for b in batches)
        whole = Batch.concat(batches)
        assert whole.index.tolist() == list(range(n))
        np.testing.assert_array_equal(whole["meg"].numpy(), direct["meg"].numpy())
        np.testing.assert_array_equal(whole.start.numpy(), direct.start.numpy())
    first = loader._iterator
    list(loader)
    assert first is not None and loader._iterator is first  # workers were not restarted


def test_in_process_loader_gives_what_torch_would(dataset: SegmentDataset) -> None:
    # num_workers=0 reads in the loop itself; torch's own DataLoader, over the same sampler
    # draws, must give the same batches
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler

    ours = dataset.loader(batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(3))
    assert iter(ours).__class__.__name__ == "generator" and ours._iterator is None
    sampler = BatchSampler(
        RandomSampler(dataset, generator=torch.Generator().manual_seed(3)), 5, False
    )
    plain = DataLoader(dataset, batch_sampler=sampler, collate_fn=dataset.collate)
    got, want = list(ours), list(plain)
    assert [b.index.tolist() for b in got] == [b.index.tolist() for b in want]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a["meg"].numpy(), b["meg"].numpy())
    # pin_memory asks torch's iterator (it pins each batch): the same batches again
    pinned = dataset.loader(batch_size=5, pin_memory=True)
    assert [b.size for b in pinned] == [b.size for b in dataset.loader(batch_size=5)]


def test_slots_are_freed_when_the_batches_are(dataset: SegmentDataset) -> None:
    loader = dataset.loader(batch_size=len(dataset) // 2, num_workers=1, shuffle=True)
    slots = loader.dataset.slots
    assert len(slots) == 1 and slots[0].n_slots == 4
    list(loader)  # epoch 1: the main process reads the first groups while the worker starts
    gc.collect()
    kept = list(loader)
    # two small batches: one worker task, one slot, in use while either batch lives
    assert len(kept) == 2 and int(slots[0].flags.sum()) == 1
    assert not kept[0]["meg"].numpy().flags.owndata
    values = [b["meg"].numpy().copy() for b in kept]
    again = list(loader)  # the other slots are used meanwhile: kept batches stay intact
    for b, v in zip(kept, values):
        np.testing.assert_array_equal(b["meg"].numpy(), v)
    del kept, again, b
    gc.collect()
    assert int(slots[0].flags.sum()) == 0


def test_loader_options_defaults_and_user_choices() -> None:
    opts = loader_options(2, {})
    assert opts["persistent_workers"] is True and opts["prefetch_factor"] == 2
    assert opts["multiprocessing_context"] == "fork"
    mine = loader_options(2, {"persistent_workers": False, "multiprocessing_context": "spawn"})
    assert mine["persistent_workers"] is False and mine["multiprocessing_context"] == "spawn"
    assert loader_options(0, {"pin_memory": True}) == {"num_workers": 0, "pin_memory": True}


def test_group_sampler_and_group_size() -> None:
    assert group_size(1) == 32 and group_size(2**20) == 16 and group_size(2**30) == 1
    groups = list(GroupSampler([[0], [1], [2], [3], [4]], 2))
    assert groups == [[[0], [1]], [[2], [3]], [[4]]]
    assert all(isinstance(g, IndexGroup) for g in groups)
    assert len(GroupSampler(range(5), 2)) == 3


def test_wire_batch_round_trip_and_fallbacks(dataset: SegmentDataset) -> None:
    arrays = dataset.read(np.arange(6))
    size = slot_bytes_for(arrays)
    slots = SharedSlots(2, size)
    slot = slots.acquire()
    assert slot == 0
    writer = SlotWriter(slots, slot)
    with buffers.allocating(writer):  # the read builds its output inside the slot
        in_slot = dataset.read(np.arange(6))
    assert writer.place(in_slot["data"]["meg"])[0] == 0  # found where it was built: no copy
    batch = wire_batch(in_slot, writer, dataset.layout, check=True).batch()
    direct = dataset.__getitems__(list(range(6)))
    np.testing.assert_array_equal(batch["meg"].numpy(), direct["meg"].numpy())
    np.testing.assert_array_equal(batch.index.numpy(), np.arange(6))
    assert slots.flags.tolist() == [1, 0]
    del batch
    gc.collect()
    assert slots.flags.tolist() == [0, 0]
    # a batch larger than the slot travels inline (pickled arrays)
    small = SharedSlots(1, 4096)
    big = dataset.read(np.arange(len(dataset)))
    wire = wire_batch(big, SlotWriter(small, small.acquire()), dataset.layout, check=True)
    assert "meg" in [name for _, name, _ in wire.payload["inline"]]
    np.testing.assert_array_equal(wire.batch()["meg"].numpy(), big["data"]["meg"])
    # every slot in use: acquire says so
    full = SharedSlots(1, 4096)
    assert full.acquire() == 0 and full.acquire() is None


def test_acquire_reuses_the_lowest_free_slot() -> None:
    # a slot already written is cheaper to write again than a fresh one: reuse it first
    slots = SharedSlots(4, 4096)
    assert [slots.acquire(), slots.acquire(), slots.acquire()] == [0, 1, 2]
    slots.release(1)
    slots.release(0)
    assert slots.acquire() == 0 and slots.acquire() == 1 and slots.acquire() == 3
    assert slots.acquire() is None
    with pytest.raises(ValueError, match="need n_slots, slot_bytes >= 1, got 0, 10"):
        SharedSlots(0, 10)


def test_allocator_may_decline() -> None:
    assert buffers.empty((2, 3)).shape == (2, 3)
    with buffers.allocating(lambda shape, dtype: None):
        assert buffers.zeros((2,)).tolist() == [0.0, 0.0]
    target = np.ones(4, dtype=np.float32)
    with buffers.allocating(lambda shape, dtype: target[: shape[0]]):
        out = buffers.zeros((3,))
    assert out.base is target and target.tolist() == [0.0, 0.0, 0.0, 1.0]


def test_device_loader_on_cpu(dataset: SegmentDataset) -> None:
    direct = dataset.__getitems__(list(range(len(dataset))))
    for prefetch in (0, 3):
        loader = dataset.loader(batch_size=8, device="cpu", prefetch=prefetch)
        batches = list(loader)
        assert len(batches) == len(loader) == -(-len(dataset) // 8)
        assert all(b["meg"].device.type == "cpu" for b in batches)
        whole = Batch.concat(batches)
        np.testing.assert_array_equal(whole["meg"].numpy(), direct["meg"].numpy())
        assert loader.batches == len(batches) and loader.wait_s > 0
    with pytest.raises(ValueError, match="DeviceLoader.prefetch: must be an int >= 0, got -1"):
        dataset.loader(batch_size=8, device="cpu", prefetch=-1)


def test_device_loader_prefetches_ahead_and_stops(dataset: SegmentDataset) -> None:
    from neuralset.loaders.device import DeviceLoader

    produced: list[int] = []

    def source() -> Any:
        for k in range(10):
            produced.append(k)
            yield dataset.__getitems__([k])

    class Source:
        def __iter__(self) -> Any:
            return source()

        def __len__(self) -> int:
            return 10

    loader = DeviceLoader(Source(), "cpu", prefetch=2)
    it = iter(loader)
    next(it)
    import time

    time.sleep(0.3)  # the thread reads ahead: the one delivered, 2 queued, 1 waiting to go in
    assert len(produced) == 4
    it.close()  # early exit: the thread stops
    import threading

    assert not [t for t in threading.enumerate() if t.name == "neuralset-device"]


def test_device_loader_errors_reach_the_caller(dataset: SegmentDataset) -> None:
    from neuralset.loaders.device import DeviceLoader

    def source() -> Any:
        yield dataset.__getitems__([0])
        raise RuntimeError("broken read")

    class Source:
        def __iter__(self) -> Any:
            return source()

    with pytest.raises(RuntimeError, match="broken read"):
        list(DeviceLoader(Source(), "cpu", prefetch=2))


PIPELINE = """
import json, sys
from neuralset.loaders import SegmentDataset
from neuralset.store import Store
from tests.loaders.conftest import RampExtractor, make_events, SFREQ
from neuralset.segments import segment_on_triggers
from pathlib import Path
root = Path(sys.argv[1])
events = make_events(root)
segs = segment_on_triggers(events, "Word", offset=-0.2, duration=0.8).require("Meg")
segs = segs.select(segs.covering("Meg") >= 0)
ds = SegmentDataset(segs, {{"meg": RampExtractor(frequency=SFREQ)}}, Store(root / "store"))
ds.prepare(progress=False)
{run}
print(json.dumps({{m: m in sys.modules for m in ("torch", "jax", "jaxtyping", "equinox")}}))
"""


def _modules(tmp_path: Any, run: str) -> dict[str, bool]:
    code = PIPELINE.format(run=run)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_torch_pipeline_imports_no_jax(tmp_path: Any) -> None:
    run = "for b in ds.loader(batch_size=8, shuffle=True): b['meg'].sum()"
    result = _modules(tmp_path, run)
    # jaxtyping (pure Python) checks the shapes; its decorator must not pull jax in
    assert result["torch"] is True and result["jax"] is False and result["equinox"] is False


def test_a_jax_pipeline_imports_no_torch(tmp_path: Any) -> None:
    pytest.importorskip("jax")
    run = (
        "from neuralset.loaders import JaxBatchIterator\n"
        "for b in JaxBatchIterator(ds, 8, prefetch=2): b['meg'].sum()"
    )
    result = _modules(tmp_path, run)
    assert result["jax"] is True and result["torch"] is False


def test_event_features_warm_up_loads_their_values(setup: dict[str, Any]) -> None:
    # forked workers inherit the values instead of each loading them from the store
    from neuralset.extractors.event_features import _VALUES
    from neuralset.extractors.stimulus.text_features import WordLength

    segs = setup["segments"]
    ds = SegmentDataset(
        segs.select(segs.covering("Meg") >= 0), {"len": WordLength(frequency=SFREQ)}, setup["store"]
    )
    ds.prepare(progress=False)
    cache = ds.segments.index.memo.table(_VALUES, str(ds.store.root))
    assert len(cache) == 0
    ds.warm_up()
    rows = np.unique(ds.segments.overlapping("Word")[1])
    texts = set(ds.segments.events["text"].to_numpy()[rows])  # one value per distinct word
    assert len(cache) == len(texts) > 0
    batch = ds.__getitems__([0, 1])
    assert batch["len"].shape == (2, 1, 40) and float(batch["len"][0].max()) == 2.0  # "w0"


def test_workers_with_an_extractor_reading_without_row_keys(setup: dict[str, Any]) -> None:
    # LabelEncoder (the README's example) reads its stored vocabulary, not per-row values: the
    # warm-up before the workers fork raised NotImplementedError (LabelEncoder.row_keys)
    from neuralset.extractors.events import LabelEncoder

    label = LabelEncoder(event_type="Word", field="text")
    ds = SegmentDataset(setup["segments"], {"word": label}, setup["store"])
    ds.prepare(progress=False)
    ds.warm_up()
    got = [b["word"] for b in ds.loader(batch_size=5, num_workers=2)]
    expected = label.read(setup["segments"], setup["store"]).data
    np.testing.assert_array_equal(torch.cat(got).numpy(), expected)


def test_shape_checks_are_ready_before_the_workers_fork(dataset: SegmentDataset) -> None:
    # the first check of a process costs tens of ms (jaxtyping's import, its checker): the
    # loader pays it once before forking, for the workers and its own head start
    from neuralset.loaders import batch as batch_module

    batch_module._PASSED.clear()
    dataset.loader(batch_size=4, num_workers=1)
    passed = {sig[0] for sig in batch_module._PASSED}
    assert passed == {np.ndarray}
    batch_module._PASSED.clear()
    dataset.loader(batch_size=4, num_workers=0)  # nothing to fork: nothing done ahead
    assert not batch_module._PASSED


def test_dense_order_finds_permuted_blocks() -> None:
    block = np.zeros((4, 5, 3), np.float32)
    assert dense_order(block) == (0, 1, 2)
    assert dense_order(np.moveaxis(block, 1, -1)) == (0, 2, 1)  # a time-major read
    assert dense_order(block[:, ::2]) is None  # strided: not one block
    assert dense_order(block[::-1]) is None  # reversed


def test_arrays_copied_into_a_slot_keep_their_memory_order() -> None:
    slots = SharedSlots(1, 2**16)
    writer = SlotWriter(slots, slots.acquire())
    block = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    seen = block.transpose(0, 2, 1)  # time-major, built outside the slot (a baseline, say)
    placed = writer.place(seen)
    assert placed is not None and placed[3] == (0, 2, 1)
    back = from_placed(slots.lease(writer.slot), placed)
    np.testing.assert_array_equal(back, seen)
    assert back.strides == seen.strides and not back.flags.owndata
    strided = block[:, ::2]  # not one block: copied in C order
    placed = writer.place(strided)
    assert placed is not None and placed[3] is None
    back = from_placed(slots.lease(writer.slot), placed)
    np.testing.assert_array_equal(back, strided)
    assert back.flags.c_contiguous


def test_time_major_batches_come_from_workers_as_they_were_built(
    dataset: SegmentDataset,
) -> None:
    meg = dataset.extractors["meg"].replace(time_major=True)
    fast = SegmentDataset(dataset.segments, {"meg": meg}, dataset.store)
    loader = fast.loader(batch_size=4, num_workers=2, persistent_workers=False)
    loader.head_groups = 0  # every batch from a worker
    direct = dataset.__getitems__(list(range(len(dataset))))["meg"].numpy()
    slots = loader.dataset.slots
    spans = [(np.frombuffer(s.buffer, np.uint8).ctypes.data, len(s.buffer)) for s in slots]
    n = 0
    for batch in loader:
        tensor = batch["meg"]
        n_times = tensor.shape[-1]
        # (batch, channels, time) seen, (batch, time, channels) in memory, inside a slot
        assert tensor.stride() == (n_times * tensor.shape[1], 1, tensor.shape[1])
        assert any(lo <= tensor.data_ptr() < lo + size for lo, size in spans)
        np.testing.assert_array_equal(tensor.numpy(), direct[batch.index.numpy()])
        n += batch.size
    assert n == len(dataset)
    # batches bound to a device (here the CPU, through the same prefetching thread) keep it
    on_device = fast.loader(batch_size=4, num_workers=2, device="cpu", prefetch=2)
    for batch in on_device:
        assert batch["meg"].transpose(1, 2).is_contiguous()
        np.testing.assert_array_equal(batch["meg"].numpy(), direct[batch.index.numpy()])


@pytest.mark.parametrize("num_workers", [0, 1])
def test_batches_left_empty_by_drop_are_skipped(setup: dict[str, Any], num_workers: int) -> None:
    from tests.loaders.conftest import RampExtractor, expected_window

    segs = setup["segments"]  # some run past a recording's start or end
    inside = np.flatnonzero(segs.covering("Meg") >= 0)
    ds = SegmentDataset(
        segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"], out_of_bounds="drop"
    )
    ds.prepare(progress=False)
    # batches of one in order: those of the segments outside came out with shape (0, 0, 40)
    loader = ds.loader(batch_size=1, num_workers=num_workers)
    batches = list(loader)
    assert len(loader) == len(segs) > len(batches) == len(inside)
    assert [int(b.index[0]) for b in batches] == inside.tolist()
    for b in batches:
        assert tuple(b["meg"].shape) == (1, 3, 40)
        start = float(segs.start[int(b.index[0])])
        np.testing.assert_array_equal(b["meg"].numpy()[0], expected_window(start, 40))
    sizes = [b.size for b in ds.loader(batch_size=8, num_workers=num_workers)]
    kept = [
        int(np.isin(np.arange(k, min(k + 8, len(segs))), inside).sum())
        for k in range(0, len(segs), 8)
    ]
    assert sizes == [k for k in kept if k]


def test_shuffle_draws_from_torch_and_the_epoch_sampler_gives_the_jax_order(
    setup: dict[str, Any],
) -> None:
    from torch.utils.data import RandomSampler

    from neuralset.loaders import EpochBatchSampler
    from tests.loaders.conftest import RampExtractor

    segs = setup["segments"].select(np.flatnonzero(setup["segments"].covering("Meg") >= 0))
    ds = SegmentDataset(segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"], seed=5)

    def order(loader: Any) -> list[int]:
        return [int(i) for b in loader for i in b.index]

    # shuffle=True: torch's generator, as any DataLoader (torch.manual_seed, or generator=)
    torch.manual_seed(11)
    seeded = order(ds.loader(batch_size=8, shuffle=True))
    torch.manual_seed(11)
    assert seeded == [int(i) for i in RandomSampler(ds)]
    torch.manual_seed(12)
    assert order(ds.loader(batch_size=8, shuffle=True)) != seeded
    drawn = ds.loader(batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(2))
    assert order(drawn) == list(RandomSampler(ds, generator=torch.Generator().manual_seed(2)))
    # an EpochBatchSampler: the JAX iterator's order for the same seed, epoch by epoch
    loader = ds.loader(sampler=EpochBatchSampler(len(ds), 8, seed=5))
    epochs = [order(loader) for _ in range(2)]
    n = len(ds)
    assert epochs == [list(np.random.default_rng([5, e]).permutation(n)) for e in (0, 1)]
    if importlib.util.find_spec("jax") is not None:
        from neuralset.loaders.jax_iter import JaxBatchIterator

        it = JaxBatchIterator(ds, 8, seed=5, prefetch=0)
        assert [[int(i) for b in it for i in np.asarray(b.index)] for _ in range(2)] == epochs
