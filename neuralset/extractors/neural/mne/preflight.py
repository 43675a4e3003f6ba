"""Preflight of the MNE extractors: every recording checked from its header before ``prepare``.

A recording not yet stored is read up to its header (never its data): it must be readable, have
channels of the picked types, span its event, be at the rate its event declares (``frequency``)
and carry the ``filter``, ``notch`` and causal design (every band below its Nyquist frequency).
Then the recordings are compared: one channel list (with ``channels="error"``), at least one
common channel (``"intersection"``), one sampling rate when ``frequency`` is None. Stored
recordings are compared through their entry's meta. A failure raises before anything is
computed, naming the recordings and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ....readers import unreadable_error
from ....store import Store
from .headers import check_rate, check_span, event_reader, with_event_bads

if TYPE_CHECKING:
    from .base import MneExtractor

__all__ = [
    "RecordingMismatchError",
    "scan_recordings",
    "check_one_rate",
    "check_channel_lists",
    "check_output_band",
    "check_source_band",
]


class RecordingMismatchError(ValueError):
    """Recordings of one extractor differ in channels or sampling rate; the message says how to fix."""


def scan_recordings(
    extractor: MneExtractor, events: pd.DataFrame, store: Store
) -> tuple[dict[str, tuple[str, ...]], dict[str, float]]:
    """Selected channels and source rate of each recording (by event label).

    Recordings not yet stored are checked (readable, channels of the picked types, span
    within the file) from their header; stored ones are read from their entry's meta.
    """
    name = type(extractor).__name__
    items = extractor.items(events)
    missing = set(store.missing([i.key for i in items]))
    channels: dict[str, tuple[str, ...]] = {}
    rates: dict[str, float] = {}
    declared = events["frequency"].to_numpy() if "frequency" in events.columns else None
    for item in items:
        label = item.payload["label"]
        if item.key in missing:
            try:
                path = Path(item.payload["path"])
                head = event_reader(extractor, path, item.payload).header(path)
            except Exception as err:
                raise unreadable_error(name, item.payload["path"], label, err) from err
            head = with_event_bads(head, item.payload)
            check_source_band(extractor, head.sfreq, item.payload["path"])
            channels[label] = tuple(extractor.select_channels(head, label))
            rates[label] = head.sfreq
            check_span(head, item.payload, label)
        else:
            meta = store.meta(item.key)
            # the sensors read (source-space outputs store them apart from their outputs)
            channels[label] = tuple(meta.get("sensor_names", meta["ch_names"]))
            rates[label] = float(meta["source_sfreq"])
        if declared is not None:
            check_rate(rates[label], declared[item.payload["row"]], label, item.payload["path"])
    return channels, rates


def check_output_band(extractor: MneExtractor) -> None:
    """``filter`` against the output rate (construction): a high-pass at or above the output's
    Nyquist frequency keeps nothing, a low-pass there does nothing (resampling to
    ``frequency`` already removes everything above it)."""
    from ....config import ConfigError

    if extractor.frequency is None:
        return
    name = type(extractor).__name__
    nyquist = extractor.frequency / 2
    low, high = extractor.filter
    at = f"the Nyquist frequency of the output ({nyquist:g} Hz, half of frequency={extractor.frequency:g})"
    if low is not None and low >= nyquist:
        raise ConfigError(
            f"{name}.filter: the high-pass at {low:g} Hz is at or above {at}, so it would keep "
            f"nothing of the signal; lower filter[0] below {nyquist:g} Hz, or raise frequency "
            f"above {2 * low:g} Hz"
        )
    if high is not None and high >= nyquist:
        raise ConfigError(
            f"{name}.filter: the low-pass at {high:g} Hz is at or above {at}, so it does "
            f"nothing (resampling removes everything above {nyquist:g} Hz); use ({low}, None), "
            f"a low-pass below {nyquist:g} Hz, or raise frequency above {2 * high:g} Hz"
        )


def check_source_band(extractor: MneExtractor, sfreq: float, path: str) -> None:
    """``filter``, ``notch`` and a modality's own bands against a recording's own rate
    (preflight, before any work): every cut-off of :meth:`MneExtractor.source_cutoffs
    <neuralset.extractors.neural.mne.MneExtractor.source_cutoffs>` below the file's Nyquist
    frequency, and every notch band-stop too (MNE's default band: ``f/200`` wide with 1 Hz
    transitions, so it reaches ``f + f/400 + 0.5`` Hz); with ``causal=True``, the whole
    causal design (its decimation included)."""
    from ....config import ConfigError

    name = type(extractor).__name__
    nyquist = sfreq / 2
    for line in extractor.notch:
        edge = line + line / 400 + 0.5
        if edge >= nyquist:
            highest = (nyquist - 0.5) * 400 / 401
            raise ConfigError(
                f"{name}.notch: the notch at {line:g} Hz stops a band up to {edge:g} Hz, at or "
                f"above the Nyquist frequency ({nyquist:g} Hz) of {path}, recorded at {sfreq:g} "
                f"Hz; keep only line frequencies below {highest:g} Hz (this file holds no line "
                "noise above its Nyquist frequency)"
            )
    if extractor.causal:
        extractor.causal_design(sfreq, f"{name} on {path}")
    for which, value in extractor.source_cutoffs():
        if value is not None and value >= nyquist:
            raise ConfigError(
                f"{name}.{which}: {value:g} Hz is at or above the Nyquist frequency "
                f"({nyquist:g} Hz) of {path}, recorded at {sfreq:g} Hz; set it below "
                f"{nyquist:g} Hz"
            )


def check_one_rate(extractor: MneExtractor, rates: dict[str, float]) -> None:
    """With ``frequency=None``, all recordings must share one sampling rate."""
    if extractor.frequency is None and len(set(rates.values())) > 1:
        name = type(extractor).__name__
        shown = ", ".join(f"{k}: {v:g} Hz" for k, v in list(rates.items())[:4])
        raise RecordingMismatchError(
            f"{name}: recordings have different sampling rates ({shown}); "
            f"set {name}.frequency to resample them to one rate"
        )


def check_channel_lists(extractor: MneExtractor, channels: dict[str, tuple[str, ...]]) -> None:
    """One channel list for all recordings (``channels="error"``), or at least one channel in
    common (``channels="intersection"``)."""
    name = type(extractor).__name__
    distinct = list(dict.fromkeys(channels.values()))
    if extractor.channels == "intersection":
        if distinct and not set(distinct[0]).intersection(*distinct[1:]):
            raise RecordingMismatchError(
                f"{name}: the {len(channels)} recordings share no channel; check picks and ch_names"
            )
    elif len(distinct) > 1:
        first = next(k for k, v in channels.items() if v == distinct[0])
        second = next(k for k, v in channels.items() if v == distinct[1])
        only1 = sorted(set(distinct[0]) - set(distinct[1]))
        only2 = sorted(set(distinct[1]) - set(distinct[0]))
        raise RecordingMismatchError(
            f"{name}: recordings select different channels: {first} has "
            f"{len(distinct[0])} ({', '.join(only1[:5]) or 'same set, other order'} not in the other), "
            f"{second} has {len(distinct[1])} ({', '.join(only2[:5]) or '-'} not in the first); "
            "pass channels='intersection', or ch_names=(...)"
            + (", or drop_bads=False" if extractor.drop_bads else "")
        )
