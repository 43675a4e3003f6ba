"""SegmentDataset.loader: arguments a torch user plausibly gets wrong fail before any read.

Each error names the argument and the fix (``neuralset.loaders.torch_loader.check_loader_arguments``
and the device check of ``neuralset.loaders.device``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from neuralset.loaders import LengthBucketSampler, SegmentDataset

torch = pytest.importorskip("torch")


SINGLES = "which yields one position at a time (batches of one segment); wrap it: torch.utils.data.BatchSampler(sampler, batch_size, drop_last)"


@pytest.mark.parametrize(
    ("sampler", "name"),
    [
        (lambda n: torch.utils.data.RandomSampler(range(n)), "RandomSampler"),
        (lambda n: torch.utils.data.SubsetRandomSampler(list(range(n))), "SubsetRandomSampler"),
        (lambda n: torch.utils.data.WeightedRandomSampler([1.0] * n, n), "WeightedRandomSampler"),
        (lambda n: list(range(n)), "list"),
        (lambda n: np.arange(n), "ndarray"),
    ],
)
def test_a_sampler_of_single_positions_is_refused(
    dataset: SegmentDataset, sampler: Any, name: str
) -> None:
    # torch's DataLoader(sampler=...) takes these; here they gave batches of one segment
    message = (
        "SegmentDataset.loader.sampler: expected a batch sampler (an iterable of lists of "
        f"positions, with len()), got {name}, {SINGLES}"
    )
    for workers in (0, 2):
        with pytest.raises(TypeError, match=re.escape(message)):
            dataset.loader(sampler=sampler(len(dataset)), num_workers=workers)


def test_batch_samplers_still_pass(dataset: SegmentDataset) -> None:
    n = len(dataset)
    wrapped = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), 4, False)
    sizes = [b.size for b in dataset.loader(sampler=wrapped)]
    assert sizes == [4] * (n // 4) + ([n % 4] if n % 4 else [])
    listed = [[2, 0], [1]]
    assert [b.index.tolist() for b in dataset.loader(sampler=listed)] == listed
    bucket = LengthBucketSampler(dataset.segments.duration, batch_size=4, seed=0)
    assert sum(b.size for b in dataset.loader(sampler=bucket)) == n


def test_shuffle_or_drop_last_with_a_sampler_is_refused(dataset: SegmentDataset) -> None:
    for flag in ("shuffle", "drop_last"):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"SegmentDataset.loader: {flag}=True has no effect with a sampler, which "
                f"chooses the batches itself; drop {flag}=True (or set it on the sampler)"
            ),
        ):
            dataset.loader(sampler=[[0, 1]], **{flag: True})


def test_batch_sampler_keyword_points_to_sampler(dataset: SegmentDataset) -> None:
    with pytest.raises(
        TypeError,
        match=re.escape(
            "SegmentDataset.loader: pass a batch sampler as sampler=..., not batch_sampler= "
            "(the loader gives the DataLoader its own batch sampler)"
        ),
    ):
        dataset.loader(batch_sampler=[[0, 1]])


@pytest.mark.parametrize(
    ("generator", "shown"),
    [(np.random.default_rng(0), "numpy.random._generator.Generator"), (0, "builtins.int")],
)
def test_generator_must_be_a_torch_generator(
    dataset: SegmentDataset, generator: Any, shown: str
) -> None:
    message = (
        f"SegmentDataset.loader.generator: expected a torch.Generator, got {shown}; pass "
        "torch.Generator().manual_seed(seed)"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        dataset.loader(shuffle=True, generator=generator, num_workers=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size: must be an integer >= 1, got 0"),
        ({"batch_size": 2.0}, "batch_size: must be an integer >= 1, got 2.0"),
        ({"batch_size": True}, "batch_size: must be an integer >= 1, got True"),
        ({"num_workers": -1}, "num_workers: must be an integer >= 0, got -1"),
        ({"num_workers": 1.5}, "num_workers: must be an integer >= 0, got 1.5"),
    ],
)
def test_counts_are_checked(dataset: SegmentDataset, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape("SegmentDataset.loader." + message)):
        dataset.loader(**kwargs)


def test_numpy_integers_are_counts(dataset: SegmentDataset) -> None:
    # torch's BatchSampler refused np.int64(4) with "got batch_size=4"
    loader = dataset.loader(batch_size=np.int64(4), num_workers=np.int64(0))
    assert [b.size for b in loader][:2] == [4, 4]
    assert loader.batch_size is None and loader.batch_sampler.batch_size == 4


def test_a_device_torch_does_not_know_or_see_is_refused(dataset: SegmentDataset) -> None:
    with pytest.raises(
        ValueError, match=re.escape("SegmentDataset.loader.device: 'gpu' is not a torch device (")
    ):
        dataset.loader(device="gpu")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    message = (
        f"SegmentDataset.loader.device: 'cuda:{n}', but torch sees {n} CUDA device(s) "
        f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}); "
        "pass device='cpu', or run where that GPU is visible"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        dataset.loader(device=f"cuda:{n}", num_workers=2)
    assert dataset.loader(device="cpu").device == "cpu"


def test_a_generator_an_augmented_loader_would_ignore_is_refused(dataset: SegmentDataset) -> None:
    noisy = SegmentDataset(
        dataset.segments, dataset.extractors, dataset.store, augment={"meg": lambda x, rng: x}
    )
    message = (
        "SegmentDataset.loader.generator: an augmented dataset shuffles with an "
        "EpochBatchSampler seeded by SegmentDataset.seed, so the generator would not "
        "change the order; set the dataset's seed (SegmentDataset(..., seed=...)) or pass "
        "sampler=EpochBatchSampler(len(dataset), batch_size, seed=...) instead"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        noisy.loader(shuffle=True, generator=torch.Generator().manual_seed(1))
    # in order, the generator only seeds the workers: accepted
    ordered = noisy.loader(batch_size=4, generator=torch.Generator().manual_seed(1))
    assert next(iter(ordered)).index.tolist() == [0, 1, 2, 3]
