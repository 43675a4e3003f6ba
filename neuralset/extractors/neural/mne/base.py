"""The MNE recording pipeline shared by every MNE-read modality: :class:`MneExtractor`.

Each recording event (``Meg``, ``Eeg``) becomes one stored, time-major ``float32`` array
``(time, channels)`` at the extractor's ``frequency``, whose sample 0 is at the event's
``start`` on the timeline (the file is read from the event's ``offset``). Preprocessing, in order
(every step is the MNE call named, on the whole recording):

1. :meth:`MneExtractor.read_raw` - ``mne.io.read_raw(path, preload=False)``;
2. channel selection - channels whose type is in ``picks`` (file order), minus ``info["bads"]``
   with ``drop_bads``, restricted to (and ordered as) ``ch_names`` when given; then
   ``raw.pick(...)`` and ``raw.load_data()``;
3. :meth:`MneExtractor.preprocess` - modality-specific steps (EEG: ``raw.set_eeg_reference``);
4. ``raw.notch_filter(notch)`` then ``raw.filter(*filter)`` (FIR, MNE defaults; with
   ``causal=True``, the causal IIR filters of :mod:`~neuralset.extractors.neural.mne.causal`);
5. crop to ``[offset, offset + duration]`` at the native rate (only when that is not the whole
   file), then ``raw.resample(frequency)`` (with ``causal=True``: keep one sample in ``q``);
6. :meth:`MneExtractor.to_array` - ``raw.get_data().T``, then ``scaling`` (per channel, fitted on
   this recording; the statistics are stored in ``meta["scaling"]``, ``{"center": [...],
   "scale": [...]}``, where a stream can load them) and ``clamp``.

The output channel order is the selection order of step 2 (file order, or ``ch_names`` order);
the names are stored in the entry's ``meta["ch_names"]`` (with ``ch_types``, ``bads`` and the
source ``source_sfreq``). ``baseline`` is applied when reading, like ``mne.Epochs``: the mean of
the samples between ``trigger + tmin`` and ``trigger + tmax`` (both included, on the sample grid
of the trigger) is subtracted from every window. Segments without a trigger (sliding windows)
use their own start as the reference; the samples of the interval must lie in the recording
(``out_of_bounds="pad"``/``"drop"`` average the available ones, 0 when none).

Subclass :class:`MneExtractor` for other MNE-readable modalities (iEEG, EMG, fNIRS): set
``default_event_type`` and the default ``picks``, and override :meth:`MneExtractor.preprocess`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ....config import config
from ....hashing import KEY_UNLESS_DEFAULT
from ....memo import Slot
from ....readers import ReaderOptions, open_raw, unreadable_error
from ....segments import Segments
from ....store import MissingEntryError, Store
from ....validation import one_of, positive, require, required
from ...base import (
    ExtractorNotPreparedError,
    Item,
    OutOfBounds,
    Output,
    events_label,
    source_path,
)
from ...recording import RecordingExtractor
from .causal import CausalDesign, apply_causal, causal_design, decimate_raw
from .headers import (
    CHANNEL_TYPES,
    PICK_ALIASES,
    RecordingHeader,
    apply_event_channels,
    cached_header,
    check_span,
    event_bads,
    event_reader,
    event_stim_channel,
    fit_scaling,
    header_of,
    recording_identity,
    truncated_error,
)
from .preflight import (
    RecordingMismatchError,
    check_channel_lists,
    check_one_rate,
    check_output_band,
    scan_recordings,
)
from .read_steps import ChannelLayout, baseline_means, read_intersection

__all__ = [
    "MneExtractor",
    "CHANNEL_TYPES",
    "RecordingMismatchError",
]

#: :class:`ChannelLayout` per extractor ``prepare_key``, ``channels`` and store root.
_LAYOUT: Slot[ChannelLayout] = Slot("recording channel layout")


@config
class MneExtractor(RecordingExtractor):
    """Base of the MNE-read recording extractors (see the module docstring for the steps).

    Parameters
    ----------
    frequency
        Output (resampling) frequency in Hz; ``None`` keeps each file's rate (all recordings
        must then share it).
    picks
        Channel types to keep (MNE names such as ``"mag"``, ``"grad"``, ``"eeg"``, ``"misc"``;
        ``"meg"`` means mag + grad). Empty: the class default.
    ch_names
        Channel names to keep among the picked types (in this order); every name must exist.
    drop_bads
        Drop the channels listed in ``info["bads"]``.
    notch
        Line frequencies (Hz) removed with ``raw.notch_filter``.
    filter
        ``(low, high)`` cut-offs in Hz for ``raw.filter``: band-pass, high-pass
        ``(low, None)``, low-pass ``(None, high)`` or none ``(None, None)``.
    scaling
        Per-channel scaling fitted on each preprocessed recording: ``"robust"`` (median, and
        interquartile range), ``"standard"`` (mean, standard deviation) or ``None``.
    clamp
        Clip values to ``[-clamp, clamp]`` after scaling.
    baseline
        ``(tmin, tmax)`` in seconds relative to each segment's trigger (its start for sliding
        windows): the per-channel mean over that interval is subtracted when reading.
    channels
        When recordings select different channels: ``"error"`` (prepare fails naming them) or
        ``"intersection"`` (each recording is stored with its own channels; reading keeps the
        channels common to all recordings of the events table, in the first recording's order).
    reader_options
        Keyword arguments for ``mne.io.read_raw`` when a format needs them, e.g.
        ``{"data_format": "int16"}`` for Neuroscan ``.cnt`` files (the study's
        ``reader_options``; see :mod:`neuralset.readers`).
    causal
        Filter with causal IIR filters and resample by keeping one sample in ``q`` (see
        :mod:`~neuralset.extractors.neural.mne.causal`), so that a stream
        (:mod:`neuralset.streaming`) reproduces the stored series sample for sample.
    """

    default_picks: ClassVar[tuple[str, ...]] = ()
    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation", "baseline", "channels")

    picks: tuple[str, ...] = ()
    ch_names: tuple[str, ...] = ()
    drop_bads: bool = False
    notch: tuple[float, ...] = ()
    filter: tuple[float | None, float | None] = (None, None)
    scaling: Literal["robust", "standard"] | None = None
    clamp: float | None = None
    baseline: tuple[float, float] | None = None
    channels: Literal["error", "intersection"] = "error"
    reader_options: ReaderOptions = dataclasses.field(
        default_factory=dict, metadata=KEY_UNLESS_DEFAULT
    )
    causal: bool = dataclasses.field(default=False, metadata=KEY_UNLESS_DEFAULT)

    def _check(self) -> None:
        fix = "select channels by name with ch_names=(...)"
        one_of(self, "picks", CHANNEL_TYPES, what="channel type", fix=fix)
        required(
            self,
            "picks",
            "give at least one channel type, e.g. ('eeg',)",
            value=self.resolved_picks,
        )
        low, high = self.filter
        for label, value in (("low", low), ("high", high)):
            positive(self, "filter", "Hz", what=f"{label} cut-off", optional=True, value=value)
        require(
            low is None or high is None or low < high,
            self,
            "filter",
            f"low cut-off ({low} Hz) must be below the high cut-off ({high} Hz); "
            "use (low, None) for a high-pass or (None, high) for a low-pass",
        )
        check_output_band(self)
        for line in self.notch:
            positive(self, "notch", "Hz", what="line frequencies", value=line)
        positive(self, "clamp", optional=True)
        require(
            self.baseline is None or self.baseline[0] <= self.baseline[1],
            self,
            "baseline",
            f"tmin ({self.baseline and self.baseline[0]}) must not exceed tmax "
            f"({self.baseline and self.baseline[1]}); give (tmin, tmax) in seconds",
        )

    @property
    def resolved_picks(self) -> tuple[str, ...]:
        return self.picks or self.default_picks

    def _pick_types(self) -> set[str]:
        out: set[str] = set()
        for pick in self.resolved_picks:
            out.update(PICK_ALIASES.get(pick, (pick,)))
        return out

    # -- hooks ---------------------------------------------------------------------------
    def read_raw(self, path: Path) -> Any:
        """Open the recording (header only; data are loaded after channel selection)."""
        return open_raw(path, self.reader_options)

    def preprocess(self, raw: Any) -> Any:
        """Modality-specific steps on the loaded, channel-selected raw (override; default none)."""
        return raw

    def to_array(self, raw: Any) -> tuple[np.ndarray, float, dict[str, Any]]:
        """The final ``(time, channels)`` float32 array, its rate and metadata (scaling, clamp)."""
        data = raw.get_data().T
        meta: dict[str, Any] = {
            "ch_names": list(raw.ch_names),
            "ch_types": list(raw.get_channel_types()),
            "bads": list(raw.info["bads"]),
        }
        stats = self.scaling_stats(data)
        if stats is not None:
            data = (data - stats[0]) / stats[1]
            meta["scaling"] = {"center": stats[0].tolist(), "scale": stats[1].tolist()}
        if self.clamp is not None:
            np.clip(data, -self.clamp, self.clamp, out=data)
        return np.ascontiguousarray(data, dtype=np.float32), float(raw.info["sfreq"]), meta

    def scaling_stats(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-channel ``(center, scale)`` of ``scaling`` fitted on a ``(time, channels)`` array."""
        return fit_scaling(data, self.scaling)

    # -- channels and headers ------------------------------------------------------------
    def header(self, path: Path) -> RecordingHeader:
        """Channel names/types, bads, rate and length of a file (memoised by path, size, mtime)."""
        return cached_header(type(self).__qualname__, path, self.read_raw, self.reader_options)

    def select_channels(self, header: RecordingHeader, where: str) -> list[str]:
        """Names of the channels kept from a file, in output order (see ``picks``, ``ch_names``)."""
        wanted = self._pick_types()
        selected = [n for n, t in zip(header.names, header.types) if t in wanted]
        if self.drop_bads:
            selected = [n for n in selected if n not in header.bads]
        if self.ch_names:
            absent = [c for c in self.ch_names if c not in header.names]
            if absent:
                raise ValueError(
                    f"{type(self).__name__}.ch_names: channel(s) {', '.join(absent)} not in {where}"
                )
            other = [c for c in self.ch_names if c not in selected]
            if other:
                raise ValueError(
                    f"{type(self).__name__}.ch_names: channel(s) {', '.join(other)} of {where} are not "
                    f"of the picked types {self.resolved_picks}"
                    + (" or are marked bad" if self.drop_bads else "")
                )
            selected = list(self.ch_names)
        if not selected:
            raise ValueError(
                f"{type(self).__name__}: no channel of types {self.resolved_picks} in {where} "
                f"(its types: {', '.join(sorted(set(header.types)))}); change picks"
            )
        return selected

    # -- items ---------------------------------------------------------------------------
    def _rows_paths(self, events: pd.DataFrame) -> tuple[np.ndarray, list[Path]]:
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        paths = source_path(events, rows)
        absent = [(int(r), p) for r, p in zip(rows, paths) if not p.exists()]
        if absent:
            row, path = absent[0]
            more = f" (and {len(absent) - 1} more missing)" if len(absent) > 1 else ""
            raise FileNotFoundError(
                f"{type(self).__name__}: recording file not found: {path}, for "
                f"{events_label(events, row)}{more}; check the study path or remove these events"
            )
        return rows, paths

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows, paths = self._rows_paths(events)
        roots = events["study_root"].to_numpy() if "study_root" in events.columns else None
        timelines, starts = events["timeline"].to_numpy(), events["start"].to_numpy()
        durations = events["duration"].to_numpy()
        offsets = (
            events["offset"].to_numpy() if "offset" in events.columns else np.zeros(len(events))
        )
        out = []
        for row, path in zip(rows, paths):
            root = roots[row] if roots is not None else None
            ident = recording_identity(
                path, root if isinstance(root, str) else None, self.content_hash
            )
            offset = float(offsets[row]) if offsets[row] == offsets[row] else 0.0
            bads = event_bads(events, int(row))
            payload: dict[str, Any] = {
                "path": str(path),
                "row": int(row),
                "start": float(starts[row]),
                "duration": float(durations[row]),
                "offset": offset,
                "timeline": str(timelines[row]),
                "label": events_label(events, int(row)),
                "bads": bads,
            }
            identity: tuple[Any, ...] = (ident, offset, payload["duration"])
            if bads:
                identity += (tuple(bads),)
            if stim := event_stim_channel(events, int(row)):
                payload["stim_channel"], identity = stim, (*identity, ("stim", stim))
            key = self.item_key(*identity)
            out.append(Item(key=key, label=str(path), payload=payload))
        return out

    # -- prepare -------------------------------------------------------------------------
    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Check every recording before preparing: it exists, is readable and is consistent.

        Raises
        ------
        FileNotFoundError
            A recording file is missing (naming it and its event); nothing is computed.
        ValueError
            A recording cannot be read, its header contradicts its event (a ``frequency``
            other than the file's rate, a span past the end of the file), or recordings differ
            in channels (with ``channels="error"``) or sampling rate (with ``frequency=None``).
        """
        self.check_recordings(events, store)

    def check_recordings(self, events: pd.DataFrame, store: Store) -> None:
        """Preflight: read the header of every recording not yet stored; compare channels and rates
        (see :mod:`~neuralset.extractors.neural.mne.preflight`)."""
        channels, rates = scan_recordings(self, events, store)
        check_one_rate(self, rates)
        check_channel_lists(self, channels)

    def source_cutoffs(self) -> tuple[tuple[str, float | None], ...]:
        """``(field, Hz)`` of each cut-off that a recording's rate must carry: the preflight
        checks them below each file's Nyquist frequency, from its header. ``filter``'s here;
        a subclass adds those of its own steps (a band-pass in :meth:`preprocess`)."""
        return (("filter[0] (high-pass)", self.filter[0]), ("filter[1] (low-pass)", self.filter[1]))

    # -- compute -------------------------------------------------------------------------
    def notch_first(self) -> bool:
        """Whether ``notch`` runs inside :meth:`preprocess`, before a subclass's non-linear steps,
        instead of after it (override; the subclass's ``preprocess`` then applies it)."""
        return False

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        raw, source_sfreq = self.processed_raw(payload)
        data, sfreq, meta = self.to_array(raw)
        meta["source_sfreq"] = source_sfreq
        return data, sfreq, meta

    def processed_raw(self, payload: dict[str, Any]) -> tuple[Any, float]:
        """Steps 1-5 of the module docstring: the loaded, filtered, cropped and resampled raw.

        Returns the raw and the rate of the source file.
        """
        path = Path(payload["path"])
        label = payload.get("label", str(path))
        try:
            raw = event_reader(self, path, payload).read_raw(path)
        except Exception as err:
            raise unreadable_error(type(self).__name__, path, label, err) from err
        apply_event_channels(raw, payload)  # declared bads, and a trigger channel typed stim
        head = header_of(raw)
        names = self.select_channels(head, label)
        source_sfreq = head.sfreq
        raw.pick(names)
        if list(raw.ch_names) != names:
            raw.reorder_channels(names)
        try:
            raw.load_data(verbose="error")
        except (ValueError, OSError, EOFError) as err:  # a file cut short since its header read
            raise truncated_error(path, err) from err
        raw = self.preprocess(raw)
        design = self.filter_raw(raw, label)
        first, count = check_span(head, payload, label)
        if first != 0 or count != head.n_times:
            raw.crop(
                tmin=first / source_sfreq,
                tmax=(first + count - 1) / source_sfreq,
                include_tmax=True,
                verbose="error",
            )
        if design is not None:
            raw = decimate_raw(raw, design.decimation)
        elif self.frequency is not None and abs(self.frequency - source_sfreq) > 1e-9:
            raw.resample(self.frequency, verbose="error")
        return raw, source_sfreq

    def filter_raw(self, raw: Any, label: str) -> CausalDesign | None:
        """Step 4 on a loaded raw, in place: notch and band filters.

        With ``causal=False``: ``raw.notch_filter`` then ``raw.filter`` (MNE's zero-phase FIR
        defaults). With ``causal=True``: the causal IIR filters of
        :func:`~neuralset.extractors.neural.mne.causal.causal_design` (anti-alias included),
        whose design is returned (its ``decimation`` is applied after the crop). With
        :meth:`notch_first`, ``notch`` is left to :meth:`preprocess`, which ran before.
        """
        notch = () if self.notch_first() else self.notch
        if self.causal:
            design = causal_design(
                float(raw.info["sfreq"]), notch, self.filter, self.frequency, label
            )
            apply_causal(raw, design)
            return design
        every = np.arange(len(raw.ch_names))
        if notch:
            raw.notch_filter(list(notch), picks=every, verbose="error")
        if self.filter != (None, None):
            raw.filter(self.filter[0], self.filter[1], picks=every, verbose="error")
        return None

    def causal_design(self, sfreq: float, where: str = "") -> CausalDesign:
        """The causal filters and decimation of this extractor for a ``sfreq`` recording."""
        return causal_design(
            sfreq, self.notch, self.filter, self.frequency, where or type(self).__name__
        )

    # -- read ----------------------------------------------------------------------------
    def _layout(self, segments: Segments, store: Store) -> ChannelLayout:
        """Store key and channel names of every recording of the events table, and the output
        channels (memoised on the segments' event index, shared by selections)."""
        rows = self._rows(segments)
        self.recording_keys(segments, np.unique(rows[rows >= 0]))  # files replaced: new version
        return segments.index.memo.get_or_set(
            _LAYOUT,
            lambda: self._read_layout(segments, store),
            self.prepare_key,
            self.channels,
            str(store.root),
            self.keys_version(segments),
        )

    def _read_layout(self, segments: Segments, store: Store) -> ChannelLayout:
        events = segments.events
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        keys = self.recording_keys(segments, rows)
        names: dict[int, tuple[str, ...]] = {}
        for row, key in keys.items() if self.channels == "intersection" else ():
            try:
                names[row] = tuple(store.meta(key)["ch_names"])
            except MissingEntryError as err:
                raise ExtractorNotPreparedError(
                    f"{type(self).__name__} has no stored data for {events_label(events, row)}; "
                    "call extractor.prepare(events, store) first"
                ) from err
        return ChannelLayout.of(keys, names)

    def output_channels(self, segments: Segments, store: Store) -> tuple[str, ...]:
        """Names of the channels along axis 1 of :meth:`read`'s output for these segments."""
        layout = self._layout(segments, store)
        if self.channels == "intersection":
            return layout.common
        rows = self._rows(segments)
        present = np.unique(rows[rows >= 0])
        if not len(present):
            return ()
        return tuple(store.meta(layout.keys[int(present[0])])["ch_names"])

    def _rows(self, segments: Segments) -> np.ndarray:
        return segments.index.covering(
            segments.timeline, segments.start, segments.start, self.resolved_event_type
        )

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        """Windows of a batch (see the base class); ``channels`` and ``baseline`` applied here."""
        if self.channels == "intersection" and len(segments):
            out = self._read_intersection(segments, store, out_of_bounds)
        else:
            out = super().read(segments, store, out_of_bounds=out_of_bounds)
        if self.baseline is None or len(segments) == 0:
            return out
        base = self._baseline_means(segments, store, out_of_bounds)
        if out.keep is not None:
            base = base[out.keep]
        data = out.data - (base[..., None] if self.output == "dynamic" else base)
        if out.mask is not None and self.output == "dynamic":  # padding stays 0, as documented
            data = np.where(out.mask[:, None, :], data, np.float32(0))
        return dataclasses.replace(out, data=data.astype(np.float32, copy=False))

    def _read_intersection(
        self, segments: Segments, store: Store, out_of_bounds: OutOfBounds
    ) -> Output:
        return read_intersection(
            super().read, segments, store, self._layout(segments, store), self._rows(segments),
            out_of_bounds,
        )  # fmt: skip

    def _baseline_means(
        self, segments: Segments, store: Store, out_of_bounds: OutOfBounds
    ) -> np.ndarray:
        """Per segment and output channel, the mean over the baseline interval (0 where none)."""
        assert self.baseline is not None
        layout = self._layout(segments, store)
        rows = self._rows(segments)
        intersection = self.channels == "intersection"
        recordings = {}
        keys = self.recording_keys(segments, np.unique(rows[rows >= 0]))
        for r in keys:
            data, sfreq = self._open_recording(
                store, keys[r], segments.events, r, segments.index.memo
            )
            recordings[r] = (data, sfreq, layout.columns(r) if intersection else None)
        return baseline_means(segments, rows, recordings, self.baseline, out_of_bounds)
