"""Segmenting benchmarks (metadata only; no signal is read).

(a) ``million``: 1,000,000 trigger segments over 2,000,000 events (Words and Phonemes on 20
    timelines): time of :func:`neuralset.segment_on_triggers` and peak RSS of the process that
    builds, validates and segments them (run in a fresh subprocess); also the time of
    :func:`neuralset.validate_events` on the 2,000,000-row table. Targets: < 2 s, < 1 GB.
(b) ``words18k``: 18 timelines, each a Stimulus over 0-600 s, 1,000 Words of 0.01 s separated by
    gaps uniform in 0.3-0.7 s, 2-6 Phonemes per word and a Sentence every 15 words; one 2.0 s
    segment per word requiring the Stimulus; then listing the events of all segments (every
    overlapping (segment, event) pair of every type). Target < 0.1 s for the listing.
(c) ``require_scaling``: dropping incomplete segments (``segments.require("Stimulus")``) for N
    and 10 N segments; the time ratio should be near 10 (linear, not quadratic). The one-off
    build of the event index (a sort of the events, shared by every query) is timed apart.

Prints JSON (medians of ``--repeats`` runs). ``--small`` divides the sizes by 10.

Usage: ``python benchmarks/segments.py [--small] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
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


def million_table(n_events: int, n_timelines: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    half = n_events // 2
    per = half // n_timelines
    onsets = np.cumsum(rng.uniform(0.2, 0.4, size=(n_timelines, per)), axis=1).ravel()
    tl = np.repeat(np.array([f"sub-{i:02d}" for i in range(n_timelines)]), per)
    vocab = pd.Categorical.from_codes(
        rng.integers(0, 8, size=half), ["the", "cat", "sat", "on", "a", "mat", "and", "dog"]
    )
    words = pd.DataFrame(
        {"type": "Word", "start": onsets, "duration": 0.1, "timeline": tl, "text": vocab}
    )
    phon = words.assign(type="Phoneme", start=onsets + 0.05, duration=0.04)
    table = pd.concat([words, phon], ignore_index=True)
    table["text"] = table["text"].astype(str)
    return table


def child_million(n_events: int, repeats: int) -> dict[str, Any]:
    from neuralset import segment_on_triggers, validate_events

    raw = million_table(n_events)
    t_validate, events = timed(lambda: validate_events(raw), max(1, repeats // 2))
    raw = None  # free the raw table before segmenting
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t_seg, segs = timed(
        lambda: segment_on_triggers(events, "Word", offset=-0.2, duration=0.8), repeats
    )
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_events": len(events),
        "n_segments": len(segs),
        "validate_s": round(t_validate, 4),
        "segment_s": round(t_seg, 4),
        "peak_rss_mb": round(rss_peak, 1),
        "peak_rss_before_segmenting_mb": round(rss_before, 1),
        "target": "segment_s < 2 and peak_rss_mb < 1024",
        "ok": t_seg < 2 and rss_peak < 1024,
    }


def words_table(n_timelines: int, n_words: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_timelines):
        tl = f"sub-{k:02d}"
        onsets = 0.5 + np.concatenate([[0.0], np.cumsum(rng.uniform(0.3, 0.7, size=n_words - 1))])
        n_ph = rng.integers(2, 7, size=n_words)
        ph_word = np.repeat(np.arange(n_words), n_ph)
        ph_rank = np.arange(n_ph.sum()) - np.repeat(np.cumsum(n_ph) - n_ph, n_ph)
        ph_start = onsets[ph_word] + 0.05 * ph_rank
        sent_first = np.arange(0, n_words, 15)
        sent_last = np.minimum(sent_first + 14, n_words - 1)
        frames += [
            pd.DataFrame(
                {"type": "Stimulus", "start": [0.0], "duration": [600.0], "timeline": tl, "code": 1}
            ),
            pd.DataFrame(
                {"type": "Word", "start": onsets, "duration": 0.01, "timeline": tl, "text": "w"}
            ),
            pd.DataFrame(
                {
                    "type": "Phoneme",
                    "start": ph_start,
                    "duration": 0.04,
                    "timeline": tl,
                    "text": "p",
                }
            ),
            pd.DataFrame(
                {
                    "type": "Sentence",
                    "start": onsets[sent_first],
                    "duration": onsets[sent_last] + 0.01 - onsets[sent_first],
                    "timeline": tl,
                    "text": "s",
                }
            ),
        ]
    return pd.concat(frames, ignore_index=True)


def unindexed(segments: Any) -> Any:
    """The same segments without their event index (the next query builds a new one)."""
    from neuralset import Segments

    return Segments(
        events=segments.events,
        start=segments.start,
        duration=segments.duration,
        timeline=segments.timeline,
        trigger=segments.trigger,
    )


def words18k(scale: float, repeats: int) -> dict[str, Any]:
    from neuralset import segment_on_triggers, validate_events

    events = validate_events(words_table(18, int(1000 * scale)))

    def segment() -> Any:
        return segment_on_triggers(events, "Word", duration=2.0).require("Stimulus")

    t_seg, segs = timed(segment, repeats)

    def listing() -> int:
        fresh = unindexed(segs)  # index rebuilt: counted in the time
        total = 0
        for name in fresh.index.types:
            seg, rows = fresh.overlapping(str(name))
            total += len(seg)
        return total

    t_list, pairs = timed(listing, repeats)
    return {
        "n_events": len(events),
        "n_segments": len(segs),
        "segment_and_require_s": round(t_seg, 4),
        "list_events_s": round(t_list, 4),
        "n_pairs": int(pairs),
        "target": "list_events_s < 0.1",
        "ok": t_list < 0.1,
    }


def require_scaling(n: int, repeats: int) -> dict[str, Any]:
    from neuralset import segment_on_triggers, validate_events

    out: dict[str, Any] = {}
    for size in (n, 10 * n):
        n_tl = max(1, size // 1000)
        table = words_table(n_tl, size // n_tl, seed=1)
        # the Stimulus covers only the first 250 s: about half the segments are incomplete
        table.loc[table["type"] == "Stimulus", "duration"] = 250.0
        events = validate_events(table)
        base = segment_on_triggers(events, "Word", duration=2.0)

        def build_index(base: Any = base) -> Any:
            return unindexed(base).index

        t_index, _ = timed(build_index, max(1, repeats // 2))
        base.index  # noqa: B018 - built once, shared; the drop itself is what scales
        t, kept = timed(lambda base=base: base.require("Stimulus"), repeats)
        out[str(len(base))] = {
            "n_events": len(events),
            "require_s": round(t, 5),
            "index_build_s": round(t_index, 4),
            "kept": len(kept),
        }
    a, b = (v["require_s"] for v in out.values())
    ratio = b / a if a else float("nan")
    ia, ib = (v["index_build_s"] for v in out.values())
    return {
        "sizes": out,
        "ratio_10x": round(ratio, 2),
        "index_build_ratio_10x": round(ib / ia, 2) if ia else None,
        "target": "ratio near 10 (linear); the one-off index build is a sort (n log n)",
        "ok": ratio < 15,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="sizes / 10")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child-million", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_million:
        print(json.dumps(child_million(args.child_million, args.repeats)))
        return
    n_events = 200_000 if args.small else 2_000_000
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-million",
            str(n_events),
            "--repeats",
            str(args.repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = {
        "benchmark": "segments",
        "small": args.small,
        "repeats": args.repeats,
        "million": json.loads(proc.stdout.strip().splitlines()[-1]),
        "words18k": words18k(0.1 if args.small else 1.0, args.repeats),
        "require_scaling": require_scaling(10_000 if args.small else 100_000, args.repeats),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
