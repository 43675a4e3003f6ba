"""An fMRI encoding model on the synthetic study: word features -> HRF -> ridge, per parcel.

The synthetic fMRI runs respond to every word (a boxcar convolved with the SPM HRF) in two
regions (left superior temporal, occipital); elsewhere they are noise. The script

1. writes the study (two subjects) and a parcellation of its grid (the two regions + boxes);
2. describes the stimulus with three word features (a word indicator, its length, its
   frequency), convolves them with nilearn's Glover HRF on the fMRI frame grid (``HrfConvolve``)
   and reads the BOLD signal per parcel (``FmriExtractor(projection="atlas")``), one segment
   per fMRI frame;
3. fits a ridge regression (scikit-learn ``RidgeCV``) on subject 1 and scores each parcel's R^2
   on subject 2;
4. maps the R^2 back to the brain with ``inverse_transform`` and saves it as a PNG
   (``nilearn.plotting.plot_stat_map``, matplotlib's Agg backend).

Usage: ``python examples/fmri_encoding.py [--duration 300] [--cache DIR] [--out map.png]``;
``--quick`` is the small setting of the tests (120 s per subject).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from neuralset.events import AssignSplits
from neuralset.extractors.events import Pulse
from neuralset.extractors.meta import Concat, HrfConvolve
from neuralset.extractors.neural import FmriExtractor
from neuralset.extractors.stimulus import WordFrequency, WordLength
from neuralset.loaders import SegmentDataset
from neuralset.segments import sliding_windows
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy
from neuralset.synthetic.fmri import TR, write_parcellation


def parse() -> argparse.Namespace:
    default = (
        Path(os.environ["NEURALSET_CACHE"]) / "examples"
        if "NEURALSET_CACHE" in os.environ
        else Path("neuralset-demo") / "examples"
    )
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--cache", type=Path, default=default, help=f"study and store (default {default})"
    )
    p.add_argument("--duration", type=float, default=300.0, help="seconds of fMRI per subject")
    p.add_argument(
        "--out", type=Path, default=None, help="PNG of the R^2 map (default: in --cache)"
    )
    p.add_argument(
        "--quick", action="store_true", help="small setting for tests: 120 s per subject"
    )
    return p.parse_args()


def main() -> None:
    args = parse()
    duration = 120.0 if args.quick else args.duration
    cache = args.cache.expanduser().resolve()
    study = SyntheticStudy(
        path=cache / f"fmri-study-{duration:g}s", n_subjects=2, duration=duration,
        modalities=("fmri",),
    )  # fmt: skip
    store = Store(cache / "store")
    events = AssignSplits(by="timeline", ratios=(0.5, 0.5), names=("train", "test"))(
        study.events(store)
    )
    atlas, names = write_parcellation(cache / "parcellation")

    word = dict(output="static", aggregation="trigger")
    features = HrfConvolve(
        extractor=Concat(
            extractors=(
                Pulse(event_type="Word", **word),  # 1 per word: the word indicator
                WordLength(**word),
                WordFrequency(**word),
            )
        ),
        hrf="glover",
        frequency=1 / TR,
        output="static",
    )
    bold = FmriExtractor(
        projection="atlas", atlas=atlas, region_names=names, detrend=True,
        standardize="zscore_sample", frequency=1 / TR, output="static",
    )  # fmt: skip
    frames = sliding_windows(events, duration=TR, stride=TR, blocks="Fmri")  # one per volume
    dataset = SegmentDataset(frames, {"features": features, "bold": bold}, store)
    t0 = time.perf_counter()
    dataset.prepare(progress=False)
    prepared = time.perf_counter() - t0
    data = dataset.read(np.arange(len(dataset)))["data"]
    x, y = data["features"], data["bold"]
    split = events["split"].astype(str).to_numpy()
    fmri_rows = np.flatnonzero((events["type"] == "Fmri").to_numpy())
    train_tl = {int(events["timeline"].cat.codes.iloc[r]) for r in fmri_rows if split[r] == "train"}
    train = np.isin(frames.timeline, list(train_tl))

    from sklearn.linear_model import RidgeCV

    model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(x[train], y[train])
    pred = model.predict(x[~train])
    resid = ((y[~train] - pred) ** 2).sum(0)
    total = ((y[~train] - y[~train].mean(0)) ** 2).sum(0)
    r2 = 1 - resid / total

    space = bold.space(events, store)
    print(f"{len(frames)} frames ({int(train.sum())} train, {int((~train).sum())} test); "
          f"{x.shape[1]} features, {y.shape[1]} parcels; prepared in {prepared:.1f} s")  # fmt: skip
    for name, score in sorted(zip(space.region_names, r2), key=lambda p: -p[1])[:4]:
        print(f"R^2 {name}: {score:.3f}")
    others = [s for n, s in zip(space.region_names, r2) if n.startswith("box")]
    print(f"median R^2 elsewhere: {np.median(others):.3f}")

    out = args.out or cache / "fmri_encoding.png"
    save_map(bold.inverse_transform(r2, events, store), out)
    print(f"R^2 map: {out}")


def save_map(image: object, out: Path) -> None:
    """The R^2 map on the MNI152 template, as a PNG (matplotlib's Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    out.parent.mkdir(parents=True, exist_ok=True)
    display = plotting.plot_stat_map(
        image, threshold=0.1, vmax=1.0, cut_coords=(-56, -24, 4), title="test R^2 per parcel",
        cmap="hot",
    )  # fmt: skip
    display.savefig(str(out), dpi=80)
    display.close()
    plt.close("all")


if __name__ == "__main__":
    main()
