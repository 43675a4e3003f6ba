"""Shared set-up of the examples: the synthetic study, its events, segments and dataset.

The task: from 0.2 s of MEG, tell whether a word started at the beginning of the window
(label ``"word"``) or not (label ``"none"``, windows starting half-way between two words). The
synthetic study's MEG sensors respond to every word with a bump peaking 0.1 s after its onset
(the same bump for every word), so this is decodable, while the word's category is not.

Train on one subject, validate on the other (splits assigned by timeline).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuralset.events import AssignSplits, validate_events
from neuralset.extractors.events import LabelEncoder
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.loaders import SegmentDataset
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy

WINDOW = 0.2  # seconds of MEG per example
FREQUENCY = 100.0  # Hz after resampling


def parser(description: str) -> argparse.ArgumentParser:
    """Command-line options shared by the examples."""
    default_root = (
        Path(os.environ["NEURALSET_CACHE"]) / "examples"
        if "NEURALSET_CACHE" in os.environ
        else Path("neuralset-demo") / "examples"
    )
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--cache",
        type=Path,
        default=default_root,
        help=f"where the study files and the store go (default {default_root})",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of MEG per subject")
    p.add_argument(
        "--quick", action="store_true", help="tiny setting for tests: 20 s per subject, 3 epochs"
    )
    return p


def with_blanks(events: pd.DataFrame) -> pd.DataFrame:
    """Add a ``"none"`` Stimulus half-way between consecutive words; label every Stimulus.

    Pure: returns a new validated table with a ``label`` column (``"word"`` or ``"none"``).
    """
    stim = events[events["type"] == "Stimulus"].sort_values(["timeline", "start"])
    following = stim.groupby("timeline", observed=True)["start"].shift(-1)
    has_next = following.notna()
    midpoints = (stim["start"][has_next] + following[has_next]) / 2
    blanks = stim[has_next].assign(start=midpoints, code=0, description="none")
    labelled = events.assign(label=(events["type"] == "Stimulus").map({True: "word", False: None}))
    return validate_events(pd.concat([labelled, blanks.assign(label="none")], ignore_index=True))


def build(cache: Path, duration: float) -> tuple[SegmentDataset, SegmentDataset, tuple[str, ...]]:
    """Train and validation datasets (prepared) and the label vocabulary."""
    cache = cache.expanduser().resolve()
    store = Store(cache / "store")
    study = SyntheticStudy(path=cache / f"study-{duration:g}s", n_subjects=2, duration=duration)
    events = study.events(store)  # writes the FIF files on first use, then cached
    events = AssignSplits(by="timeline", ratios=(0.5, 0.5), names=("train", "val"))(
        with_blanks(events)
    )

    segments = segment_on_triggers(events, "Stimulus", duration=WINDOW).require("Meg")
    extractors: dict[str, Any] = {
        "meg": MegExtractor(frequency=FREQUENCY, filter=(0.5, 40.0), scaling="standard"),
        "label": LabelEncoder(event_type="Stimulus", field="label"),
    }
    # split() raises, listing the splits present, rather than return an empty selection
    train = SegmentDataset(segments.split("train"), extractors, store)
    val = SegmentDataset(segments.split("val"), extractors, store)
    # prepares on the whole events table (both splits); a second run computes nothing
    train.prepare(progress=False)
    vocabulary = extractors["label"].vocabulary(events, store)
    return train, val, vocabulary


def sizes(dataset: SegmentDataset) -> tuple[int, int]:
    """(channels, time samples) of the MEG windows."""
    batch = dataset.read(np.arange(1))
    _, channels, times = batch["data"]["meg"].shape
    return int(channels), int(times)


def setup(
    doc: str,
) -> tuple[int, SegmentDataset, SegmentDataset, tuple[str, ...], tuple[int, int]]:
    """Parse the command line (``doc``: the script's docstring), build and prepare the datasets.

    Returns the number of epochs, the train and validation datasets, the label vocabulary and
    the (channels, time samples) of a window; prints their sizes.
    """
    args = parser(doc.splitlines()[0]).parse_args()
    duration, epochs = (20.0, 3) if args.quick else (args.duration, args.epochs)
    t0 = time.perf_counter()
    train, val, vocabulary = build(args.cache, duration)
    channels, times = sizes(train)
    print(
        f"{len(train)} training and {len(val)} validation windows of {channels} channels x "
        f"{times} samples; labels {vocabulary} (prepared in {time.perf_counter() - t0:.1f} s)"
    )
    return epochs, train, val, vocabulary, (channels, times)
