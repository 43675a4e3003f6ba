"""Events and segments toolkit benchmarks (issue 11): labels, splits, text alignment, loaders.

Each figure comes with a baseline measured in the same run, and their ratio:

(a) ``window_labels``: every rule on 1,000,000 sliding windows (10 s, stride 5 s) over 20
    timelines of 30 s sleep stages and random artefacts; baseline: the event-index query the
    labels build on (``segments.overlapping``), and a per-window Python loop timed on 2,000
    windows (extrapolated, marked so).
(b) ``detection``: ``DetectionTarget`` masks (3 classes, 100 Hz) for a batch of 256 windows of
    10 s; baseline: ``Pulse`` painting the same batch.
(c) ``transforms``: transforms on a 1,000,000-row table (20 timelines, words in sentences drawn
    with repeats from a pool of 20,000); baseline: ``validate_events`` of the same table, which
    every transform runs once.
(d) ``loaders``: padding of variable-length batches with and without ``LengthBucketSampler``;
    throughput of ``GrainSource`` (one record per segment) and ``GrainBatchSource`` (one per
    batch) against ``dataset.read`` of the same batches; read-time augmentation overhead.

Prints JSON (medians of ``--repeats`` runs). ``--small`` divides the sizes by 10.

Usage: ``python benchmarks/events_toolkit.py [--small] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def timed(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def sleep_table(n_windows: int, n_timelines: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    span = n_windows / n_timelines * 5.0 + 10.0
    rows = []
    stages = np.array(["W", "N1", "N2", "N3", "REM"])
    for t in range(n_timelines):
        tl = f"night-{t:02d}"
        starts = np.arange(0.0, span, 30.0)
        rows.append(
            pd.DataFrame(
                {
                    "type": "SleepStage",
                    "start": starts,
                    "duration": 30.0,
                    "timeline": tl,
                    "description": stages[rng.integers(0, 5, len(starts))],
                }
            )
        )
        n_art = len(starts) // 3
        rows.append(
            pd.DataFrame(
                {
                    "type": "Artifact",
                    "start": np.sort(rng.uniform(0, span, n_art)),
                    "duration": rng.uniform(0.5, 8.0, n_art),
                    "timeline": tl,
                    "description": np.array(["eye", "muscle"])[rng.integers(0, 2, n_art)],
                }
            )
        )
        rows.append(
            pd.DataFrame(
                {
                    "type": ["Eeg"],
                    "start": [0.0],
                    "duration": [span],
                    "timeline": [tl],
                    "filepath": [f"{tl}.edf"],
                    "frequency": [100.0],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def bench_window_labels(n_windows: int, repeats: int) -> dict[str, Any]:
    from neuralset.events import validate_events
    from neuralset.segments import sliding_windows
    from neuralset.window_labels import window_labels

    events = validate_events(sleep_table(n_windows))
    windows = sliding_windows(events, duration=10.0, stride=5.0, blocks="Eeg")
    windows.index  # noqa: B018 - the index is built once and shared, as in a dataset
    t_query, _ = timed(lambda: windows.overlapping("SleepStage"), repeats)
    out: dict[str, Any] = {
        "n_windows": len(windows),
        "n_events": len(events),
        "overlap_query_s": round(t_query, 4),
    }
    for rule in ("majority", "center", "any", "all", "fraction"):
        t, _ = timed(
            lambda r=rule: window_labels(
                windows, "SleepStage", "description", rule=r, find_uncovered=False
            ),
            repeats,
        )
        out[f"{rule}_s"] = round(t, 4)
        out[f"{rule}_vs_query"] = round(t / t_query, 2)
    sub = windows.select(np.arange(2000))
    stage = events[events["type"] == "SleepStage"]

    def python_loop() -> list[Any]:  # what a per-window loop costs (majority only)
        labels = []
        by_tl = {k: g for k, g in stage.groupby("timeline", observed=True)}
        for s, d, t in zip(sub.start, sub.duration, sub.timeline_names):
            g = by_tl[t]
            cover = (
                np.minimum(g["start"] + g["duration"], s + d) - np.maximum(g["start"], s)
            ).clip(0)
            labels.append(g["description"].to_numpy()[int(np.argmax(cover.to_numpy()))])
        return labels

    t_loop, _ = timed(python_loop, 1)
    out["python_loop_extrapolated_s"] = round(t_loop * len(windows) / len(sub), 2)
    out["python_loop_vs_majority"] = round(t_loop * len(windows) / len(sub) / out["majority_s"], 1)
    return out


def bench_detection(repeats: int) -> dict[str, Any]:
    from neuralset.events import validate_events
    from neuralset.extractors.events import DetectionTarget, Pulse
    from neuralset.segments import sliding_windows
    from neuralset.store import Store

    events = validate_events(sleep_table(20_000, n_timelines=2))
    windows = sliding_windows(events, duration=10.0, stride=5.0, blocks="Eeg").select(
        np.arange(256)
    )
    store = Store(tempfile.mkdtemp())
    target = DetectionTarget(
        event_type="Artifact",
        field="description",
        classes=("eye", "muscle"),
        frequency=100.0,
        background="none",
    )
    pulse = Pulse(event_type="Artifact", frequency=100.0)
    t_target, data = timed(lambda: target.read(windows, store), repeats * 3)
    t_pulse, _ = timed(lambda: pulse.read(windows, store), repeats * 3)
    return {
        "batch": 256,
        "shape": list(data.data.shape),
        "detection_s": round(t_target, 5),
        "pulse_s": round(t_pulse, 5),
        "ratio": round(t_target / t_pulse, 2),
    }


def word_table(n_rows: int, n_timelines: int = 20, pool: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    vocab = np.array([f"w{i}" for i in range(5000)])
    sentences = [
        " ".join(vocab[rng.integers(0, 5000, rng.integers(5, 15))]) + "." for _ in range(pool)
    ]
    per = n_rows // n_timelines
    frames = []
    for t in range(n_timelines):
        words, sent, starts, clock = [], [], [], 0.0
        while len(words) < per:
            text = sentences[int(rng.integers(0, pool))]
            for w in text.split():
                words.append(w)
                sent.append(text)
                starts.append(clock)
                clock += 0.3
            clock += 1.5
        n = per
        frames.append(
            pd.DataFrame(
                {
                    "type": "Word",
                    "start": starts[:n],
                    "duration": 0.25,
                    "timeline": f"sub-{t:02d}",
                    "text": words[:n],
                    "sentence": sent[:n],
                }
            )
        )
        frames.append(
            pd.DataFrame(
                {
                    "type": ["Meg"],
                    "start": [0.0],
                    "duration": [clock],
                    "timeline": [f"sub-{t:02d}"],
                    "filepath": [f"sub-{t:02d}.fif"],
                    "frequency": [1000.0],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def bench_transforms(n_rows: int, repeats: int) -> dict[str, Any]:
    from neuralset.events import (
        AlignRepetitions,
        AlignTranscript,
        KFoldSplits,
        SentencesFromWords,
        SplitChunks,
        StimulusSplits,
        validate_events,
    )

    raw = word_table(n_rows)
    t_validate, events = timed(lambda: validate_events(raw), repeats)
    events = events.assign(subject=events["timeline"].astype(str))
    out: dict[str, Any] = {"n_rows": len(events), "validate_events_s": round(t_validate, 3)}
    steps = {
        "kfold_splits": KFoldSplits(by="subject", n_folds=5),
        "stimulus_splits": StimulusSplits(keys={"Word": "sentence"}),
        "sentences_from_words": SentencesFromWords(max_gap=1.0),
        "align_repetitions": AlignRepetitions(),
    }
    for name, step in steps.items():
        t, result = timed(lambda s=step: s(events), repeats)
        out[f"{name}_s"] = round(t, 3)
        out[f"{name}_vs_validate"] = round(t / t_validate, 2)
        if name == "stimulus_splits":
            split_events = result
    t, _ = timed(lambda: SplitChunks(event_type="Meg")(split_events), repeats)
    out["split_chunks_s"] = round(t, 3)
    out["split_chunks_vs_validate"] = round(t / t_validate, 2)
    # near-duplicates over 5,000 distinct sentences (character n-gram similarity)
    few = validate_events(raw[raw["sentence"].isin(raw["sentence"].drop_duplicates().iloc[:5000])])
    t, _ = timed(
        lambda: StimulusSplits(keys={"Word": "sentence"}, similarity_threshold=0.9)(few), 1
    )
    out["near_duplicates_5000_sentences_s"] = round(t, 3)
    # a transcript of 20,000 words aligned to word events with 2% errors
    one = events[events["timeline"] == "sub-00"].iloc[:20_001]
    words = one[one["type"] == "Word"]
    transcript = " ".join(words["text"].tolist())
    rng = np.random.default_rng(2)
    heard = words["text"].to_numpy(dtype=object).copy()
    heard[rng.choice(len(heard), len(heard) // 50, replace=False)] = "uh"
    table = validate_events(
        pd.concat(
            [
                words.assign(text=heard),
                pd.DataFrame(
                    {
                        "type": ["Text"],
                        "start": [0.0],
                        "duration": [1.0],
                        "timeline": ["sub-00"],
                        "text": [transcript],
                    }
                ),
            ],
            ignore_index=True,
        )
    )
    t, _ = timed(lambda: AlignTranscript(max_unmatched=0.1)(table), 1)
    out["align_transcript_20k_words_s"] = round(t, 3)
    t_val_small, _ = timed(lambda: validate_events(table), repeats)
    out["align_transcript_vs_validate"] = round(t / t_val_small, 1)
    return out


def bench_loaders(repeats: int) -> dict[str, Any]:
    from neuralset.config import config
    from neuralset.events import validate_events
    from neuralset.extractors.recording import RecordingExtractor
    from neuralset.loaders import GrainBatchSource, GrainSource, LengthBucketSampler, SegmentDataset
    from neuralset.segments import segment_on_triggers
    from neuralset.store import Store

    rng = np.random.default_rng(3)
    durations = rng.gamma(4.0, 0.8, 20_000)  # sentence-like durations (s)
    bucket = LengthBucketSampler(durations, 32, pool_batches=50).padding_fraction()
    shuffled = LengthBucketSampler(durations, 32, pool_batches=1).padding_fraction()
    out: dict[str, Any] = {
        "padding_fraction_bucketed": round(bucket, 4),
        "padding_fraction_shuffled": round(shuffled, 4),
    }

    @config
    class NpyRecording(RecordingExtractor):
        default_event_type = "Meg"

        def compute_recording(
            self, payload: dict[str, Any]
        ) -> tuple[np.ndarray, float, dict[str, Any]]:
            return np.load(payload["path"]), 100.0, {}

    root = Path(tempfile.mkdtemp())
    rows = []
    for k in range(4):
        np.save(root / f"r{k}.npy", rng.standard_normal((100 * 600, 64)).astype(np.float32))
        rows.append(
            dict(
                type="Meg",
                start=0.0,
                duration=600.0,
                timeline=f"s{k}",
                filepath=f"r{k}.npy",
                frequency=100.0,
            )
        )
        rows += [
            dict(type="Word", start=float(t), duration=0.2, timeline=f"s{k}", text="w")
            for t in np.arange(1.0, 598.0, 0.5)
        ]
    events = validate_events(pd.DataFrame(rows).assign(study_root=str(root)))
    segments = segment_on_triggers(events, "Word", offset=0.0, duration=1.0).require("Meg")
    extractor = NpyRecording(frequency=100.0)
    ds = SegmentDataset(segments, {"meg": extractor}, Store(root / "store"))
    ds.prepare(progress=False)
    order = np.random.default_rng(0).permutation(len(ds))[: 32 * 40]
    batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    src = GrainSource(ds)
    bsrc = GrainBatchSource(ds, 32, seed=0)
    own = bsrc.sampler.batch_indices(0)[: len(batches)]  # the batch source's own batches
    aug = SegmentDataset(
        segments,
        {"meg": extractor},
        ds.store,
        augment={"meg": lambda d, r: d + r.standard_normal(d.shape, dtype=np.float32)},
    )
    runs: dict[str, list[float]] = {"read": [], "record": [], "batch": [], "own": [], "aug": []}
    for b in [*batches, *own]:  # warm the page cache for every reader
        ds.read(b)
    for _ in range(repeats):  # alternate the readers, so that load drifts affect them alike
        for name, fn in (
            ("read", lambda: [ds.read(b) for b in batches]),
            ("record", lambda: [[src[int(i)] for i in b] for b in batches]),
            ("batch", lambda: [bsrc[k] for k in range(len(batches))]),
            ("own", lambda: [ds.read(b) for b in own]),
            ("aug", lambda: [aug.read(b, epoch=0) for b in batches]),
        ):
            runs[name].append(timed(fn, 1)[0])
    t_read, t_record, t_batch, t_own, t_aug = (statistics.median(runs[k]) for k in runs)
    n = len(order)
    out.update(
        {
            "segments_per_s_read": round(n / t_read),
            "segments_per_s_grain_record": round(n / t_record),
            "segments_per_s_grain_batch": round(n / t_batch),
            "grain_record_vs_read": round(t_record / t_read, 2),
            "grain_batch_vs_read_of_the_same_batches": round(t_batch / t_own, 2),
            "augment_vs_read": round(t_aug / t_read, 2),
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scale = 10 if args.small else 1
    report = {
        "window_labels": bench_window_labels(1_000_000 // scale, args.repeats),
        "detection": bench_detection(args.repeats),
        "transforms": bench_transforms(1_000_000 // scale, args.repeats),
        "loaders": bench_loaders(args.repeats),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
