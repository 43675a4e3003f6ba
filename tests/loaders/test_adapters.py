"""Lightning DataModule and grain sources, each with a real training step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from neuralset.loaders import SegmentDataset
from neuralset.segments import segment_on_triggers

from .conftest import SFREQ, RampExtractor


@pytest.fixture(scope="module")
def dataset(setup: dict[str, Any]) -> SegmentDataset:
    segs = segment_on_triggers(setup["events"], "Word", offset=0.0, duration=0.4)
    segs = segs.select(segs.covering("Meg") >= 0)
    ds = SegmentDataset(segs, {"meg": RampExtractor(frequency=SFREQ)}, setup["store"])
    ds.prepare(progress=False)
    return ds


def target_of(meg: Any) -> Any:
    """A learnable target: the time of the window (channel 0 of the ramp is the time)."""
    return meg[:, 0, 0]


def test_lightning_datamodule_trains(dataset: SegmentDataset) -> None:
    import lightning
    import torch

    from neuralset.loaders.lightning import EmptySplitError, SegmentDataModule

    n = len(dataset)
    split = np.where(np.arange(n) % 5 == 0, "val", "train").astype(object)
    module = SegmentDataModule(dataset, splits=split, batch_size=8, seed=1)
    assert {k: len(v) for k, v in module.positions.items()} == {
        "train": n - len(range(0, n, 5)),
        "val": len(range(0, n, 5)),
    }

    class Regressor(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(3 * 20, 1)
            self.losses: list[float] = []
            self.val_batches = 0

        def _loss(self, batch: Any) -> Any:
            x = batch["meg"] / 1000.0
            y = target_of(batch["meg"]) / 20.0
            return torch.nn.functional.mse_loss(self.net(x.flatten(1)).squeeze(1), y)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = self._loss(batch)
            self.losses.append(float(loss.detach()))
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.val_batches += 1
            # positions in the split's subset: module.positions["val"][batch.index] in the dataset
            assert int(batch.index.max()) < len(module.positions["val"])

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=0.05)

    model = Regressor()
    trainer = lightning.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=module)
    steps_per_epoch = int(np.ceil(len(module.positions["train"]) / 8))
    assert len(model.losses) == 3 * steps_per_epoch == trainer.global_step
    assert np.mean(model.losses[-steps_per_epoch:]) < 0.5 * np.mean(model.losses[:steps_per_epoch])
    assert model.val_batches >= int(np.ceil(len(module.positions["val"]) / 8))
    with pytest.raises(EmptySplitError) as err:
        SegmentDataModule(dataset, splits={"train": np.arange(3), "val": np.zeros(n, bool)})
    assert str(err.value) == (
        f"split 'val' has no segment (of {n}); check the selection that defines it, or leave "
        "the split out"
    )
    with pytest.raises(
        EmptySplitError, match=r"no segment is in the split 'train' \(split names found: none\)"
    ):
        SegmentDataModule(dataset, splits=[None] * n)
    with pytest.raises(EmptySplitError, match="no 'test' split was given"):
        module.test_dataloader()


def test_grain_sources_feed_a_jax_training_step(dataset: SegmentDataset) -> None:
    import grain
    import jax
    import jax.numpy as jnp

    from neuralset.loaders.grain_source import GrainBatchSource, GrainSource

    source = GrainSource(dataset)
    record = source[3]
    assert record["data"]["meg"].shape == (3, 20) and record["index"] == 3
    np.testing.assert_array_equal(record["data"]["meg"], dataset.read([3])["data"]["meg"][0])
    np.testing.assert_allclose(record["times"]["meg"], np.arange(20) / SFREQ)

    def loss_fn(w: Any, meg: Any) -> Any:
        x = meg[:, 0, :] / 20.0  # channel 0 of the ramp: the time
        return jnp.mean((x @ w - meg[:, 0, 0] / 20.0) ** 2)

    grad = jax.jit(jax.value_and_grad(loss_fn))
    w = jnp.zeros(20)
    losses = []
    pipeline = grain.MapDataset.source(source).shuffle(seed=0).batch(8)
    for _ in range(3):
        for batch in pipeline:
            assert batch["data"]["meg"].shape[1:] == (3, 20)
            loss, g = grad(w, jnp.asarray(batch["data"]["meg"]))
            w = w - 0.05 * g
            losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]
    # one record per batch, through grain's DataLoader and its sampler
    batches = GrainBatchSource(dataset, 8, seed=0)
    assert len(batches) == int(np.ceil(len(dataset) / 8))
    loader = grain.DataLoader(
        data_source=batches,
        sampler=grain.samplers.IndexSampler(len(batches), shuffle=True, seed=0, num_epochs=2),
        worker_count=0,
    )
    seen = []
    for batch in loader:
        loss, g = grad(w, jnp.asarray(batch["data"]["meg"]))
        w = w - 0.05 * g
        seen += batch["index"].tolist()
    assert sorted(seen) == sorted(list(range(len(dataset))) * 2)
    assert "GrainBatchSource(SegmentDataset(" in repr(batches)
