"""A small convolutional decoder trained on loader batches: how long the step waits for data.

Study: the MEG-4x128 scenario of ``benchmarks/loading.py`` (``--small``: 2 subjects x 32
channels x 60 s, where the first batch of each epoch weighs more). Model: two 1-D convolutions over time (64
filters, kernel 7, GELU), average pooling and a linear read-out to 2 classes (the parity of the
trigger row), AdamW, batch 32. Each setting trains ``--epochs`` epochs after one warm-up epoch:

* ``plain_loop``: ``loader(num_workers=0)``, each batch moved with ``.to(device)`` in the loop (what
  a plain training script does): the step waits for every read and copy;
* ``device_prefetch``: ``loader(device=..., prefetch=2)``: batches read and copied by a background thread
  (pinned memory and non-blocking copies on a side stream on CUDA);
* ``device_prefetch_2_workers``: the same with ``num_workers=2``.

On CPU the model's own threads compete with the reads for the cores: torch runs
``--threads`` intra-op threads (default: the CPU count minus one, at least one), leaving a
core to the data, in every setting and in the ceiling alike.

``wait_fraction`` is the time the loop spent waiting for its next batch over the total loop
time (target <= 0.05); ``compute_only_segments_per_s`` is the same model stepping on one batch
already on the device (the ceiling), and ``lost_to_data`` is ``1 - segments_per_s / ceiling``.
On CUDA the two differ: the loop launches the GPU's work asynchronously and runs ahead of it,
so the time it spends blocked in ``next`` also holds time spent waiting for the GPU to finish
earlier steps (which the ceiling pays too); ``lost_to_data`` is then the fraction of the
GPU's time lost to the data. Prints JSON. ``--device cuda`` on a GPU machine (also run
by ``scripts/gpu_check.py``).

Usage: ``python benchmarks/device_training.py [--device cpu|cuda] [--small] [--epochs 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from loading import build  # noqa: E402


def model_for(n_channels: int, device: str) -> tuple[Any, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(n_channels, 64, 7, padding=3),
        nn.GELU(),
        nn.Conv1d(64, 64, 7, padding=3),
        nn.GELU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(64, 2),
    ).to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def step(model: Any, opt: Any, x: Any, y: Any) -> Any:
    import torch

    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def train(dataset: Any, setting: str, device: str, epochs: int) -> dict[str, Any]:
    """Train ``epochs`` epochs (after a warm-up one) in one setting; time the waits."""
    import torch

    n_ch = dataset.__getitems__([0])["meg"].shape[1]
    model, opt = model_for(n_ch, device)
    if setting == "plain_loop":
        loader = dataset.loader(batch_size=32, shuffle=True, num_workers=0)
    else:
        workers = 2 if setting == "device_prefetch_2_workers" else 0
        loader = dataset.loader(
            batch_size=32, shuffle=True, num_workers=workers, device=device, prefetch=2
        )
    wait = total = 0.0
    n = 0
    for epoch in range(epochs + 1):
        _sync(device)
        t_start = time.perf_counter()
        it = iter(loader)
        w = 0.0
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            if batch is not None and setting == "plain_loop":
                batch = batch.to(device, non_blocking=False)
            w += time.perf_counter() - t0
            if batch is None:
                break
            y = (batch.trigger % 2).to(device=batch["meg"].device, dtype=torch.long)
            step(model, opt, batch["meg"], y)
            if epoch:
                n += batch.size
        _sync(device)
        if epoch:  # epoch 0 warms up
            wait += w
            total += time.perf_counter() - t_start
    return {
        "segments_per_s": round(n / total),
        "wait_fraction": round(wait / total, 4),
        "target": "wait_fraction <= 0.05",
        "ok": wait / total <= 0.05,
    }


def compute_only(dataset: Any, device: str, n_steps: int) -> float:
    """Segments/s of the model stepping on one batch already on the device."""
    import torch

    batch = dataset.__getitems__(list(range(32))).to(device)
    y = (batch.trigger % 2).to(device=batch["meg"].device, dtype=torch.long)
    model, opt = model_for(batch["meg"].shape[1], device)
    for _ in range(5):
        step(model, opt, batch["meg"], y)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step(model, opt, batch["meg"], y)
    _sync(device)
    return 32 * n_steps / (time.perf_counter() - t0)


def run(
    device: str, small: bool, epochs: int, root: Path | None = None, threads: int | None = None
) -> dict[str, Any]:
    """The benchmark's JSON result (also called by ``scripts/gpu_check.py``)."""
    import torch

    if threads is None:
        threads = max(1, (os.cpu_count() or 1) - 1)
    torch.set_num_threads(threads)
    default = Path(tempfile.gettempdir()) / (
        "neuralset-bench-loading" + ("-small" if small else "")
    )
    _, _, dataset = build((root or default).resolve(), small)
    result: dict[str, Any] = {
        "benchmark": "device_training",
        "device": device,
        "n_segments": len(dataset),
        "batch_shape": [32, *dataset.__getitems__(list(range(32)))["meg"].shape[1:]],
        "cpus": os.cpu_count(),
        "torch_threads": threads,
        "compute_only_segments_per_s": round(compute_only(dataset, device, 50)),
    }
    for setting in ("plain_loop", "device_prefetch", "device_prefetch_2_workers"):
        result[setting] = train(dataset, setting, device, epochs)
        ceiling = result["compute_only_segments_per_s"]
        lost = 1 - result[setting]["segments_per_s"] / ceiling
        result[setting]["lost_to_data"] = round(max(lost, 0.0), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    result = run(args.device, args.small, args.epochs, args.root, args.threads)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
