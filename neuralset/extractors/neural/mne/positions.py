"""Sensor positions of an MNE extractor's channels, for subject-agnostic models: :class:`ChannelPositions`.

Registered YAML kind: ``channel_positions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ....config import ConfigError, config, register
from ....hashing import chain_keys
from ....memo import Slot
from ....segments import Segments
from ....store import Store
from ...base import (
    Computed,
    Extractor,
    ExtractorNotPreparedError,
    Item,
    OutOfBounds,
    OutOfBoundsError,
    Output,
)
from ...meta.wrapper import Wrapper
from .base import MneExtractor

__all__ = ["ChannelPositions", "sensor_positions"]

#: Store key of each recording row's positions, per ``prepare_key``.
_POSITION_KEYS: Slot[dict[int, str]] = Slot("channel positions key per recording")

_DEVICE = 1  # FIFFV_COORD_DEVICE
_FAR = 10.0  # metres: farther than any sensor from the head


def sensor_positions(info: Any, frame: str = "native") -> np.ndarray:
    """``(channels, 3)`` positions in metres from ``info["chs"][i]["loc"][:3]``.

    ``frame="head"`` moves channels in device coordinates (MEG sensors) to the head frame with
    ``info["dev_head_t"]`` (:func:`mne.transforms.apply_trans`); EEG electrodes of a montage
    are already in head coordinates.
    """
    pos = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=np.float64)
    if frame == "head":
        device = np.array([int(ch["coord_frame"]) == _DEVICE for ch in info["chs"]])
        if device.any():
            from mne.transforms import apply_trans

            if info["dev_head_t"] is None:
                raise ValueError("ChannelPositions.frame='head': the file has no dev_head_t")
            pos[device] = apply_trans(info["dev_head_t"], pos[device])
    return pos


@register("channel_positions")
@config
class ChannelPositions(Wrapper):
    """Positions ``(batch, channels, 3)`` of the channels an MNE extractor reads, in its order.

    For each segment, the channels are those of ``extractor``'s output for that segment
    (:meth:`~neuralset.extractors.neural.mne.base.MneExtractor.output_channels`: its picks,
    bads, ``ch_names`` and ``channels`` mode), and each row is that channel's position from the
    recording file's measurement info (``info["chs"][i]["loc"][:3]``, metres; for EEG, the
    montage's positions). ``prepare`` reads each recording's header once (through the
    executor) and stores every channel's position, keyed by the inner recording's item.

    Parameters
    ----------
    extractor
        The MNE extractor whose channels are located (prepared too).
    frame
        ``"native"``: as stored in the file (MEG sensors in device coordinates, EEG in head
        coordinates); ``"head"``: MEG sensors moved to head coordinates with ``dev_head_t``.
    missing
        A channel without a position (all zeros, NaN, or farther than 10 m, as the unset
        positions of ``stim`` or ``misc`` channels): ``"error"`` (naming it) or ``"nan"``.
    """

    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation", "missing")

    extractor: Extractor
    frame: Literal["native", "head"] = "native"
    missing: Literal["error", "nan"] = "error"

    def _check(self) -> None:
        if not isinstance(self.extractor, MneExtractor):
            raise ConfigError(
                "ChannelPositions.extractor: an MNE recording extractor (MegExtractor, "
                f"EegExtractor, ...), got {type(self.extractor).__name__}"
            )

    def _derived(self) -> dict[str, Any]:
        return {"output": "static", "frequency": None}

    # -- prepare ------------------------------------------------------------------------
    def items(self, events: pd.DataFrame) -> list[Item]:
        out = []
        for item in self.extractor.items(events):
            key = chain_keys(self.prepare_key, item.key)
            payload = {"path": item.payload["path"], "row": item.payload["row"]}
            out.append(Item(key=key, label=f"positions of {item.label}", payload=payload))
        return out

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        inner = self.extractor
        assert isinstance(inner, MneExtractor)
        out = []
        for item in items:
            raw = inner.read_raw(Path(item.payload["path"]))  # the header only
            pos = sensor_positions(raw.info, self.frame)
            out.append(Computed(value={"names": list(raw.ch_names), "positions": pos}))
        return out

    # -- read ---------------------------------------------------------------------------
    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        inner = self.extractor
        assert isinstance(inner, MneExtractor)
        etype = inner.resolved_event_type
        rows = segments.index.covering(segments.timeline, segments.start, segments.start, etype)
        if out_of_bounds != "drop" and (rows < 0).any():
            bad = np.flatnonzero(rows < 0)[:3].tolist()
            raise OutOfBoundsError(
                f"ChannelPositions: segments {bad} start outside every {etype} recording; "
                f"keep them with segments.require('{etype}') or read with out_of_bounds='drop'"
            )
        names = inner.output_channels(segments, store)
        keys = self._keys(segments)
        data = np.zeros((len(segments), len(names), 3), dtype=np.float32)
        for row in np.unique(rows[rows >= 0]):
            data[rows == row] = self._located(store, keys[int(row)], names, int(row))
        if out_of_bounds == "drop":
            return Output(data=data[rows >= 0], keep=rows >= 0)
        if out_of_bounds == "pad":
            return Output(data=data, mask=(rows >= 0)[:, None])
        return Output(data=data)

    def _keys(self, segments: Segments) -> dict[int, str]:
        return segments.index.memo.get_or_set(
            _POSITION_KEYS,
            lambda: {int(i.payload["row"]): i.key for i in self.items(segments.events)},
            self.prepare_key,
        )

    def _located(self, store: Store, key: str, names: Sequence[str], row: int) -> np.ndarray:
        if not store.has(key):
            raise ExtractorNotPreparedError(
                f"ChannelPositions has no stored positions for recording row {row}; "
                "call extractor.prepare(events, store) first"
            )
        value = store.get_value(key)
        index = {n: i for i, n in enumerate(value["names"])}
        pos = np.asarray(value["positions"], dtype=np.float64)[[index[n] for n in names]]
        with np.errstate(invalid="ignore", over="ignore"):
            norm = np.linalg.norm(pos, axis=1)
        # no position: NaN, all zeros, or not a place on a head (> 10 m: uninitialised memory)
        lacking = ~np.isfinite(norm) | (norm == 0) | (norm > _FAR)
        if lacking.any():
            if self.missing == "error":
                shown = ", ".join(n for n, bad in zip(names, lacking) if bad)
                raise ValueError(
                    f"ChannelPositions: channel(s) {shown} of recording row {row} have no position "
                    "in the file's info (no montage, or not sensors); set a montage, exclude them "
                    "with the extractor's picks or ch_names, or use missing='nan'"
                )
            pos[lacking] = np.nan
        return pos.astype(np.float32)
