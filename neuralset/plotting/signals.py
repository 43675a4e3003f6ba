"""Pictures of data: one segment of a batch (:func:`plot_batch`) and the average response per
class with a confidence band (:func:`plot_average`, the evoked response of MNE users).

Both return a :class:`matplotlib.figure.Figure` (built without pyplot). :func:`plot_average`
reads the dataset in batches and accumulates per-class sums and sums of squares, so its memory
does not grow with the number of segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .events import _figure

__all__ = ["plot_batch", "plot_average", "average_by", "channel_names"]


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def channel_names(dataset: Any, name: str, n: int) -> list[str]:
    """Names of the ``n`` channels of extractor ``name`` (its ``output_channels``, else numbers)."""
    ext = dataset.extractors[name]
    try:
        names = ext.output_channels(dataset.segments, dataset.store)
    except Exception:  # an unprepared store: fall back to numbers
        names = None
    if names is not None and len(names) == n:
        return list(names)
    return [f"ch {i}" for i in range(n)]


def _fields(
    batch: Any,
) -> tuple[
    dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]
]:
    """``(data, times, mask, metadata)`` of a torch Batch, a JAX batch or a ``dataset.read`` dict."""
    if isinstance(batch, dict):
        data = {k: _numpy(v) for k, v in batch["data"].items()}
        times = {k: _numpy(v) for k, v in batch.get("times", {}).items()}
        mask = {k: _numpy(v) for k, v in batch.get("mask", {}).items()}
        meta = {k: _numpy(batch[k]) for k in ("start", "duration", "timeline", "trigger", "index")}
        return data, times, mask, meta
    data = {k: _numpy(v) for k, v in batch.data.items()}
    times = {k: _numpy(v) for k, v in getattr(batch, "times", {}).items()}
    mask = {k: _numpy(v) for k, v in batch.mask.items()}
    meta = {
        k: _numpy(getattr(batch, k)) for k in ("start", "duration", "timeline", "trigger", "index")
    }
    return data, times, mask, meta


def _short(value: np.ndarray) -> str:
    """A label value for a title: ``3``, ``0.25`` or ``[0, 1, 0]``."""
    value = np.asarray(value)
    if value.size == 1:
        v = value.item()
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return np.array2string(value, precision=2, separator=", ")


def plot_batch(
    batch: Any,
    name: str | None = None,
    *,
    index: int = 0,
    ch_names: Sequence[str] | None = None,
    max_channels: int = 16,
    dataset: Any = None,
) -> Any:
    """Channels x time of one segment of a batch, with the trigger and the labels in the title.

    Parameters
    ----------
    batch
        A :class:`~neuralset.loaders.batch.Batch`, a JAX batch or ``dataset.read(...)``.
    name
        The dynamic field to draw (default: the first one with a time axis).
    index
        Position of the segment in the batch.
    ch_names
        Channel names (default: from ``dataset``'s extractor, else numbers).
    max_channels
        Channels drawn (the first ones).
    dataset
        The dataset the batch comes from (for channel names).

    Returns
    -------
    matplotlib.figure.Figure
        One axes: each channel scaled to its own range and stacked; the x axis is
        ``batch.times[name]`` (s from the trigger) when present; other fields of the segment
        (labels) are in the title.
    """
    data, times, mask, meta = _fields(batch)
    dynamic = [k for k, v in data.items() if v.ndim >= 3 or k in times]
    if name is None:
        if not dynamic:
            raise ValueError("plot_batch: the batch has no field with a time axis")
        name = dynamic[0]
    if name not in data:
        raise KeyError(f"plot_batch: no field {name!r}; fields: {', '.join(data)}")
    window = _segment(data[name], index)  # (channels, time)
    n_ch = min(window.shape[0], max_channels)
    names = (
        list(ch_names)
        if ch_names is not None
        else (
            channel_names(dataset, name, window.shape[0])
            if dataset is not None
            else [f"ch {i}" for i in range(window.shape[0])]
        )
    )
    t = times.get(name, np.arange(window.shape[-1], dtype=float))
    real = mask.get(
        name, np.ones_like(data[name][:, 0, :] if data[name].ndim >= 3 else data[name], bool)
    )[index]
    fig = _figure(10, max(3.0, 0.35 * n_ch + 1.5))
    ax = fig.subplots()
    scale = np.abs(window[:n_ch]).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    offsets = np.arange(n_ch)[::-1]
    traces = 0.45 * window[:n_ch] / scale[:, None] + offsets[:, None]
    traces = np.where(real[None, :], traces, np.nan)  # padding is not drawn
    ax.plot(t, traces.T, lw=0.8)
    ax.set_yticks(offsets, names[:n_ch])
    if name in times:
        ax.axvline(0.0, color="k", ls="--", lw=0.8, label="trigger")
        ax.set_xlabel("time from the trigger (s)" if meta["trigger"][index] >= 0 else "time (s)")
    else:
        ax.set_xlabel("sample")
    labels = [
        f"{key}={_short(value[index])}"
        for key, value in data.items()
        if key != name and key not in times and value.ndim <= 2
    ]
    ax.set_title(
        f"{name}: segment {int(meta['index'][index])} (timeline {int(meta['timeline'][index])}, "
        f"start {float(meta['start'][index]):.2f} s)" + ("; " + ", ".join(labels) if labels else "")
    )
    ax.set_ylabel("channel (each scaled to its own range)")
    return fig


def _segment(values: np.ndarray, index: int) -> np.ndarray:
    """Segment ``index`` of a batch field as (channels, time); an error names a wrong index."""
    if not -(n := len(values)) <= index < n:
        raise IndexError(
            f"plot_batch.index: the batch has {n} segments (0 to {n - 1}), got {index}"
        )
    return values[index].reshape(-1, values.shape[-1])


def _labels(dataset: Any, by: Any) -> tuple[np.ndarray | None, list[str] | None]:
    """Per-segment class codes (None: one class, or labels read with the batches) and names."""
    if by is None or (isinstance(by, str) and by in dataset.extractors):
        return None, None
    if isinstance(by, str):
        if by not in dataset.segments.events.columns:
            raise ValueError(
                f"plot_average.by: {by!r} is neither a field of the dataset "
                f"({', '.join(dataset.extractors)}) nor a column of the events; pass by=None "
                "for the average over all segments"
            )
        values = dataset.segments.trigger_values(by)
    else:
        values = np.asarray(by, dtype=object)
        if len(values) != len(dataset):
            raise ValueError(
                f"plot_average.by: one label per segment ({len(dataset)}), got {len(values)}"
            )
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True)
    return np.asarray(codes), [str(u) for u in uniques]


def _field_classes(dataset: Any, by: str) -> list[str] | None:
    """The class names of a label field (its extractor's vocabulary), if it has one."""
    try:
        names = dataset.extractors[by].vocabulary(dataset.segments.events, dataset.store)
    except Exception:  # no stored vocabulary: classes are numbered
        return None
    return None if names is None else [str(c) for c in names]


def average_by(
    dataset: Any,
    by: Any = None,
    name: str | None = None,
    *,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Per class: mean, standard error and count of a dynamic field over a dataset's segments.

    ``by``: ``None`` (every segment), the name of a label field of the dataset (integer
    labels, e.g. a ``LabelEncoder``), a column of the trigger events, or one label per segment.

    Returns
    -------
    dict
        ``{"classes", "count" (K,), "mean" (K, channels, time), "sem" (K, channels, time),
        "times", "name"}``.
    """
    if name is None:
        name = next((n for n, e in dataset.extractors.items() if e.output == "dynamic"), None)
        if name is None:
            raise ValueError("plot_average: the dataset has no dynamic field to average")
    n = len(dataset)
    codes, classes = _labels(dataset, by)
    field_labels = isinstance(by, str) and by in dataset.extractors
    if field_labels:
        classes = _field_classes(dataset, by)
    n_classes = len(classes) if classes else 1
    sums: np.ndarray | None = None
    sq: np.ndarray | None = None
    counts = np.zeros(0)
    times = None
    for a in range(0, n, batch_size):
        arrays = dataset.read(np.arange(a, min(a + batch_size, n)), augment=False)
        x = arrays["data"][name].astype(np.float64)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        times = arrays["times"].get(name, times)
        kept = arrays["index"]
        if field_labels:
            lab = np.asarray(arrays["data"][by]).reshape(len(kept), -1)
            k = lab.argmax(axis=1) if lab.shape[1] > 1 else lab[:, 0].astype(np.int64)
        else:
            k = np.zeros(len(kept), np.int64) if codes is None else codes[kept]
        k = np.asarray(k, dtype=np.int64)
        ok = k >= 0
        need = max(n_classes, int(k.max()) + 1 if len(k) else 0)
        if sums is None or sq is None or len(counts) < need:  # first batch, or a new class
            grown = np.zeros((need, *x.shape[1:])), np.zeros((need, *x.shape[1:])), np.zeros(need)
            if sums is not None and sq is not None:
                grown[0][: len(counts)], grown[1][: len(counts)] = sums, sq
                grown[2][: len(counts)] = counts
            sums, sq, counts = grown
        np.add.at(sums, k[ok], x[ok])
        np.add.at(sq, k[ok], x[ok] ** 2)
        np.add.at(counts, k[ok], 1)
    if sums is None or sq is None:
        raise ValueError("plot_average: the dataset has no segment")
    if classes is None:
        classes = [str(i) for i in range(len(counts))] if by is not None else ["all segments"]
    c = np.maximum(counts, 1)[:, None, None]
    mean = sums / c
    var = np.maximum(sq / c - mean**2, 0.0) * (c / np.maximum(c - 1, 1))
    sem = np.sqrt(var / c)
    return {
        "classes": classes,
        "count": counts,
        "mean": mean,
        "sem": sem,
        "times": times,
        "name": name,
    }


def _picked_channels(
    avg: dict[str, Any],
    names: list[str],
    channels: Sequence[str] | Sequence[int] | None,
    max_channels: int,
) -> list[int]:
    """Positions of the channels drawn: those named, else the largest responses."""
    if channels is not None:
        n = len(names)
        wrong = [c for c in channels if (c not in names if isinstance(c, str) else not 0 <= c < n)]
        if wrong:
            shown = ", ".join(names[:8]) + (", ..." if n > 8 else "")
            raise ValueError(
                f"plot_average.channels: no channel {wrong[0]!r} among the {n} of "
                f"{avg['name']!r}; give names ({shown}) or positions 0 to {n - 1}"
            )
        return [names.index(c) if isinstance(c, str) else int(c) for c in channels]
    mean = avg["mean"]
    peak = np.abs(np.nansum(mean * avg["count"][:, None, None], axis=0)).max(axis=-1)
    return list(np.argsort(-peak, kind="stable")[: min(max_channels, mean.shape[1])])


def _onset_histogram(ax: Any, onsets: np.ndarray, t: np.ndarray, label: str) -> None:
    """A histogram of ``onsets`` along the bottom fifth of ``ax`` (its y range kept)."""
    ymin, ymax = ax.get_ylim()
    counts, edges = np.histogram(onsets, bins=max(10, len(t) // 2), range=(t[0], t[-1]))
    height = 0.2 * (ymax - ymin) * counts / max(counts.max(), 1)
    ax.bar(
        edges[:-1],
        height,
        width=np.diff(edges),
        bottom=ymin,
        align="edge",
        color="0.6",
        alpha=0.6,
        label=label,
    )
    ax.set_ylim(ymin, ymax)


def plot_average(
    dataset: Any,
    by: Any = "label",
    name: str | None = None,
    *,
    channels: Sequence[str] | Sequence[int] | None = None,
    max_channels: int = 4,
    confidence: float = 0.95,
    mark: str | None = None,
    batch_size: int = 256,
) -> Any:
    """The average response per class, with a confidence band, one panel per channel.

    Parameters
    ----------
    dataset
        A :class:`~neuralset.loaders.dataset.SegmentDataset`.
    by
        The classes: a label field of the dataset (``"label"``), a column of the trigger events,
        one label per segment, or ``None`` for the average over all segments.
    name
        The dynamic field averaged (default: the first).
    channels
        Channel names or positions (default: the ``max_channels`` with the largest response).
    max_channels
        Number of channels drawn when ``channels`` is None.
    confidence
        Coverage of the band (normal approximation: mean +- z x standard error).
    mark
        An event type whose onsets near the trigger (other than the trigger itself) are shown
        as a histogram under the curves (e.g. ``"Word"``: where the neighbouring words start).
    batch_size
        Segments read at a time.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per channel (titled with its name), one line and band per class (legend:
        class and count).
    """
    from statistics import NormalDist

    if not 0 < confidence < 1:
        raise ValueError(
            f"plot_average.confidence: the band's coverage, between 0 and 1 (0.95 for a 95% band), "
            f"got {confidence}"
        )
    avg = average_by(dataset, by, name, batch_size=batch_size)
    mean, sem, times = avg["mean"], avg["sem"], avg["times"]
    name = avg["name"]
    n_ch = mean.shape[1]
    names = channel_names(dataset, name, n_ch)
    picks = _picked_channels(avg, names, channels, max_channels)
    t = times if times is not None else np.arange(mean.shape[-1], dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    cols = min(2, len(picks))
    rows = int(np.ceil(len(picks) / cols))
    fig = _figure(5.5 * cols, 2.8 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False).ravel())
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    onsets = _mark_onsets(dataset, mark) if mark else None
    for ax, ch in zip(axes, picks):
        for k, cls in enumerate(avg["classes"]):
            if not avg["count"][k]:
                continue
            m, e = mean[k, ch], z * sem[k, ch]
            ax.plot(t, m, color=cmap(k % 10), lw=1.2, label=f"{cls} (n={int(avg['count'][k])})")
            ax.fill_between(t, m - e, m + e, color=cmap(k % 10), alpha=0.25, lw=0)
        if times is not None:
            ax.axvline(0.0, color="k", ls="--", lw=0.8)
        if onsets is not None and len(onsets):
            _onset_histogram(ax, onsets, t, f"{mark} onsets")
        ax.set_title(names[ch])
        ax.grid(alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel(f"{name} (as stored)")
    for ax in axes[len(picks) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper right")
    for ax in axes[(rows - 1) * cols : (rows - 1) * cols + cols]:
        ax.set_xlabel("time from the trigger (s)" if times is not None else "sample")
    fig.suptitle(
        f"average {name} per {'class' if len(avg['classes']) > 1 else 'segment set'}, "
        f"{int(confidence * 100)}% confidence band ({int(avg['count'].sum())} segments)"
    )
    return fig


def _mark_onsets(dataset: Any, mark: str) -> np.ndarray:
    """Onsets of ``mark`` events inside the segments, relative to each segment's trigger."""
    segments = dataset.segments
    seg, rows = segments.overlapping(mark)
    keep = rows != segments.trigger[seg]
    seg, rows = seg[keep], rows[keep]
    start = segments.events["start"].to_numpy()
    origin = np.where(
        segments.trigger[seg] >= 0, start[np.maximum(segments.trigger[seg], 0)], segments.start[seg]
    )
    return start[rows] - origin
