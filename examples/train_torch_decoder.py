"""Train a small PyTorch decoder on the synthetic MEG study.

From 0.2 s of 32-channel MEG (band-passed 0.5-40 Hz, resampled to 100 Hz, standardised), predict
whether a word started at the beginning of the window. Train on one subject, validate on the
other. Everything heavy (writing the study's FIF files, MNE preprocessing) happens once and is
stored; a second run goes straight to training.

Usage::

    python examples/train_torch_decoder.py [--epochs 10] [--cache DIR] [--quick]
"""

from __future__ import annotations

import time

import torch
from common import setup
from torch import nn

from neuralset.loaders import Batch, SegmentDataset


def accuracy(model: nn.Module, dataset: SegmentDataset) -> float:
    """Fraction of windows of ``dataset`` whose label ``model`` predicts."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        batch: Batch
        for batch in dataset.loader(batch_size=256):
            predicted = model(batch["meg"]).argmax(dim=1)
            correct += int((predicted == batch["label"]).sum())
            total += batch.size
    return correct / max(total, 1)


def main() -> None:
    t0 = time.perf_counter()
    epochs, train, val, vocabulary, (channels, times) = setup(__doc__)

    torch.manual_seed(0)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    model = nn.Sequential(
        nn.Conv1d(channels, 16, kernel_size=3, padding=1),  # spatial filters + short kernel
        nn.GELU(),
        nn.Flatten(),
        nn.Linear(16 * times, len(vocabulary)),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        for batch in train.loader(batch_size=32, shuffle=True):
            loss = loss_fn(model(batch["meg"]), batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(
            f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, "
            f"train accuracy {accuracy(model, train):.3f}, val accuracy {accuracy(model, val):.3f}"
        )
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
