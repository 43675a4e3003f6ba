"""Vectorised validation of an events table (a pandas DataFrame, one row per event)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import event_from_row, event_type, event_types, required_fields

__all__ = [
    "validate_events",
    "check_events_table",
    "EventsError",
    "row",
    "from_events",
    "BASE_COLUMNS",
    "UNKNOWN_DURATION",
]

BASE_COLUMNS = ("type", "start", "duration", "timeline")
#: ``duration_source`` of a data event whose duration is not known yet (``duration`` is NaN)
UNKNOWN_DURATION = "unknown"


class EventsError(ValueError):
    """The events table is invalid; the message names the rows, column and fix."""


def _rows_hint(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:5])
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    return f"rows {shown}{more}"


def validate_events(events: pd.DataFrame) -> pd.DataFrame:
    """Return a validated copy of ``events`` with canonical dtypes.

    Checks, all vectorised: the base columns exist; every ``type`` is a registered event type
    (the error names the closest known types); fields required by each type are present and
    non-null; no NaN or infinite ``start``; no negative, NaN or infinite ``duration``;
    recording events (``Meg``, ``Eeg``, ``Fmri``... see ``Event.is_recording``) last more
    than 0 s (a recording left at
    duration 0 would give no sliding window and no segment inside it). A NaN ``duration`` is
    accepted only on rows whose ``duration_source`` is ``"unknown"``: a recording not fetched
    yet, whose metadata gives no duration (see :mod:`neuralset.studies.bids_metadata`); segments
    refuse such rows. The returned frame has a
    ``RangeIndex``, categorical ``type`` and ``timeline`` and float64 ``start``/``duration``;
    the input is never modified.

    Parameters
    ----------
    events
        One row per event; at least the columns ``type``, ``start`` and ``timeline``
        (``duration`` defaults to 0).

    Raises
    ------
    EventsError
        Naming the offending rows and column.
    """
    if not isinstance(events, pd.DataFrame):
        raise EventsError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    missing = [c for c in ("type", "start", "timeline") if c not in events.columns]
    if missing:
        raise EventsError(
            f"events table lacks the column(s) {', '.join(missing)}; every event needs "
            "type, start (s), duration (s, default 0) and timeline"
        )
    out = events.reset_index(drop=True)  # new frame; the input is never modified
    if "duration" not in out.columns:
        out["duration"] = 0.0
    types = out["type"].astype("category")
    known = event_types()
    unknown = [t for t in types.cat.categories if t not in known]
    if unknown:
        event_type(str(unknown[0]))  # raises with the closest names
    out["type"] = types.cat.remove_unused_categories()
    out["timeline"] = out["timeline"].astype(str).astype("category")
    for col in ("start", "duration"):
        try:
            out[col] = pd.to_numeric(out[col]).astype(np.float64)
        except (ValueError, TypeError) as err:
            raise EventsError(f"column {col!r} must be numeric (seconds): {err}") from None
    start = out["start"].to_numpy()
    duration = out["duration"].to_numpy()
    _check_times(start, duration)
    not_yet = np.zeros(len(out), dtype=bool)
    if "duration_source" in out.columns:
        # a recording whose file is not fetched yet may have no duration: NaN, said explicitly
        said = (out["duration_source"] == UNKNOWN_DURATION).to_numpy(dtype=bool)
        not_yet = np.isnan(duration) & said
    _check_recording_durations(out, duration, not_yet)
    bad = (np.isnan(duration) | (duration < 0)) & ~not_yet
    if bad.any():
        raise EventsError(
            f"duration is negative or NaN at {_rows_hint(bad)}; durations are >= 0 seconds"
        )
    codes = out["type"].cat.codes.to_numpy()
    for code, name in enumerate(out["type"].cat.categories):
        mask = codes == code
        for field in required_fields(str(name)):
            if field in BASE_COLUMNS:
                continue
            if field not in out.columns:
                raise EventsError(
                    f"events of type {name!r} need the field {field!r}, but the table has no "
                    f"{field!r} column ({_rows_hint(mask)})"
                )
            nulls = mask & out[field].isna().to_numpy()
            if nulls.any():
                raise EventsError(
                    f"{name} events need a non-null {field!r}: missing at {_rows_hint(nulls)}"
                )
    return out


_FIX = "pass it through neuralset.validate_events(events) first (a Study's events() already are)"


def check_events_table(
    events: object, where: str, rows: np.ndarray | None = None, nonempty: bool = False
) -> pd.DataFrame:
    """Refuse a table that has not been through :func:`validate_events`; return it.

    Cheap (no copy, no per-row Python): the base columns exist, ``type`` and ``timeline`` are
    categorical and ``start``/``duration`` float64, then the values of ``rows`` (of every row
    when None) are checked: no NaN start, no negative duration (what a table edited after
    validation may hold).

    With ``nonempty``, a table of 0 rows is refused too (nothing to segment).

    Raises
    ------
    EventsError
        Starting with ``where`` (the function or extractor refusing it), naming the column or
        rows and the fix.
    """
    if not isinstance(events, pd.DataFrame):
        raise EventsError(
            f"{where}: expected an events table (pandas DataFrame), got {type(events).__name__}"
        )
    missing = [c for c in BASE_COLUMNS if c not in events.columns]
    if missing:
        raise EventsError(
            f"{where}: the events table has no {', '.join(map(repr, missing))} column; {_FIX}"
        )
    for col, kind in (
        ("type", "category"),
        ("timeline", "category"),
        ("start", "float64"),
        ("duration", "float64"),
    ):
        if str(events[col].dtype) != kind:
            raise EventsError(
                f"{where}: the events table was not validated (its {col!r} column is "
                f"{events[col].dtype}, not {kind}); {_FIX}"
            )
    if nonempty and not len(events):
        raise EventsError(
            f"{where}: the events table is empty (0 rows): nothing to segment; check what built "
            "it (the study's events(), a Query or a split that selected nothing)"
        )
    start = events["start"].to_numpy()
    duration = events["duration"].to_numpy()
    if rows is not None:
        start, duration = start[rows], duration[rows]
    for bad, what in ((np.isnan(start), "start is NaN"), (duration < 0, "duration is negative")):
        if bad.any():
            where_rows = np.zeros(len(events), dtype=bool)
            where_rows[np.flatnonzero(bad) if rows is None else np.asarray(rows)[bad]] = True
            raise EventsError(
                f"{where}: {what} at {_rows_hint(where_rows)} of the events table (changed "
                f"after validation?); {_FIX}"
            )
    return events


def _check_times(start: np.ndarray, duration: np.ndarray) -> None:
    """No NaN start; no infinite start or duration (negative or NaN durations: the caller)."""
    bad = np.isnan(start)
    if bad.any():
        raise EventsError(f"start is NaN at {_rows_hint(bad)}; every event needs an onset")
    for col, values in (("start", start), ("duration", duration)):
        bad = np.isinf(values)  # "inf" in a file, or n_samples / frequency with a frequency of 0
        if bad.any():
            raise EventsError(
                f"{col} is infinite at {_rows_hint(bad)}; {col}s are finite seconds (a frequency "
                "of 0 in a division?)"
            )


def _check_recording_durations(
    events: pd.DataFrame, duration: np.ndarray, unknown: np.ndarray
) -> None:
    """Recording events must last > 0 s: a 0 (the default) would give no window inside them.

    Rows whose duration is explicitly unknown (files not fetched yet) are exempt.
    """
    codes = events["type"].cat.codes.to_numpy()
    for code, name in enumerate(events["type"].cat.categories):
        if not event_type(str(name)).is_recording:
            continue
        lacking = (codes == code) & ~(duration > 0) & ~unknown
        if lacking.any():
            first = int(np.flatnonzero(lacking)[0])
            where = f" ({events['filepath'].iloc[first]})" if "filepath" in events.columns else ""
            raise EventsError(
                f"{name} events need the duration of their recording (> 0 s): "
                f"{duration[first]:g} at {_rows_hint(lacking)}{where}; set it, or read it from "
                "the files' headers with neuralset.studies.fill_durations(events)"
            )


def row(events: pd.DataFrame, index: int):  # noqa: ANN201 - returns an Event
    """Build the typed event object of row ``index`` (for inspection, never on hot paths)."""
    return event_from_row({str(k): v for k, v in events.iloc[int(index)].items()})


def from_events(events: list) -> pd.DataFrame:  # noqa: ANN001
    """Build a validated table from a list of event objects or dicts."""
    records = [e.to_dict() if hasattr(e, "to_dict") else dict(e) for e in events]
    return validate_events(pd.DataFrame.from_records(records))
