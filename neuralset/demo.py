"""``neuralset demo``: the whole pipeline on the built-in synthetic study, in well under a minute.

Steps (each timed): write the synthetic study (real FIF files, 2 subjects x 60 s of 32-channel
MEG at 1 kHz), build and cache its events, segment on word onsets (-0.2 .. 0.6 s, requiring
Meg), prepare the MEG extractor (band-pass 0.5-40 Hz, resample to 100 Hz, baseline -0.2..0 s)
with a progress bar, iterate one epoch through a torch DataLoader and one through the JAX
iterator, print a summary and save a PNG of one timeline's events with one segment's MEG
window.

Where it writes: ``--cache`` if given, else ``$NEURALSET_CACHE/demo`` if that variable is set,
else ``./neuralset-demo`` in the current folder. Nothing is written in the home folder. A
second run reuses the study files, the events table and the preprocessed recordings (and says
so: "0 computed").

Usage: ``neuralset demo [--cache DIR] [--subjects 2] [--duration 60] [--no-torch] [--no-jax]``
or ``python -m neuralset.demo``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["main", "default_demo_root"]


def default_demo_root() -> Path:
    """``$NEURALSET_CACHE/demo`` if ``NEURALSET_CACHE`` is set, else ``./neuralset-demo``."""
    env = os.environ.get("NEURALSET_CACHE")
    return Path(env).expanduser() / "demo" if env else Path("neuralset-demo")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralset demo",
        description="Run the whole neuralset pipeline on a small synthetic MEG study.",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder for the study files, the store and the plot "
        "(default: $NEURALSET_CACHE/demo, else ./neuralset-demo)",
    )
    parser.add_argument("--subjects", type=int, default=2, help="number of subjects (default 2)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds per recording (default 60)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch DataLoader epoch")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX iterator epoch")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


class _Timer:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.stages[name] = time.perf_counter() - t0


def _human(nbytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the process exit code (0 on success)."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    from .extractors.neural.mne.meeg import MegExtractor
    from .loaders import SegmentDataset
    from .segments import TriggerSegmenter
    from .store import Store
    from .synthetic import SyntheticStudy

    root = (args.cache if args.cache is not None else default_demo_root()).expanduser().resolve()
    out = print
    timer = _Timer()
    out(f"neuralset demo: writing under {root}")

    study = SyntheticStudy(
        path=root / "study",
        n_subjects=args.subjects,
        duration=args.duration,
        meg_channels=32,
        meg_sfreq=1000.0,
        modalities=("meg",),
    )
    store = Store(root / "store")
    had_files = (root / "study").exists() and any((root / "study").rglob("*.fif"))
    with timer.stage("study + events"):
        events = study.events(store)
    out(
        f"study: {'reusing cached' if had_files else 'wrote'} {args.subjects} subjects x "
        f"{args.duration:g} s of MEG ({study.meg_channels} channels at {study.meg_sfreq:g} Hz) "
        f"in {root / 'study'}"
    )
    counts = events["type"].value_counts()
    out("events: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items() if v))

    with timer.stage("segments"):
        segmenter = TriggerSegmenter(triggers="Word", offset=-0.2, duration=0.8, require=("Meg",))
        segments = segmenter(events)
    out(f"segments: {len(segments)} windows of 0.8 s (-0.2 .. 0.6 s around each word)")

    meg = MegExtractor(filter=(0.5, 40.0), frequency=100.0, baseline=(-0.2, 0.0))
    dataset = SegmentDataset(segments, {"meg": meg}, store)
    with timer.stage("prepare"):
        report = dataset.prepare(progress=not args.quiet)["meg"]
    if report.computed == 0:
        out(f"prepare: reusing cached MEG preprocessing ({report.cached} recordings, 0 computed)")
    else:
        out(
            f"prepare: {report.computed} computed, {report.cached} reused (band-pass 0.5-40 Hz, 100 Hz)"
        )

    shapes: dict[str, str] = {}
    if not args.no_torch:
        with timer.stage("torch epoch"):
            n_seen = 0
            for batch in dataset.loader(batch_size=args.batch_size, shuffle=True, num_workers=0):
                if not shapes.get("torch"):
                    shapes["torch"] = (
                        f"{tuple(batch['meg'].shape)} {str(batch['meg'].dtype).replace('torch.', '')}"
                    )
                n_seen += batch.size
        out(
            f"torch: one epoch, {n_seen} segments, batch['meg'] {shapes['torch']} (batch, channels, time)"
        )
    if not args.no_jax:
        from .loaders import JaxBatchIterator

        with timer.stage("jax epoch"):
            n_seen = 0
            for jbatch in JaxBatchIterator(dataset, args.batch_size, seed=0):
                if not shapes.get("jax"):
                    shapes["jax"] = f"{tuple(jbatch['meg'].shape)} {jbatch['meg'].dtype}"
                n_seen += jbatch.size
        out(f"jax: one epoch, {n_seen} segments, batch['meg'] {shapes['jax']}")

    png = root / "demo.png"
    if not args.no_plot:
        with timer.stage("plot"):
            _plot(events, dataset, png)
        out(f"plot: {png}")
    out(
        f"cache: store {_human(store.size_bytes())} ({len(store.entries())} entries) in {store.root}; "
        f"study files {_human(_folder_size(root / 'study'))}"
    )
    out("time per stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in timer.stages.items()))
    return 0


def _plot(events: Any, dataset: Any, path: Path) -> None:
    """One timeline's events (one row per type) and the MEG window of one of its segments."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    segments = dataset.segments
    tl_code = int(segments.timeline[0])
    tl_name = str(events["timeline"].cat.categories[tl_code])
    ev = events[events["timeline"] == tl_name]
    pick = int(
        np.flatnonzero(segments.timeline == tl_code)[
            min(10, int((segments.timeline == tl_code).sum()) - 1)
        ]
    )
    batch = dataset.read([pick])
    window = batch["data"]["meg"][0]  # (channels, time)
    seg_start = float(segments.start[pick])
    seg_stop = seg_start + float(segments.duration[pick])
    types = [str(t) for t in ev["type"].cat.categories if (ev["type"] == t).any()]

    fig, (ax_ev, ax_meg) = plt.subplots(2, 1, figsize=(10, 6), constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for k, name in enumerate(types):
        rows = ev[ev["type"] == name]
        spans = list(zip(rows["start"].to_numpy(), np.maximum(rows["duration"].to_numpy(), 0.02)))
        ax_ev.broken_barh(spans, (k - 0.4, 0.8), facecolors=colors(k % 10))
    ax_ev.axvspan(seg_start, seg_stop, color="k", alpha=0.15, label=f"segment {pick}")
    ax_ev.set_yticks(range(len(types)), types)
    ax_ev.set_xlabel("time on the timeline (s)")
    ax_ev.set_title(f"events of timeline {tl_name}")
    ax_ev.legend(loc="upper right")
    trigger_start = float(events["start"].to_numpy()[segments.trigger[pick]])
    times = (
        seg_start
        - trigger_start
        + np.arange(window.shape[-1]) / float(dataset.extractors["meg"].frequency)
    )
    for c in range(min(8, window.shape[0])):
        ax_meg.plot(times, 0.45 * window[c] / (np.abs(window[c]).max() or 1.0) + c, lw=0.8)
    ax_meg.axvline(0.0, color="k", ls="--", lw=0.8)
    ax_meg.set_xlabel("time from word onset (s)")
    ax_meg.set_ylabel("channel (each scaled to its max)")
    ax_meg.set_title(f"segment {pick}: MEG (0.5-40 Hz, 100 Hz), first 8 channels")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
