"""Reading recordings whose channel (or unit) sets differ: per-recording lists or a union.

Intracranial electrodes, spike-sorted units and fNIRS optodes differ from one subject (or
session) to the next. A :class:`~neuralset.extractors.recording.RecordingExtractor` stores each
recording with its own channel list (``meta["ch_names"]``); how a batch of segments drawn from
several recordings is assembled is a *read* choice (it never changes what is stored):

* ``channels="per_recording"``: each recording keeps its own list. A batch whose segments come
  from recordings with different channel lists is an error naming them (batch by recording,
  e.g. one subject at a time).
* ``channels="union"``: the output is laid on the sorted-by-first-appearance union of the channel
  names of every recording of the events table; channels a recording lacks are zero-filled and
  reported in :attr:`ChannelOutput.channel_mask` (``(batch, channels)``, True where the
  channel exists in the segment's recording). :attr:`ChannelOutput.channels` names the channels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np

from ...memo import Slot
from ...segments import Segments
from ...store import MissingEntryError, Store
from ..base import ExtractorNotPreparedError, OutOfBounds, Output, events_label
from ..recording import RecordingExtractor

__all__ = ["ChannelOutput", "ChannelSets", "read_channel_sets", "recording_channels"]

ChannelSets = Literal["per_recording", "union"]

#: Stored channel names per recording row, per extractor ``prepare_key`` and store root.
_CHANNEL_NAMES: Slot[dict[str, tuple[str, ...]]] = Slot("stored channel names per store key")


@dataclasses.dataclass(frozen=True)
class ChannelOutput(Output):
    """An :class:`~neuralset.extractors.base.Output` that names its channel axis (axis 1).

    Attributes
    ----------
    channels
        Names of the channels along axis 1 of ``data``.
    channel_mask
        ``(batch, channels)`` boolean, True where the channel exists in the recording of the
        segment; missing channels are zero in ``data``. All True with ``channels="per_recording"``.
    """

    channels: tuple[str, ...] = ()
    channel_mask: np.ndarray | None = None


def recording_channels(
    extractor: RecordingExtractor, segments: Segments, store: Store, rows: np.ndarray
) -> dict[int, tuple[str, ...]]:
    """Stored channel names of the recordings at event ``rows`` (memoised on the event index)."""
    cache = segments.index.memo.table(_CHANNEL_NAMES, str(store.root))  # by store key
    keys = extractor.recording_keys(segments, np.asarray(rows, dtype=np.int64))
    for r, key in keys.items():
        if key not in cache:
            cache[key] = _stored_channels(extractor, store, key, segments, r)
    return {int(r): cache[keys[int(r)]] for r in rows}


def _stored_channels(
    extractor: RecordingExtractor, store: Store, key: str, segments: Segments, row: int
) -> tuple[str, ...]:
    try:
        meta = store.meta(key)
    except MissingEntryError as err:
        raise ExtractorNotPreparedError(
            f"{type(extractor).__name__} has no stored data for "
            f"{events_label(segments.events, row)}; call extractor.prepare(events, store) first"
        ) from err
    names = meta.get("ch_names")
    if names is None:
        raise ValueError(
            f"stored data of {events_label(segments.events, row)} has no ch_names meta"
        )
    return tuple(str(n) for n in names)


def _all_rows(extractor: RecordingExtractor, segments: Segments) -> np.ndarray:
    return np.flatnonzero((segments.events["type"] == extractor.resolved_event_type).to_numpy())


def union_channels(
    extractor: RecordingExtractor, segments: Segments, store: Store
) -> tuple[str, ...]:
    """Union of the channel names of all recordings of the events table, in first-seen order."""
    names = recording_channels(extractor, segments, store, _all_rows(extractor, segments))
    seen: dict[str, None] = {}
    for row in sorted(names):
        for name in names[row]:
            seen.setdefault(name, None)
    return tuple(seen)


#: ``read(segments, store, out_of_bounds=...)``: the plain recording read of one channel list.
Read = Callable[..., Output]


def read_channel_sets(
    extractor: RecordingExtractor,
    read: Read,
    segments: Segments,
    store: Store,
    mode: ChannelSets,
    out_of_bounds: OutOfBounds,
) -> ChannelOutput:
    """Read a batch through ``read`` (the plain recording read) honouring ``mode``.

    Parameters
    ----------
    extractor
        The recording extractor (its stored meta carries ``ch_names``).
    read
        ``read(segments, store, out_of_bounds=...) -> Output`` for segments sharing one channel list.
    segments, store, out_of_bounds
        As in :meth:`~neuralset.extractors.base.Extractor.read`.
    mode
        ``"per_recording"`` or ``"union"`` (see the module docstring).
    """
    rec_rows = segments.index.covering(
        segments.timeline, segments.start, segments.start, extractor.resolved_event_type
    )
    present = np.unique(rec_rows[rec_rows >= 0])
    if (rec_rows < 0).any() and out_of_bounds != "drop" or not len(present):
        out = read(segments, store, out_of_bounds=out_of_bounds)  # raises the base error
        if mode != "union":
            return ChannelOutput(data=out.data, mask=out.mask, keep=out.keep)
        return _empty_union(out, union_channels(extractor, segments, store))
    names = recording_channels(extractor, segments, store, present)
    if mode == "per_recording":
        return _read_per_recording(extractor, read, segments, store, names, out_of_bounds)
    union = union_channels(extractor, segments, store)
    return _read_union(read, segments, store, names, union, rec_rows, out_of_bounds)


def _empty_union(out: Output, union: tuple[str, ...]) -> ChannelOutput:
    """Nothing kept: an empty output, but with its channels named."""
    empty = np.zeros((len(out.data), len(union), *out.data.shape[2:]), dtype=np.float32)
    return ChannelOutput(
        data=empty,
        mask=out.mask,
        keep=out.keep,
        channels=union,
        channel_mask=np.zeros((len(out.data), len(union)), dtype=bool),
    )


def _read_per_recording(
    extractor: RecordingExtractor,
    read: Read,
    segments: Segments,
    store: Store,
    names: dict[int, tuple[str, ...]],
    out_of_bounds: OutOfBounds,
) -> ChannelOutput:
    """One read, when every recording of the batch has the same channel list (else an error)."""
    if len(set(names.values())) > 1:
        shown = ", ".join(
            f"{segments.events['filepath'].iloc[r]} ({len(names[r])} channels)"
            for r in list(names)[:6]
        )
        raise ValueError(
            f"{type(extractor).__name__}(channels='per_recording'): this batch mixes recordings "
            f"with different channel lists: {shown}; batch segments of one recording (subject) "
            "at a time, or use channels='union' to read them on the union of channel names "
            "with a mask of missing channels"
        )
    out = read(segments, store, out_of_bounds=out_of_bounds)
    chans = next(iter(names.values()))
    return ChannelOutput(
        data=out.data,
        mask=out.mask,
        keep=out.keep,
        channels=chans,
        channel_mask=np.ones((len(out.data), len(chans)), dtype=bool),
    )


def _read_union(
    read: Read,
    segments: Segments,
    store: Store,
    names: dict[int, tuple[str, ...]],
    union: tuple[str, ...],
    rec_rows: np.ndarray,
    out_of_bounds: OutOfBounds,
) -> ChannelOutput:
    """One read per channel list, laid on the ``union`` channels (zero where missing)."""
    n = len(segments)
    position = {name: i for i, name in enumerate(union)}
    groups: dict[tuple[str, ...], list[int]] = {}
    for r, chans in names.items():
        groups.setdefault(chans, []).append(r)
    data: np.ndarray | None = None
    mask: np.ndarray | None = None
    keep = rec_rows >= 0
    chan_mask = np.zeros((n, len(union)), dtype=bool)
    for chans, rows in groups.items():
        which = np.flatnonzero(np.isin(rec_rows, rows))
        out = read(segments.select(which), store, out_of_bounds=out_of_bounds)
        cols = np.array([position[c] for c in chans], dtype=np.int64)
        if out.keep is not None:
            keep[which] = out.keep
            which = which[out.keep]
        if data is None:
            data = np.zeros((n, len(union), *out.data.shape[2:]), dtype=np.float32)
        data[which[:, None], cols[None, :]] = out.data
        chan_mask[which[:, None], cols[None, :]] = True
        if out.mask is not None:
            if mask is None:
                mask = np.zeros((n, out.mask.shape[1]), dtype=bool)
            mask[which] = out.mask
    assert data is not None
    if out_of_bounds == "drop":
        return ChannelOutput(
            data=data[keep], keep=keep, channels=union, channel_mask=chan_mask[keep]
        )
    return ChannelOutput(data=data, mask=mask, channels=union, channel_mask=chan_mask)
