"""Benchmark: real-time streaming latency and sustained throughput, against the offline pipeline.

The extractor is ``MegExtractor(causal=True, frequency=100, notch=(50,), filter=(0.5, 40),
scaling="robust", baseline=(-0.2, 0))``; windows are 0.8 s around each word (every ~0.1 s).

* ``latency``: a synthetic 128-channel, 1 kHz MEG recording replayed in real time (chunks of
  ``--chunk`` samples handed over by an acquisition thread through a bounded queue, as an
  amplifier driver would) into an :class:`~neuralset.streaming.online.OnlinePipeline` building
  torch batches. Latency = from the hand-over of the chunk holding a window's last sample to
  its batch being built (median and 99th percentile); samples dropped when the queue is full
  are counted.
* ``throughput``: the same pipeline unpaced, for growing channel counts at 1 kHz (and rates at
  128 channels): processing seconds per second of data (real-time factor, median of
  ``--runs``). ``sustained`` is the largest channels x rate with a factor below 0.8 whose paced
  run of ``--check`` seconds drops no sample (candidates are tried from the largest down; each
  paced run is in ``paced_checks``).
* ``baseline`` (same run): the offline pipeline on the same recording - ``prepare`` seconds per
  second of data (same causal filters), and ``read`` milliseconds per window (one window, and
  per window in batches of 32).
* ``lsl`` (``--lsl``, when a loopback-only network namespace can be made): the same latency
  measured through Lab Streaming Layer (``PlayerLSL`` -> ``LslSource`` -> batch, from the pull
  of the chunk holding a window's last sample). LSL's own transport delay is not measured:
  ``PlayerLSL`` stamps each chunk with the time its last sample is due, ahead of the push.

Prints one JSON object. Usage: ``python benchmarks/streaming.py [--duration 30 --runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SEGMENT = {"triggers": "Word", "offset": -0.2, "duration": 0.8}


def extractor() -> Any:
    from neuralset.extractors.neural.mne import MegExtractor

    return MegExtractor(
        causal=True,
        frequency=100.0,
        notch=(50.0,),
        filter=(0.5, 40.0),
        scaling="robust",
        baseline=(-0.2, 0.0),
    )


def paced_run(pipe: Any, source: Any, markers: list[Any], *, maxsize: int) -> dict[str, Any]:
    """Real-time replay: an acquisition thread hands chunks over a bounded queue."""
    handover: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
    dropped = [0]
    depth = [0]

    def acquire() -> None:
        for chunk in source:  # paced: each chunk is due when its last sample is
            try:
                handover.put_nowait(chunk)
            except queue.Full:
                dropped[0] += chunk.n
            depth[0] = max(depth[0], handover.qsize())
        handover.put(None)

    thread = threading.Thread(target=acquire, daemon=True)
    marks = sorted(markers, key=lambda m: m.timestamp)
    k = 0
    start = time.perf_counter()
    thread.start()
    batches = 0
    while (chunk := handover.get()) is not None:
        while k < len(marks) and marks[k].timestamp <= chunk.timestamps[-1]:
            pipe.push_marker(marks[k])
            k += 1
        if pipe.push(chunk) is not None:
            batches += 1
    thread.join()
    return {
        "wall_s": time.perf_counter() - start,
        "batches": batches,
        "dropped_samples": dropped[0],
        "max_queue_chunks": depth[0],
        **pipe.latency_summary(),
    }


def unpaced_factor(make_pipe: Any, data: np.ndarray, info: Any, chunk: int, runs: int) -> float:
    """Processing seconds per second of data, as fast as possible (median of runs)."""
    from neuralset.streaming.source import ArraySource

    factors = []
    for _ in range(runs):
        pipe = make_pipe(info)
        pipe.warm_up()
        chunks = list(ArraySource(data, info, chunk))
        t0 = time.perf_counter()
        for c in chunks:
            pipe.push(c)
        factors.append((time.perf_counter() - t0) / (data.shape[1] / info.sfreq))
    return statistics.median(factors)


def throughput(args: argparse.Namespace, scaling_of: Any) -> dict[str, Any]:
    from neuralset.segments import SlidingSegmenter
    from neuralset.streaming.online import OnlinePipeline
    from neuralset.streaming.source import ArraySource, StreamInfo

    rng = np.random.default_rng(0)
    seconds = 5.0
    grid = [(c, 1000.0) for c in (128, 256, 512, 1024, 2048, 4096, 8192, 16384)] + [
        (128, f) for f in (2000.0, 5000.0, 10000.0, 20000.0)
    ]
    rows = []
    for n_ch, sfreq in grid:
        if rows and rows[-1]["rt_factor"] > 1.0 and rows[-1]["sfreq"] == sfreq:
            continue  # this axis is past real time already
        info = StreamInfo(tuple(f"MEG {i:04d}" for i in range(n_ch)), ("mag",) * n_ch, sfreq)
        data = rng.standard_normal((n_ch, int(seconds * sfreq))) * 1e-12
        stats = scaling_of(n_ch)

        def make(info: Any, stats: Any = stats) -> Any:
            return OnlinePipeline(
                extractor(), info, SlidingSegmenter(duration=0.8, stride=0.1),
                scaling=stats, backend="torch",
            )  # fmt: skip

        chunk = max(1, int(sfreq * args.chunk / 1000.0))
        factor = unpaced_factor(make, data, info, chunk, args.runs)
        rows.append(
            {"channels": n_ch, "sfreq": sfreq, "channel_rate": n_ch * sfreq, "rt_factor": factor}
        )
    # the largest channels x rate (factor < 0.8) whose paced run drops nothing
    candidates = sorted((r for r in rows if r["rt_factor"] < 0.8), key=lambda r: -r["channel_rate"])
    best, checks = None, []
    for row in candidates:
        n_ch, sfreq = row["channels"], row["sfreq"]
        info = StreamInfo(tuple(f"MEG {i:04d}" for i in range(n_ch)), ("mag",) * n_ch, sfreq)
        data = rng.standard_normal((n_ch, int(args.check * sfreq))) * 1e-12
        pipe = OnlinePipeline(
            extractor(), info, SlidingSegmenter(duration=0.8, stride=0.1),
            scaling=scaling_of(n_ch), backend="torch",
        )  # fmt: skip
        chunk = max(1, int(sfreq * args.chunk / 1000.0))
        source = ArraySource(data, info, chunk, realtime=True)
        pipe.warm_up()
        check = paced_run(pipe, source, [], maxsize=100)
        check.update(channels=n_ch, sfreq=sfreq)
        checks.append(check)
        if check["dropped_samples"] == 0:
            best = row
            break
    return {"grid": rows, "sustained": best, "paced_checks": checks}


def lsl_child(fif: str, config_path: str) -> None:
    """Inside a loopback-only namespace: PlayerLSL -> LslSource -> OnlinePipeline."""
    from neuralset.streaming.lsl import configure_loopback, loopback_up

    loopback_up()
    configure_loopback(tempfile.mkdtemp())
    import mne
    from mne_lsl.player import PlayerLSL

    from neuralset.segments import TriggerSegmenter
    from neuralset.streaming.lsl import LslMarkers, LslSource
    from neuralset.streaming.online import OnlinePipeline
    from neuralset.streaming.source import StreamInfo

    config = json.loads(Path(config_path).read_text())
    chunk = int(config["chunk"])
    # set up (imports, shape checks) before the player starts, as before an experiment
    info = StreamInfo.from_mne(mne.io.read_info(fif, verbose="error"))
    pipe = OnlinePipeline(extractor(), info, TriggerSegmenter(**SEGMENT), scaling=config["scaling"])
    pipe.warm_up()
    player = PlayerLSL(fif, chunk_size=chunk, name="ns-bench", n_repeat=1).start()
    source = LslSource("ns-bench", idle=1.5)
    markers = LslMarkers("ns-bench-annotations", shift=1.0 / source.info.sfreq, type="Word")
    if source.info.ch_names != info.ch_names:
        raise RuntimeError("the LSL stream's channels differ from the file's")
    received: list[int] = []

    def counted() -> Any:
        for c in source:
            received.append(c.n)
            yield c

    n_markers = 0

    class Counted:
        def poll(self) -> list[Any]:
            nonlocal n_markers
            got = markers.poll()
            n_markers += len(got)
            return got

    for _ in pipe.run(counted(), Counted()):
        pass
    if player.running:
        player.stop()
    summary = pipe.latency_summary()
    summary.update(
        markers=n_markers,
        missed=len(pipe.emitter.missed) if pipe.emitter is not None else 0,
        samples=int(sum(received)),
    )
    print(json.dumps(summary))


def lsl_section(fif: Path, scaling: dict[str, Any], chunk: int, work: Path) -> dict[str, Any]:
    from neuralset.streaming.lsl import isolated_command

    config = work / "lsl.json"
    config.write_text(json.dumps({"scaling": scaling, "chunk": chunk}))
    cmd = isolated_command([sys.executable, __file__, "--lsl-child", str(fif), str(config)])
    if cmd is None:
        return {"skipped": "no loopback-only network namespace (unshare -rn) here"}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds replayed")
    parser.add_argument("--chunk", type=float, default=10.0, help="chunk length in ms")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--check", type=float, default=10.0, help="paced check seconds")
    parser.add_argument("--lsl", action="store_true", help="also measure through LSL")
    parser.add_argument("--lsl-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lsl_child:
        lsl_child(*args.lsl_child)
        return

    from neuralset.segments import TriggerSegmenter
    from neuralset.store import Store
    from neuralset.streaming.online import OnlinePipeline, stored_scaling
    from neuralset.streaming.source import ArraySource, markers_from_events
    from neuralset.synthetic import SyntheticStudy

    work = Path(tempfile.mkdtemp(prefix="ns-bench-stream-"))
    study = SyntheticStudy(
        path=work / "study", n_subjects=1, duration=args.duration, meg_channels=128,
        meg_sfreq=1000.0, word_interval=0.1, modalities=("meg",),
    )  # fmt: skip
    events = study.events()
    fif = study.path / "sub-01" / "sub-01_meg.fif"
    meg = extractor()
    segmenter = TriggerSegmenter(**SEGMENT, require=("Meg",))
    segments = segmenter(events)

    # -- baseline: the offline pipeline on the same recording --------------------------
    prepare_s = []
    for _ in range(args.runs):
        store = Store(work / f"store-{len(prepare_s)}")
        t0 = time.perf_counter()
        meg.prepare(events, store, progress=False)
        prepare_s.append(time.perf_counter() - t0)
    one, batched = [], []
    meg.read(segments.select([0]), store)  # open the memory map once
    for i in range(min(len(segments), 200)):
        t0 = time.perf_counter()
        meg.read(segments.select([i]), store)
        one.append(time.perf_counter() - t0)
    for i in range(0, min(len(segments), 32 * 8), 32):
        idx = np.arange(i, min(i + 32, len(segments)))
        t0 = time.perf_counter()
        meg.read(segments.select(idx), store)
        batched.append((time.perf_counter() - t0) / len(idx))
    baseline = {
        "prepare_rt_factor": statistics.median(prepare_s) / args.duration,
        "read_one_window_ms": statistics.median(one) * 1e3,
        "read_per_window_in_batch32_ms": statistics.median(batched) * 1e3,
    }

    # -- latency at 1 kHz x 128 channels ------------------------------------------------
    scaling = stored_scaling(meg, events, store)
    chunk = max(1, int(1000.0 * args.chunk / 1000.0))
    source = ArraySource.from_file(fif, chunk, realtime=True)
    pipe = OnlinePipeline(meg, source.info, segmenter, scaling=scaling, backend="torch")
    pipe.warm_up()  # torch import and shape checks before the "experiment" starts
    latency = paced_run(pipe, source, markers_from_events(events, "Word", "sub-01"), maxsize=100)
    latency.update(channels=len(pipe.ch_names), sfreq=1000.0, chunk_samples=chunk)

    # -- sustained throughput ------------------------------------------------------------
    def scaling_of(n_ch: int) -> dict[str, Any]:
        return {"center": [0.0] * n_ch, "scale": [1e-12] * n_ch}

    result = {
        "machine_cpus": os.cpu_count(),
        "latency": latency,
        "throughput": throughput(args, scaling_of),
        "baseline": baseline,
    }
    online_rt = next(r["rt_factor"] for r in result["throughput"]["grid"] if r["channels"] == 128)
    result["ratios"] = {
        "online_vs_offline_processing_per_data_second": online_rt / baseline["prepare_rt_factor"],
        "latency_median_vs_offline_read_one_window": latency["median_ms"]
        / baseline["read_one_window_ms"],
    }
    if args.lsl:
        result["lsl"] = lsl_section(fif, scaling, chunk, work)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
