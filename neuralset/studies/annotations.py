"""Typed events from the annotations and stim channel of a recording file, through a declared map.

A file's annotations (EDF+ TAL, FIF annotations, BrainVision markers, EEGLAB events) and the
events coded in its stim channel (``mne.find_events``) carry a *description* (``"Stimulus/S  1"``,
``"T0"``; for stim events the integer value, as text: ``"32"``). :class:`EventMap` declares what
one description becomes: an event type, and fields. The map's keys are descriptions or shell-style
patterns (``"Stimulus/*"``); the first key that matches, in the map's order, wins (an exact key
always wins over patterns). Descriptions no key matches are *unmapped*: kept as ``Stimulus``
events (``description`` = the text, ``code`` = its trailing integer if any), dropped, or an
error, by choice; :func:`annotation_report` lists them with their counts either way.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Any, Literal

import numpy as np

from ..config import Config, ConfigError, config, register

__all__ = ["EventMap", "map_descriptions", "annotation_events", "stim_events", "Unmapped"]

Unmapped = Literal["keep", "drop", "error"]
_TRAILING_INT = re.compile(r"(-?\d+)\s*$")


@register("event_map")
@config
class EventMap(Config):
    """What an annotation (or stim-channel value) becomes.

    Parameters
    ----------
    type
        Event type (``Stimulus``, ``Word``, ``SleepStage``, ``Artifact``...).
    description
        The event's ``description`` (default: the annotation text).
    code
        The event's integer ``code`` (default: the stim value, or the annotation's trailing
        integer, ``"Stimulus/S 12"`` -> 12, else 0).
    fields
        Other fields of the type, e.g. ``{"text": "house"}`` for a ``Word`` (text types take the
        annotation text as ``text`` when not given).
    """

    type: str = "Stimulus"
    description: str | None = None
    code: int | None = None
    fields: dict[str, str | int | float] = dataclasses.field(default_factory=dict)

    def _check(self) -> None:
        from ..events import event_types

        if self.type not in event_types():
            raise ConfigError(
                f"EventMap.type: unknown event type {self.type!r}; use a registered type "
                "(Stimulus, Word, SleepStage, Artifact...) or register yours"
            )


def _lookup(mapping: dict[str, EventMap], description: str) -> EventMap | None:
    if description in mapping:
        return mapping[description]
    for key, value in mapping.items():
        if fnmatch.fnmatchcase(description, key):
            return value
    return None


def map_descriptions(
    descriptions: np.ndarray, mapping: dict[str, EventMap]
) -> tuple[list[EventMap | None], list[str]]:
    """The map entry of each description (None: unmapped) and the unmapped descriptions."""
    resolved: dict[str, EventMap | None] = {}
    for d in dict.fromkeys(descriptions.tolist()):
        resolved[str(d)] = _lookup(mapping, str(d))
    entries = [resolved[str(d)] for d in descriptions.tolist()]
    unmapped = [d for d, m in resolved.items() if m is None]
    return entries, unmapped


def _trailing_code(description: str) -> int:
    m = _TRAILING_INT.search(description)
    return int(m.group(1)) if m else 0


def _parts(
    onset: np.ndarray,
    duration: np.ndarray,
    descriptions: np.ndarray,
    codes: np.ndarray,
    mapping: dict[str, EventMap],
    unmapped: Unmapped,
    label: str,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Column parts for events of the given onsets, one part per (type, entry) group."""
    from ..events import TextEvent, event_type

    entries, missing = map_descriptions(descriptions, mapping)
    if missing and unmapped == "error":
        raise ConfigError(
            f"{label}: no event map for the descriptions {missing[:10]}; add them to "
            "annotations={...} (patterns such as 'Stimulus/*' work), or pass unmapped='keep' "
            "(Stimulus events) / 'drop'"
        )
    groups: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        if entry is None and unmapped == "drop":
            continue
        groups.setdefault(id(entry), []).append(i)
    parts = []
    for rows in groups.values():
        idx = np.asarray(rows)
        entry = entries[rows[0]] or EventMap()
        desc = [str(d) for d in descriptions[idx]]
        part: dict[str, Any] = {
            "type": entry.type,
            "start": onset[idx],
            "duration": duration[idx],
            "description": [
                entry.description if entry.description is not None else d for d in desc
            ],
        }
        if entry.code is not None:
            part["code"] = np.full(len(idx), entry.code, dtype=np.int64)
        else:
            part["code"] = codes[idx]
        for name, value in entry.fields.items():
            part[name] = value
        if issubclass(event_type(entry.type), TextEvent) and "text" not in part:
            part["text"] = desc
        parts.append(part)
    return parts, missing


def annotation_events(
    raw: Any, mapping: dict[str, EventMap], unmapped: Unmapped, label: str
) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """Parts of the events of ``raw.annotations`` (onsets in seconds from the first sample).

    Also returns the unmapped descriptions and all descriptions (for the report).
    """
    ann = raw.annotations
    if not len(ann):
        return [], [], np.zeros(0, dtype=object)
    # a raw's annotation onsets count from sample 0 of its clock (meas_date, or with no
    # meas_date the first_samp = 0 origin: set_annotations adds first_time to both), so the
    # time from the first sample is onset - first_time, as mne.events_from_annotations counts
    onset = np.asarray(ann.onset, dtype=np.float64) - raw.first_time
    duration = np.asarray(ann.duration, dtype=np.float64)
    descriptions = np.asarray(ann.description, dtype=object)
    codes = np.array([_trailing_code(str(d)) for d in descriptions], dtype=np.int64)
    parts, missing = _parts(onset, duration, descriptions, codes, mapping, unmapped, label)
    return parts, missing, descriptions


def stim_events(
    raw: Any,
    stim_channel: str,
    mapping: dict[str, EventMap],
    unmapped: Unmapped,
    label: str,
    shortest_event: int,
) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """Parts of the events ``mne.find_events`` finds in the stim channel (``"auto"``: MNE's)."""
    import mne

    channel = None if stim_channel == "auto" else stim_channel
    names = f"{', '.join(raw.ch_names[:20])}{'...' if len(raw.ch_names) > 20 else ''}"
    if channel is not None and channel not in raw.ch_names:
        raise ConfigError(f"{label}: no channel {channel!r} for stim_channel; channels: {names}")
    try:
        found = mne.find_events(
            raw, stim_channel=channel, shortest_event=shortest_event, verbose="error"
        )
    except ValueError as err:
        if channel is None and "No stim channel" in str(err):
            raise ConfigError(
                f"RecordingsStudy.stim_channel: 'auto' finds no stim channel in {label} (its "
                f"{len(raw.annotations)} annotations are events without it); name its trigger "
                "channel, stim_channel='<name>' (an EDF header types it EEG), or set "
                f"stim_channel=None, or leave the file out of files; channels: {names}"
            ) from None
        raise ConfigError(f"{label}: mne.find_events failed: {err}") from None
    if not len(found):
        return [], [], np.zeros(0, dtype=object)
    onset = (found[:, 0] - raw.first_samp) / raw.info["sfreq"]
    values = found[:, 2].astype(np.int64)
    descriptions = np.array([str(v) for v in values], dtype=object)
    parts, missing = _parts(
        onset.astype(np.float64),
        np.zeros(len(found)),
        descriptions,
        values,
        mapping,
        unmapped,
        label,
    )
    return parts, missing, descriptions
