"""An fMRI encoding pipeline end to end: words -> HRF -> ridge on a parcellation.

On the synthetic study (``--subjects`` runs of ``--duration`` s, TR 2 s, 8 mm grid) and its
parcellation (``write_parcellation``), both sides compute the same design and data:

* features: a word indicator and the word length, convolved with nilearn's Glover HRF at the
  frame times of each run (neuralset: ``HrfConvolve(Concat(Pulse, WordLength))``; baseline:
  ``nilearn.glm.first_level.compute_regressor`` per feature column and run);
* BOLD: parcel means, detrended and z-scored (neuralset: ``FmriExtractor(projection="atlas")``;
  baseline: ``NiftiLabelsMasker.fit_transform`` per run);
* model: ``RidgeCV`` fitted on the first half of the runs, R^2 on the others.

Measured, each the median of ``--repeats`` runs (sides interleaved, a fresh store per repeat):

* ``prepare``: neuralset ``dataset.prepare()`` (items listed, computed, stored) against the
  baseline script computing the arrays and saving them as ``.npy``;
* ``prepare_again``: a second ``prepare`` on the filled store (nothing to compute);
* ``epoch``: reading every frame's features and BOLD (batches of 64 segments, the numpy read
  path) and fitting the ridge, against ``np.load`` of the baseline's arrays and the same fit;
  ``first_epoch`` is the first pass over a new dataset, which also checks that everything is
  prepared and finds the store key of every run (once per events table).

The two sides' arrays are checked equal (float32 storage: rtol 1e-4). Prints JSON.

Usage: ``python benchmarks/fmri_encoding.py [--subjects 4] [--duration 600] [--repeats 3]``
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

from neuralset.extractors.events import Pulse
from neuralset.extractors.meta import Concat, HrfConvolve
from neuralset.extractors.neural import FmriExtractor
from neuralset.extractors.stimulus import WordLength
from neuralset.loaders import SegmentDataset
from neuralset.segments import sliding_windows
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy
from neuralset.synthetic.fmri import TR, write_parcellation


def extractors(atlas: Path) -> dict[str, object]:
    word = dict(output="static", aggregation="trigger")
    inner = Concat(extractors=(Pulse(event_type="Word", **word), WordLength(**word)))
    return {
        "x": HrfConvolve(extractor=inner, frequency=1 / TR, output="static"),
        "y": FmriExtractor(
            projection="atlas",
            atlas=atlas,
            detrend=True,
            standardize="zscore_sample",
            frequency=1 / TR,
            output="static",
        ),  # fmt: skip
    }


def ours_prepare(events: pd.DataFrame, atlas: Path, store: Store) -> tuple[SegmentDataset, float]:
    frames = sliding_windows(events, duration=TR, stride=TR, blocks="Fmri")
    dataset = SegmentDataset(frames, extractors(atlas), store)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    dataset.prepare(progress=False)
    return dataset, time.perf_counter() - t0


def ours_epoch(dataset: SegmentDataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for start in range(0, len(dataset), 64):
        data = dataset.read(np.arange(start, min(start + 64, len(dataset))))["data"]
        xs.append(data["x"])
        ys.append(data["y"])
    return np.concatenate(xs), np.concatenate(ys)


def baseline_prepare(events: pd.DataFrame, atlas: Path, folder: Path) -> None:
    """The plain script: masker per run, compute_regressor per feature and run, .npy files."""
    from nilearn.glm.first_level import compute_regressor
    from nilearn.maskers import NiftiLabelsMasker

    folder.mkdir(parents=True, exist_ok=True)
    root = Path(events["study_root"].iloc[0])
    for i, run in enumerate(events[events["type"] == "Fmri"].itertuples()):
        masker = NiftiLabelsMasker(
            labels_img=str(atlas), detrend=True, standardize="zscore_sample", t_r=TR
        )
        y = masker.fit_transform(str(root / run.filepath))
        frame_times = run.start + np.arange(int(round(run.duration / TR))) * TR
        words = events[(events["type"] == "Word") & (events["timeline"] == run.timeline)]
        onsets, durations = words["start"].to_numpy(), words["duration"].to_numpy()
        columns = [np.ones(len(words)), words["text"].str.len().to_numpy(float)]
        x = np.column_stack(
            [
                compute_regressor(np.vstack([onsets, durations, c]), "glover", frame_times)[0][:, 0]
                for c in columns
            ]
        )
        np.save(folder / f"x{i}.npy", x.astype(np.float32))
        np.save(folder / f"y{i}.npy", y.astype(np.float32))


def baseline_epoch(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    n = len(list(folder.glob("x*.npy")))
    x = np.concatenate([np.load(folder / f"x{i}.npy") for i in range(n)])
    y = np.concatenate([np.load(folder / f"y{i}.npy") for i in range(n)])
    return x, y


def ridge_r2(x: np.ndarray, y: np.ndarray, n_train: int) -> np.ndarray:
    from sklearn.linear_model import RidgeCV

    model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x[:n_train], y[:n_train])
    pred = model.predict(x[n_train:])
    test = y[n_train:]
    return np.asarray(1 - ((test - pred) ** 2).sum(0) / ((test - test.mean(0)) ** 2).sum(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import nilearn.glm.first_level  # noqa: F401 - import cost out of the timings
    import nilearn.maskers  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study = SyntheticStudy(
            path=folder / "study", n_subjects=args.subjects, duration=args.duration,
            modalities=("fmri",),
        )  # fmt: skip
        events = study.events()
        atlas, _ = write_parcellation(folder / "atlas")
        times: dict[str, list[float]] = {
            k: [] for k in ("ours", "base", "again", "first", "oe", "be")
        }
        for i in range(args.repeats):
            for side in ("ours", "base") if i % 2 == 0 else ("base", "ours"):
                if side == "ours":
                    dataset, seconds = ours_prepare(events, atlas, Store(folder / f"store{i}"))
                    times["ours"].append(seconds)
                    times["again"].append(ours_prepare(events, atlas, dataset.store)[1])
                    t0 = time.perf_counter()
                    x, y = ours_epoch(dataset)
                    r2 = ridge_r2(x, y, len(x) // 2)
                    times["first"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    x, y = ours_epoch(dataset)
                    r2 = ridge_r2(x, y, len(x) // 2)
                    times["oe"].append(time.perf_counter() - t0)
                else:
                    t0 = time.perf_counter()
                    baseline_prepare(events, atlas, folder / f"base{i}")
                    times["base"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    bx, by = baseline_epoch(folder / f"base{i}")
                    ridge_r2(bx, by, len(bx) // 2)
                    times["be"].append(time.perf_counter() - t0)
        np.testing.assert_allclose(x, bx, rtol=1e-4, atol=1e-5 * np.abs(bx).max())
        np.testing.assert_allclose(y, by, rtol=1e-4, atol=1e-4)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "fmri_encoding",
        "subjects": args.subjects,
        "duration_s": args.duration,
        "frames": int(len(x)),
        "features": int(x.shape[1]),
        "parcels": int(y.shape[1]),
        "repeats": args.repeats,
        "machine": platform.processor() or platform.machine(),
        "prepare": {
            "neuralset_s": round(med["ours"], 3),
            "baseline_s": round(med["base"], 3),
            "ratio": round(med["ours"] / med["base"], 3),
        },
        "prepare_again_s": round(med["again"], 3),
        "first_epoch_s": round(med["first"], 3),
        "epoch": {
            "neuralset_s": round(med["oe"], 3),
            "baseline_s": round(med["be"], 3),
            "ratio": round(med["oe"] / med["be"], 3),
        },
        "r2_response_regions": [round(float(v), 3) for v in r2[:2]],
        "r2_median_elsewhere": round(float(np.median(r2[2:])), 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
