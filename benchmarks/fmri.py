"""fMRI prepare time: :class:`FmriExtractor.prepare` against a plain nilearn script.

One 4D run on nilearn's MNI152 template grid (``--resolution`` mm, default 3 mm: 61 x 73 x 61
voxels, ~70k in the brain mask) with ``--volumes`` volumes (default 200, TR 2 s), written as
``.nii``. Both sides do the same work: load, smooth (fwhm 6 mm), project, then clean (detrend,
z-score, cosine drift high-pass at 0.01 Hz):

* ``mask``: nilearn ``NiftiMasker(mask_strategy="whole-brain-template", ...)`` ``fit_transform``
  against ``FmriExtractor(projection="mask")``;
* ``surface``: ``smooth_img`` + ``vol_to_surf`` on fsaverage5 (pial, white inner mesh) +
  ``signal.clean`` against ``FmriExtractor(projection="surface")``.

The extractor's time includes listing the item, the store write (``.npy`` + index commit) and
the float32 cast. Each measure is the median of ``--repeats`` runs, baseline and extractor
interleaved (alternating which goes first); outputs are checked equal. Target: ratio <= 1.2.
``ratio_of_minima`` (best run against best run) is less sensitive to a loaded machine. Prints JSON.

Usage: ``python benchmarks/fmri.py [--resolution 3] [--volumes 200] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from neuralset.events import validate_events
from neuralset.extractors.neural.fmri import FmriExtractor
from neuralset.store import Store

TR = 2.0
CLEAN = dict(detrend=True, standardize="zscore_sample", high_pass=0.01)


def make_run(folder: Path, resolution: int, volumes: int) -> Path:
    import nibabel as nib
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=resolution)
    rng = np.random.default_rng(0)
    brain = template.get_fdata() > 0
    data = rng.standard_normal(template.shape + (volumes,), dtype=np.float32)
    data += np.where(brain, 100.0, 1.0).astype(np.float32)[..., None]
    data += np.linspace(0, 3, volumes, dtype=np.float32)  # a drift to remove
    img = nib.Nifti1Image(data, template.affine)
    img.header.set_zooms((resolution,) * 3 + (TR,))
    path = folder / "sub-01_task-bench_bold.nii"
    nib.save(img, path)
    return path


def baseline_mask(path: Path) -> np.ndarray:
    from nilearn.maskers import NiftiMasker

    masker = NiftiMasker(
        mask_strategy="whole-brain-template",
        smoothing_fwhm=6.0,
        t_r=TR,
        clean_args={"filter": "cosine"},
        **CLEAN,
    )
    return masker.fit_transform(str(path))


def baseline_surface(path: Path) -> np.ndarray:
    from nilearn import datasets, image, signal, surface

    fsavg = datasets.load_fsaverage("fsaverage5")
    img = image.smooth_img(str(path), 6.0)
    tex = [
        surface.vol_to_surf(img, fsavg["pial"].parts[h], inner_mesh=fsavg["white_matter"].parts[h])
        for h in ("left", "right")
    ]
    return signal.clean(np.concatenate(tex).T, filter="cosine", t_r=TR, **CLEAN)


def ours(extractor: FmriExtractor, events: pd.DataFrame, folder: Path, i: int) -> np.ndarray:
    store = Store(folder / f"store-{extractor.projection}-{i}")
    extractor.prepare(events, store, progress=False)
    return np.asarray(store.get_arrays(extractor.items(events)[0].key)["data"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolution", type=int, default=3)
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import nilearn.maskers  # noqa: F401 - import cost out of the timings
    import nilearn.surface  # noqa: F401

    result: dict[str, object] = {
        "benchmark": "fmri_prepare",
        "resolution_mm": args.resolution,
        "volumes": args.volumes,
        "repeats": args.repeats,
        "machine": platform.processor() or platform.machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_run(folder, args.resolution, args.volumes)
        events = validate_events(
            pd.DataFrame(
                [
                    dict(
                        type="Fmri",
                        start=0.0,
                        duration=args.volumes * TR,
                        timeline="a",
                        filepath=str(path),
                        frequency=1 / TR,
                    )
                ]
            )
        )
        cases = {
            "mask": (baseline_mask, FmriExtractor(projection="mask", fwhm=6.0, **CLEAN)),
            "surface": (baseline_surface, FmriExtractor(projection="surface", fwhm=6.0, **CLEAN)),
        }
        for name, (baseline, extractor) in cases.items():
            base_t, ours_t = [], []
            for i in range(args.repeats):
                # alternate which side runs first, so that drifting machine load hits both
                order = ("base", "ours") if i % 2 == 0 else ("ours", "base")
                for side in order:
                    t0 = time.perf_counter()
                    if side == "base":
                        ref = baseline(path)
                        base_t.append(time.perf_counter() - t0)
                    else:
                        out = ours(extractor, events, folder, i)
                        ours_t.append(time.perf_counter() - t0)
            np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
            b, o = statistics.median(base_t), statistics.median(ours_t)
            result[name] = {
                "features": int(ref.shape[1]),
                "nilearn_s": round(b, 3),
                "neuralset_s": round(o, 3),
                "ratio": round(o / b, 3),
                "ratio_of_minima": round(min(ours_t) / min(base_t), 3),
                "target_ratio": 1.2,
                "ok": o / b <= 1.2,
            }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
