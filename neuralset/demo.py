"""``neuralset demo``: the whole pipeline on the built-in synthetic study, in well under a minute.

Steps (each timed): write the synthetic study (real FIF files, 2 subjects x 60 s of 32-channel
MEG at 1 kHz), build and cache its events, segment on word onsets (-0.2 .. 0.6 s, requiring
Meg), prepare the MEG extractor (band-pass 0.5-40 Hz, resample to 100 Hz, baseline -0.2..0 s)
with a progress bar, iterate one epoch through a torch DataLoader and one through the JAX
iterator, print a summary and save the pictures (:func:`write_figures`): ``demo.png``, the
average MEG over all word windows with the neighbouring word onsets, and one PNG per
:mod:`neuralset.plotting` function.

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

__all__ = ["main", "default_demo_root", "write_figures", "FIGURES"]


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
    parser.add_argument(
        "--subjects", type=_at_least(int, 1), default=2, help="number of subjects (default 2)"
    )
    parser.add_argument(
        "--duration",
        type=_at_least(float, 5),
        default=60.0,
        help="seconds per recording, at least 5 (default 60)",
    )
    parser.add_argument(
        "--batch-size", type=_at_least(int, 1), default=32, help="segments per batch (default 32)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the torch DataLoader epoch")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX iterator epoch")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _at_least(cast: type[float], minimum: float) -> Any:
    """An argparse ``type``: ``cast(text)``, refused (exit 2, naming the option) below ``minimum``.

    Checked before anything is written, rather than failing later inside the study or loader.
    """

    def parse(text: str) -> float:
        what = "an integer" if cast is int else "a number"
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value >= minimum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {what} >= {minimum:g}, got {text}")
        return value

    return parse


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
    root = (args.cache if args.cache is not None else default_demo_root()).expanduser().resolve()
    timer = _Timer()
    print(f"neuralset demo: writing under {root}")
    events, store, dataset = _prepared_dataset(args, root, timer)
    _epochs(args, dataset, timer)
    if not args.no_plot:
        with timer.stage("plot"):
            paths = write_figures(events, dataset, root)
        print(
            f"plot: {paths['demo']} (and {', '.join(p.name for n, p in paths.items() if n != 'demo')})"
        )
    print(
        f"cache: store {_human(store.size_bytes())} ({len(store.entries())} entries) in {store.root}; "
        f"study files {_human(_folder_size(root / 'study'))}"
    )
    print("time per stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in timer.stages.items()))
    return 0


def _prepared_dataset(args: argparse.Namespace, root: Path, timer: _Timer) -> tuple[Any, Any, Any]:
    """The synthetic study (written once), its events, segments around words and the prepared
    MEG dataset: ``(events, store, dataset)``."""
    from .extractors.neural.mne.meeg import MegExtractor
    from .loaders import SegmentDataset
    from .segments import TriggerSegmenter
    from .store import Store
    from .synthetic import SyntheticStudy

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
    print(
        f"study: {'reusing cached' if had_files else 'wrote'} {args.subjects} subjects x "
        f"{args.duration:g} s of MEG ({study.meg_channels} channels at {study.meg_sfreq:g} Hz) "
        f"in {root / 'study'}"
    )
    counts = events["type"].value_counts()
    print("events: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items() if v))
    with timer.stage("segments"):
        segmenter = TriggerSegmenter(triggers="Word", offset=-0.2, duration=0.8, require=("Meg",))
        segments = segmenter(events)
    print(f"segments: {len(segments)} windows of 0.8 s (-0.2 .. 0.6 s around each word)")
    meg = MegExtractor(filter=(0.5, 40.0), frequency=100.0, baseline=(-0.2, 0.0))
    dataset = SegmentDataset(segments, {"meg": meg}, store)
    with timer.stage("prepare"):
        report = dataset.prepare(progress=not args.quiet)["meg"]
    if report.computed == 0:
        print(f"prepare: reusing cached MEG preprocessing ({report.cached} recordings, 0 computed)")
    else:
        print(
            f"prepare: {report.computed} computed, {report.cached} reused (band-pass 0.5-40 Hz, 100 Hz)"
        )
    return events, store, dataset


def _epochs(args: argparse.Namespace, dataset: Any, timer: _Timer) -> None:
    """One epoch through the torch DataLoader and one through the JAX iterator (unless skipped)."""
    if not args.no_torch:
        with timer.stage("torch epoch"):
            n_seen, shape = 0, ""
            for batch in dataset.loader(batch_size=args.batch_size, shuffle=True, num_workers=0):
                shape = shape or (
                    f"{tuple(batch['meg'].shape)} {str(batch['meg'].dtype).replace('torch.', '')}"
                )
                n_seen += batch.size
        print(f"torch: one epoch, {n_seen} segments, batch['meg'] {shape} (batch, channels, time)")
    if not args.no_jax:
        from .loaders import JaxBatchIterator

        with timer.stage("jax epoch"):
            n_seen, shape = 0, ""
            for jbatch in JaxBatchIterator(dataset, args.batch_size, seed=0):
                shape = shape or f"{tuple(jbatch['meg'].shape)} {jbatch['meg'].dtype}"
                n_seen += jbatch.size
        print(f"jax: one epoch, {n_seen} segments, batch['meg'] {shape}")


#: the pictures the demo writes next to ``demo.png`` (name -> what it shows)
FIGURES = {
    "demo": "average MEG over all word windows, with the neighbouring word onsets",
    "events": "plot_events: the events of each timeline",
    "study": "plot_study: subjects x runs, recorded minutes and word counts",
    "overlap": "plot_overlap: which event types co-occur",
    "batch": "plot_batch: one segment of a batch, channels x time",
    "average": "plot_average: the average per word category, with confidence bands",
}


def write_figures(events: Any, dataset: Any, folder: Path) -> dict[str, Path]:
    """Write the demo's pictures (:data:`FIGURES`) as PNG files in ``folder``; return their paths.

    ``demo.png`` is the average over all windows of the four channels with the largest
    response (named), with a histogram of the neighbouring words' onsets; the others are one
    picture per :mod:`neuralset.plotting` function.
    """
    import numpy as np

    from .plotting import plot_average, plot_batch, plot_events, plot_overlap, plot_study

    segments = dataset.segments
    trigger_onset = segments.events["start"].to_numpy()[segments.trigger]
    stim = segments.index.covering(segments.timeline, trigger_onset, trigger_onset, "Stimulus")
    category = np.where(
        stim >= 0,
        segments.events["description"].astype(object).to_numpy()[np.maximum(stim, 0)],
        None,
    )
    figures = {
        "demo": plot_average(dataset, by=None, name="meg", max_channels=4, mark="Word"),
        "events": plot_events(events, max_timelines=2, span=(0.0, 20.0)),
        "study": plot_study(events, count="Word"),
        "overlap": plot_overlap(events),
        "batch": plot_batch(dataset.read([0, 1, 2, 3]), "meg", index=2, dataset=dataset),
        "average": plot_average(dataset, by=category, name="meg", max_channels=2),
    }
    figures["demo"].suptitle(
        f"neuralset demo: average MEG over all {len(dataset)} word windows (95% band); "
        "grey: onsets of the neighbouring words"
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figures.items():
        path = folder / ("demo.png" if name == "demo" else f"demo-{name}.png")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
        paths[name] = path
    return paths


if __name__ == "__main__":
    sys.exit(main())
