"""Train a small equinox decoder on the synthetic MEG study, fed by the JAX batch iterator.

The same task as ``train_torch_decoder.py``: from 0.2 s of 32-channel MEG, predict whether a
word started at the beginning of the window; train on one subject, validate on the other. The
optimiser is plain SGD with momentum written with ``jax.grad`` (no optax needed). torch is not
imported.

Usage::

    python examples/train_equinox.py [--epochs 10] [--cache DIR] [--quick]
"""

from __future__ import annotations

import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from common import setup

from neuralset.loaders import JaxBatchIterator, SegmentDataset

LEARNING_RATE = 0.05
MOMENTUM = 0.9


class Decoder(eqx.Module):
    """Spatio-temporal convolution, then a linear read-out over the window (one example)."""

    conv: eqx.nn.Conv1d
    readout: eqx.nn.Linear

    def __init__(self, channels: int, times: int, classes: int, key: jax.Array) -> None:
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv1d(channels, 16, kernel_size=3, padding=1, key=k1)
        self.readout = eqx.nn.Linear(16 * times, classes, key=k2)

    def __call__(self, meg: jax.Array) -> jax.Array:  # (channels, time) -> (classes,)
        return self.readout(jax.nn.gelu(self.conv(meg)).reshape(-1))


def loss_fn(model: Decoder, meg: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of the batch."""
    logits = jax.vmap(model)(meg)
    picked = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    return (jax.nn.logsumexp(logits, axis=1) - picked).mean()


@eqx.filter_jit
def train_step(model: Decoder, velocity: Any, meg: jax.Array, labels: jax.Array) -> Any:
    """One SGD-with-momentum step; returns the new model, velocity and the loss."""
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, meg, labels)
    velocity = jax.tree.map(lambda v, g: MOMENTUM * v + g, velocity, grads)
    model = eqx.apply_updates(model, jax.tree.map(lambda v: -LEARNING_RATE * v, velocity))
    return model, velocity, loss


@eqx.filter_jit
def n_correct(model: Decoder, meg: jax.Array, labels: jax.Array) -> jax.Array:
    return (jax.vmap(model)(meg).argmax(axis=1) == labels).sum()


def accuracy(model: Decoder, dataset: SegmentDataset) -> float:
    """Fraction of windows of ``dataset`` whose label ``model`` predicts."""
    correct = total = 0
    for batch in JaxBatchIterator(dataset, batch_size=256, shuffle=False):
        correct += int(n_correct(model, batch["meg"], batch["label"]))
        total += batch.size
    return correct / max(total, 1)


def main() -> None:
    t0 = time.perf_counter()
    epochs, train, val, vocabulary, (channels, times) = setup(__doc__)

    model = Decoder(channels, times, len(vocabulary), jax.random.key(0))
    # momentum buffers: zeros shaped like the model's arrays (None elsewhere)
    velocity = jax.tree.map(jnp.zeros_like, eqx.filter(model, eqx.is_array))
    # same-size batches (drop_last) so the jitted step compiles once; a new order every epoch
    batches = JaxBatchIterator(train, batch_size=32, shuffle=True, seed=0, drop_last=True)
    for epoch in range(epochs):
        for batch in batches:
            model, velocity, loss = train_step(model, velocity, batch["meg"], batch["label"])
        print(
            f"epoch {epoch + 1}/{epochs}: loss {float(loss):.3f}, "
            f"train accuracy {accuracy(model, train):.3f}, val accuracy {accuracy(model, val):.3f}"
        )
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
