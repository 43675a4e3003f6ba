"""Spike binning: vectorised :func:`neuralset.extractors.neural.spikes.bin_spikes` against a per-unit loop.

Default size (issue 5): 1,000 units x 1 hour at ~5 Hz (about 18 million spikes), binned at
100 Hz (360,000 bins). The baseline is the natural per-unit loop with :func:`numpy.histogram`
(uniform bins, its fast path) writing each unit's column of the same ``(time, units)`` float32
array. Both results are checked equal. Prints JSON: medians of ``--repeats`` interleaved warm
runs, plus each one's first (cold) call, which also pays the page faults of fresh memory.

Usage: ``python benchmarks/spikes.py [--units 1000] [--hours 1] [--rate 5] [--frequency 100]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from neuralset.extractors.neural.spikes import bin_spikes


def per_unit_loop(
    times: np.ndarray, index: np.ndarray, start: float, frequency: float, n_bins: int
) -> np.ndarray:
    out = np.zeros((n_bins, len(index)), dtype=np.float32)
    begins = np.concatenate([[0], index[:-1]])
    stop = start + n_bins / frequency
    for u, (b, e) in enumerate(zip(begins, index)):
        out[:, u] = np.histogram(times[b:e], bins=n_bins, range=(start, stop))[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=5.0, help="mean firing rate (Hz)")
    parser.add_argument("--frequency", type=float, default=100.0, help="bin frequency (Hz)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    duration = args.hours * 3600.0
    rates = rng.gamma(2.0, args.rate / 2.0, size=args.units)  # heterogeneous units, mean ~rate
    sizes = rng.poisson(rates * duration)
    # spike times drawn away from bin edges' exact values (continuous uniform), sorted per unit
    times = rng.uniform(0.0, duration, int(sizes.sum()))
    unit = np.repeat(np.arange(args.units), sizes)
    times = times[np.lexsort((times, unit))]
    index = np.cumsum(sizes)
    n_bins = int(round(duration * args.frequency))

    def vectorised() -> np.ndarray:
        return bin_spikes(times, index, start=0.0, frequency=args.frequency, n_bins=n_bins)

    def loop() -> np.ndarray:
        return per_unit_loop(times, index, 0.0, args.frequency, n_bins)

    # the first call of each pays the OS page faults of fresh memory (slow on VMs): report it
    # apart, then time interleaved warm runs
    runs: dict[str, list[float]] = {"vectorised": [], "loop": []}
    first: dict[str, float] = {}
    results: dict[str, np.ndarray] = {}
    for rep in range(args.repeats + 1):
        for name, fn in (("vectorised", vectorised), ("loop", loop)):
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
            if rep == 0:
                first[name] = elapsed
                results[name] = result
            else:
                runs[name].append(elapsed)
            del result
    vec_runs, loop_runs = runs["vectorised"], runs["loop"]
    vec, loop_result = results.pop("vectorised"), results.pop("loop")
    equal = bool(np.array_equal(vec, loop_result))
    del vec, loop_result
    vec_s, loop_s = statistics.median(vec_runs), statistics.median(loop_runs)
    print(
        json.dumps(
            {
                "benchmark": "spike binning",
                "units": args.units,
                "hours": args.hours,
                "spikes": int(sizes.sum()),
                "bins": n_bins,
                "frequency_hz": args.frequency,
                "repeats": args.repeats,
                "bin_spikes_s": round(vec_s, 3),
                "per_unit_loop_s": round(loop_s, 3),
                "speedup": round(loop_s / vec_s, 2),
                "first_call_s": {k: round(v, 3) for k, v in first.items()},
                "bin_spikes_runs_s": [round(r, 3) for r in vec_runs],
                "per_unit_loop_runs_s": [round(r, 3) for r in loop_runs],
                "results_equal": equal,
                "numpy": np.__version__,
                "machine": platform.machine(),
                "cpus": __import__("os").cpu_count(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
