"""Peak memory of ``HuggingFaceAudio`` on a long sound: one pass against ``chunk_duration``.

A wav2vec2-base-sized model (``Wav2Vec2Config()``: 7 convolutions, 12 layers of 768 features)
with random weights (no hub) is saved to a temporary folder, with ``--seconds`` of modulated
noise at 16 kHz. Each mode runs in a fresh process, which prints its peak resident memory
(``ru_maxrss``): ``baseline`` (the model loaded, a 1 s sound), ``whole`` (the long sound in
one pass, ``chunk_duration=None``) and ``chunked`` (``--chunk`` s per pass with ``--context``
s on each side, ``--batch-size`` chunks per forward pass: the extractor's ``batch_size``). Printed: each peak and its excess over the baseline, the chunked / whole
ratio of the excess, and how far the chunked features are from the single pass (max absolute
difference over the features' standard deviation) for the first and the last hidden state.

Usage: ``python benchmarks/audio_chunks.py [--seconds 60] [--chunk 20] [--context 2.5]
[--batch-size 1]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import resource, sys, numpy as np, pandas as pd, torch
torch.set_num_threads(2)
from neuralset.events import validate_events
from neuralset.extractors.stimulus.audio import HuggingFaceAudio
folder, wav, seconds, chunk, context, batch, out = sys.argv[1:8]
kwargs = {} if chunk == "none" else {"chunk_duration": float(chunk), "chunk_context": float(context)}
ex = HuggingFaceAudio(model=folder, layers=(0, -1), layer_aggregation="none", device="cpu",
    batch_size=int(batch), **kwargs)
events = validate_events(pd.DataFrame({"type": ["Audio"], "start": [0.0], "duration": [float(seconds)],
    "timeline": ["t"], "filepath": [wav], "frequency": [16000.0]}))
(computed,) = ex.compute_many(ex.items(events))
np.save(out, computed.arrays["data"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _build(folder: Path, seconds: float) -> Path:
    import soundfile
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(folder / "model")
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(
        folder / "model"
    )
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(0).normal(0, 0.1, len(t)) * (1 + np.sin(2 * np.pi * 4 * t))
    soundfile.write(str(folder / "long.wav"), noise.astype(np.float32), 16000)
    return folder


def _run(folder: Path, seconds: float, chunk: str, context: float, batch: int, name: str) -> int:
    where = [str(folder / "model"), str(folder / "long.wav")]
    args = [*where, str(seconds), chunk, str(context), str(batch)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args, str(folder / f"{name}.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk", type=float, default=20.0)
    parser.add_argument("--context", type=float, default=2.5)
    parser.add_argument("--batch-size", type=int, default=1, help="chunks per forward pass")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = _build(Path(tmp), args.seconds)
        base = _run(folder, 1.0, "none", 0.0, 1, "baseline")
        whole = _run(folder, args.seconds, "none", 0.0, 1, "whole")
        chunk = str(args.chunk)
        chunked = _run(folder, args.seconds, chunk, args.context, args.batch_size, "chunked")
        ref, got = (np.load(folder / f"{n}.npy") for n in ("whole", "chunked"))
    diff = [float(np.abs(got[:, i] - ref[:, i]).max() / ref[:, i].std()) for i in (0, 1)]
    mb = 2**20
    print(
        json.dumps(
            {
                "seconds": args.seconds,
                "chunk": args.chunk,
                "context": args.context,
                "batch_size": args.batch_size,
                "frames": int(ref.shape[0]),
                "same_shape": got.shape == ref.shape,
                "peak_mb": {"baseline": base / mb, "whole": whole / mb, "chunked": chunked / mb},
                "excess_mb": {"whole": (whole - base) / mb, "chunked": (chunked - base) / mb},
                "excess_ratio_chunked_to_whole": (chunked - base) / max(whole - base, 1),
                "max_diff_over_std": {"layer_0": diff[0], "last_layer": diff[1]},
            }
        )
    )


if __name__ == "__main__":
    main()
