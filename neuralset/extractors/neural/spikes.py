"""Spike trains of sorted units, binned to counts at any frequency.

A :class:`~neuralset.events.Spikes` event points at a file of spike times per unit:

* an NWB file (read through :mod:`pynwb`): the ``units`` table's ragged ``spike_times`` column;
* a ``.npz`` file with either the same ragged layout (``spike_times``: all spike times
  concatenated unit after unit, ``spike_times_index``: the end offset of each unit in it,
  optional ``unit_ids``) or one entry per spike (``units``: unit id, ``times``: time in s).

:func:`bin_spikes` bins all units at once, in time linear in the number of spikes: since spike
times are sorted within each unit, the spikes of one (unit, bin) cell are adjacent, so one
run-length pass over the concatenated times gives every non-empty cell and its count; the counts
are then written into the time-major output ordered by time block (a radix sort on a small block
id) so that the scattered writes stay cache-local. No Python loop over units.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import config, register
from ...segments import Segments
from ...store import Store
from ...validation import require
from ..base import Item, OutOfBounds, events_label, source_identity, source_path
from ..recording import RecordingExtractor
from .channel_sets import ChannelOutput, ChannelSets, read_channel_sets

__all__ = ["SpikesExtractor", "bin_spikes", "read_spike_times", "check_spike_file"]

#: Output cells (bins x units) per time block of the write pass (~4 MB of float32, cache-sized).
_BLOCK_CELLS = 1 << 20
#: Spikes per chunk of whole units (bounds the temporaries to a few MB each).
_CHUNK_SPIKES = 1 << 19


def bin_spikes(
    times: np.ndarray,
    index: np.ndarray,
    *,
    start: float,
    frequency: float,
    n_bins: int,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Count the spikes of every unit in ``n_bins`` bins of ``1 / frequency`` s from ``start``.

    Bin ``k`` covers ``[start + k / frequency, start + (k + 1) / frequency)``; spikes outside
    ``[start, start + n_bins / frequency)`` are ignored.

    Parameters
    ----------
    times
        Spike times in seconds, concatenated unit after unit (sorted within each unit for the
        fast path; unsorted units are handled by a slower scatter-add).
    index
        End offset in ``times`` of each unit (NWB's ``spike_times_index``): unit ``u`` owns
        ``times[index[u - 1]:index[u]]``.
    start, frequency, n_bins
        The time grid.
    dtype
        Output dtype.

    Returns
    -------
    np.ndarray
        ``(n_bins, n_units)`` counts (time-major).
    """
    times = np.asarray(times, dtype=np.float64)
    ends = np.asarray(index, dtype=np.int64)
    n_units = len(ends)
    if n_units and (np.any(np.diff(ends) < 0) or ends[-1] != len(times) or ends[0] < 0):
        raise ValueError(
            f"spike index must be non-decreasing end offsets ending at len(times)={len(times)}, "
            f"got last offset {ends[-1] if n_units else None}"
        )
    out = np.zeros((n_bins, n_units), dtype=dtype)
    if not n_units or not n_bins or not len(times):
        return out
    # a few chunks of whole units (~_CHUNK_SPIKES spikes each): temporaries stay small and are
    # reused by the allocator instead of being mapped afresh (no loop over single units)
    u0 = 0
    while u0 < n_units:
        lo = int(ends[u0 - 1]) if u0 else 0
        u1 = max(u0 + 1, int(np.searchsorted(ends, lo + _CHUNK_SPIKES, side="right")))
        u1 = min(u1, n_units)
        _bin_chunk(out, times[lo : ends[u1 - 1]], ends[u0:u1] - lo, u0, start, frequency)
        u0 = u1
    return out


def _bin_of(times: np.ndarray, start: float, frequency: float) -> np.ndarray:
    """The bin of each spike (as floats): bin ``k`` covers ``[start + k / f, start + (k+1) / f)``.

    ``floor((t - start) * f)`` rounds: a spike exactly on an edge (spike times are often whole
    samples, ``k / 30 kHz``) can land at ``k - 1 + 0.99...``. The spikes within 1e-6 bin of an
    edge (far more than the product's error) are placed by the edges themselves.
    """
    scaled = times - start
    scaled *= frequency
    bin_of = np.floor(scaled)
    scaled -= bin_of
    scaled -= 0.5
    np.abs(scaled, out=scaled)
    near = np.flatnonzero(scaled > 0.5 - 1e-6)
    if len(near):
        k, at = bin_of[near], times[near]
        k -= start + k / frequency > at
        k += start + (k + 1) / frequency <= at
        bin_of[near] = k
    return bin_of


def _bin_chunk(
    out: np.ndarray,
    times: np.ndarray,
    ends: np.ndarray,
    first_unit: int,
    start: float,
    frequency: float,
) -> None:
    """Add the counts of units ``first_unit ...`` (``times`` cut at ``ends``) into ``out``."""
    n_bins, n_units = out.shape
    if not len(times):
        return
    small = np.int32 if max(n_bins, n_units) < 2**31 - 1 else np.int64  # halves memory traffic
    unit: np.ndarray = np.repeat(
        np.arange(first_unit, first_unit + len(ends), dtype=small), np.diff(ends, prepend=0)
    )
    scaled = _bin_of(times, start, frequency)
    ok = (scaled >= 0) & (scaled < n_bins)
    bins: np.ndarray
    if ok.all():
        bins = scaled.astype(small)
    else:
        bins, unit = scaled[ok].astype(small), unit[ok]
    if not len(bins):
        return
    # spikes are sorted within each unit, so the spikes of one (unit, bin) cell are adjacent:
    # one run-length pass gives every non-empty cell and its count (no per-unit loop, no sort)
    new_cell = np.empty(len(bins), dtype=bool)
    new_cell[0] = True
    np.not_equal(bins[1:], bins[:-1], out=new_cell[1:])
    new_cell[1:] |= unit[1:] != unit[:-1]
    first = np.flatnonzero(new_cell)
    counts = np.diff(first, append=len(bins))
    bins, unit = bins[first], unit[first]
    flat_out = out.reshape(-1)
    if np.any(np.diff(bins)[np.diff(unit) == 0] < 0):  # times were not sorted within units
        flat = bins.astype(np.int64) * n_units + unit.astype(np.int64)
        np.add.at(flat_out, flat, counts)
        return
    # write time block by time block (stable radix sort on a small block id) so that the
    # scattered writes into the time-major output stay within a cache-sized region
    rows = max(1, _BLOCK_CELLS // n_units, -(-n_bins // 65535))
    order = np.argsort((bins // rows).astype(np.uint16), kind="stable")
    flat = bins[order].astype(np.int64)
    flat *= n_units
    flat += unit[order]
    flat_out[flat] = counts[order]


def _npz_layout(files: set[str], path: Path) -> Literal["ragged", "flat"]:
    """Which layout a spikes ``.npz`` holding these arrays has (see the module docstring)."""
    if {"spike_times", "spike_times_index"} <= files:
        return "ragged"
    if {"units", "times"} <= files:
        return "flat"
    raise ValueError(
        f"{path}: a spikes .npz needs arrays 'spike_times' + 'spike_times_index' "
        f"(ragged, NWB layout) or 'units' + 'times' (one per spike); found {sorted(files)}"
    )


def _check_ids(ids: np.ndarray, index: np.ndarray, path: Path) -> np.ndarray:
    if len(ids) != len(index):
        raise ValueError(
            f"{path}: 'unit_ids' has {len(ids)} ids for {len(index)} units (entries of "
            "'spike_times_index'); give one id per unit, or leave 'unit_ids' out (0, 1, ...)"
        )
    return ids


def check_spike_file(path: str | Path) -> None:
    """Cheap check of a spike file (its type, its ``.npz`` array names and unit ids), as
    :func:`read_spike_times` would fail on it; spike times are not read."""
    path = Path(path)
    if path.suffix not in (".nwb", ".npz"):
        raise ValueError(
            f"{path}: spike files must be NWB (.nwb) or numpy (.npz), got {path.suffix!r}"
        )
    if path.suffix == ".npz":
        with np.load(path) as npz:
            files = set(npz.files)
            if _npz_layout(files, path) == "ragged" and "unit_ids" in files:
                _check_ids(np.asarray(npz["unit_ids"]), np.asarray(npz["spike_times_index"]), path)


def read_spike_times(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spike times of a file as ``(times, index, unit_ids)`` (ragged layout, see module doc).

    Raises
    ------
    ValueError
        For an unknown file type, a ``.npz`` without the expected arrays, or unit ids that are
        not one per unit.
    """
    path = Path(path)
    check_spike_file(path)
    if path.suffix == ".nwb":
        from pynwb import NWBHDF5IO

        with NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            if nwb.units is None or "spike_times" not in nwb.units.colnames:
                raise ValueError(f"{path}: NWB file has no units table with spike_times")
            times = np.asarray(nwb.units["spike_times"].target.data[:], dtype=np.float64)
            index = np.asarray(nwb.units["spike_times"].data[:], dtype=np.int64)
            ids = np.asarray(nwb.units.id.data[:])
        return times, index, ids
    with np.load(path) as npz:
        files = set(npz.files)
        if _npz_layout(files, path) == "ragged":
            times = np.asarray(npz["spike_times"], dtype=np.float64)
            index = np.asarray(npz["spike_times_index"], dtype=np.int64)
            ids = np.asarray(npz["unit_ids"]) if "unit_ids" in files else np.arange(len(index))
            return times, index, _check_ids(ids, index, path)
        units = np.asarray(npz["units"])
        times = np.asarray(npz["times"], dtype=np.float64)
    if units.shape != times.shape:
        raise ValueError(f"{path}: 'units' and 'times' must have one value per spike")
    order = np.argsort(units, kind="stable")
    ids, counts = np.unique(units, return_counts=True)
    return times[order], np.cumsum(counts), ids


@register("spikes")
@config
class SpikesExtractor(RecordingExtractor):
    """Spike counts per unit, binned at ``frequency`` (dynamic output: ``units x time``).

    Parameters
    ----------
    frequency
        Bin frequency in Hz (bins of ``1 / frequency`` s, aligned on the recording's start).
    scale
        ``"count"`` (spikes per bin) or ``"rate"`` (spikes per second: counts x frequency).
    channels
        How recordings with different units are batched: ``"per_recording"`` (error when a
        batch mixes unit lists) or ``"union"`` (union of unit ids, missing ones zero-filled and
        masked in :attr:`~neuralset.extractors.neural.channel_sets.ChannelOutput.channel_mask`).

    Notes
    -----
    Sample 0 of a recording is the bin starting at the event's ``offset`` in the file's time;
    the number of bins is ``round(duration * frequency)`` (or up to the last spike when the
    event has no duration).
    """

    #: 2: spikes exactly on a bin edge counted in the bin they start (stored bins of 1 differ)
    _version: ClassVar[int] = 2

    default_event_type = "Spikes"
    read_fields = ("output", "aggregation", "channels")

    frequency: float | None = 100.0
    scale: Literal["count", "rate"] = "count"
    channels: ChannelSets = "per_recording"

    def _check(self) -> None:
        require(
            self.frequency is not None,
            self,
            "frequency",
            "spike binning needs a bin frequency in Hz, got None; e.g. frequency=100.0",
        )

    def items(self, events: pd.DataFrame) -> list[Item]:
        """One item per ``Spikes`` event, keyed by file identity, offset and duration."""
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        roots = events["study_root"] if "study_root" in events.columns else None
        offsets = events["offset"] if "offset" in events.columns else None
        out = []
        for row, path in zip(rows, source_path(events, rows)):
            root = roots.iloc[row] if roots is not None else None
            offset = float(offsets.iloc[row]) if offsets is not None else 0.0
            payload = {
                "path": str(path),
                "row": int(row),
                "start": float(events["start"].iloc[row]),
                "duration": float(events["duration"].iloc[row]),
                "offset": offset if offset == offset else 0.0,  # NaN: no offset for this row
                "timeline": str(events["timeline"].iloc[row]),
            }
            try:
                ident = source_identity(
                    path, root if isinstance(root, str) else None, content_hash=self.content_hash
                )
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f"SpikesExtractor: spike file not found: {path}, for "
                    f"{events_label(events, int(row))}; check the study path or remove this event"
                ) from err
            key = self.item_key(ident, payload["offset"], payload["duration"])
            out.append(Item(key=key, label=str(path), payload=payload))
        return out

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Every spike file not yet stored is of a known type and layout (see
        :func:`check_spike_file`), before any binning."""
        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        for item in items:
            if item.key in missing:
                check_spike_file(item.payload["path"])

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        assert self.frequency is not None
        times, index, ids = read_spike_times(payload["path"])
        offset = float(payload["offset"])
        duration = float(payload["duration"])
        if duration > 0:
            n_bins = int(round(duration * self.frequency))
        else:
            last = float(times.max()) if len(times) else offset
            n_bins = max(1, int(math.floor((last - offset) * self.frequency)) + 1)
        counts = bin_spikes(times, index, start=offset, frequency=self.frequency, n_bins=n_bins)
        if self.scale == "rate":
            counts *= np.float32(self.frequency)
        return counts, self.frequency, {"ch_names": [str(i) for i in ids.tolist()]}

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> ChannelOutput:
        """Counts of a batch, ``(batch, units, time)`` (see ``channels`` for differing units)."""
        return read_channel_sets(self, super().read, segments, store, self.channels, out_of_bounds)
