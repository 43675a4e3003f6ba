"""Repeated presentations of one stimulus, aligned across timelines and repetitions.

The same sentence read by ten subjects, or twice by one, gives the same words at different
times on different timelines. :class:`AlignRepetitions` numbers each presentation and gives
every word the position it has in the stimulus's first (reference) presentation, matching the
words by sequence alignment when a presentation differs (a skipped or misread word), so that
the segments of the "same" word can be averaged or paired: ``aligned_id`` is equal exactly for
the words that correspond. :class:`StimulusTime` does the same for timed stimuli (an audio
file played several times): each event gets the stimulus it falls in and its time since the
stimulus's start.

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> words = validate_events(pd.DataFrame({
...     "type": "Word", "start": [0, 1, 2, 0, 1, 2, 3], "timeline": ["a"] * 3 + ["b"] * 4,
...     "text": ["the", "cat", "sat", "the", "uh", "cat", "sat"],
...     "sentence": ["The cat sat."] * 3 + ["the cat sat"] * 4}))
>>> out = AlignRepetitions(stimulus="sentence")(words)
>>> out["position"].tolist()  # "uh" has no partner in the reference presentation
[0, 1, 2, 0, -1, 1, 2]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .index import EventIndex
from .text_alignment import align_sequences, normalise
from .transforms import Transform

__all__ = ["AlignRepetitions", "StimulusTime"]


@register("align_repetitions")
@config
class AlignRepetitions(Transform):
    """Number the presentations of each stimulus and align their events to the first one.

    A presentation is a run of consecutive ``event_type`` events (per timeline, in time order)
    sharing the same ``stimulus`` value (compared case- and punctuation-insensitively), cut
    where the pause exceeds ``max_gap``. The reference presentation of a stimulus is its
    first one in (timeline name, start) order. Columns written on those events:

    * ``stimulus_id`` - code of the stimulus (-1 without one);
    * ``presentation`` - 0 for the reference, then 1, 2... over all timelines;
    * ``repetition`` - 0 for the first presentation of the stimulus on its timeline, then 1...;
    * ``position`` - position of the event in the reference (-1: no partner there);
    * ``aligned_id`` - equal for corresponding events of every presentation (-1: none).

    Parameters
    ----------
    event_type
        The aligned events (``"Word"``).
    stimulus
        Column naming the stimulus of each event (``"sentence"``, an audio ``filepath``...).
    text
        Column compared between presentations (``"text"``).
    max_gap
        Longest pause (s) inside one presentation (a longer one starts a new presentation, so
        that a sentence heard twice in a row counts twice); ``None``: no limit.
    """

    _version = 2  # 1: "don’t" / "don't" and NFD / NFC forms were different stimuli and words

    event_type: str = "Word"
    stimulus: str = "sentence"
    text: str = "text"
    max_gap: float | None = 2.0

    def _check(self) -> None:
        if self.max_gap is not None and self.max_gap <= 0:
            raise ConfigError(f"AlignRepetitions.max_gap: must be > 0 seconds, got {self.max_gap}")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        for col in (self.stimulus, self.text):
            if col not in events.columns:
                raise ConfigError(f"AlignRepetitions: no column {col!r} in the events")
        n = len(events)
        out = {
            k: np.full(n, -1, dtype=np.int64)
            for k in ("stimulus_id", "presentation", "repetition", "position", "aligned_id")
        }
        rows = np.flatnonzero(
            (events["type"] == self.event_type).to_numpy()
            & events[self.stimulus].notna().to_numpy()
        )
        if not len(rows):
            return events.assign(**out)
        tl_name = events["timeline"].astype(str).to_numpy()[rows]
        start = events["start"].to_numpy()[rows]
        order = np.lexsort((start, tl_name))
        rows, tl_name, start = rows[order], tl_name[order], start[order]
        stim_norm = normalise(events[self.stimulus].astype(str).to_numpy()[rows])
        stim_code, _ = pd.factorize(pd.Series(stim_norm, dtype=object))
        new = np.concatenate(
            [[True], (tl_name[1:] != tl_name[:-1]) | (stim_code[1:] != stim_code[:-1])]
        )
        if self.max_gap is not None:
            stop = start + events["duration"].to_numpy()[rows]
            new[1:] |= (start[1:] - stop[:-1]) > self.max_gap
        pres = np.cumsum(new) - 1  # presentation index, in (timeline, start) order
        pres_stim = stim_code[new]
        first_of = np.flatnonzero(new)
        rank = np.arange(len(rows)) - first_of[pres]
        tokens = normalise(events[self.text].astype(str).to_numpy()[rows])
        # presentations counted per stimulus (over all timelines) and per (timeline, stimulus)
        pres_frame = pd.DataFrame({"stim": pres_stim, "tl": tl_name[new]})
        presentation = pres_frame.groupby("stim").cumcount().to_numpy()
        repetition = pres_frame.groupby(["stim", "tl"]).cumcount().to_numpy()
        position = _positions(tokens, rank, pres, pres_stim, first_of)
        max_len = int(rank.max()) + 1
        aligned = np.where(position >= 0, stim_code * (max_len + 1) + position, -1)
        codes, _ = pd.factorize(aligned)
        aligned = np.where(position >= 0, codes, -1)
        out["stimulus_id"][rows] = stim_code
        out["presentation"][rows] = presentation[pres]
        out["repetition"][rows] = repetition[pres]
        out["position"][rows] = position
        out["aligned_id"][rows] = aligned
        return events.assign(**out)


def _positions(
    tokens: np.ndarray,
    rank: np.ndarray,
    pres: np.ndarray,
    pres_stim: np.ndarray,
    first_of: np.ndarray,
) -> np.ndarray:
    """Position of each token in the first presentation of its stimulus (-1: none).

    A presentation equal to its reference (same length, same tokens) is aligned by rank; only
    those that differ run through :func:`align_sequences`.
    """
    # the reference of each presentation: the first presentation of its stimulus
    ref = pd.Series(np.arange(len(first_of))).groupby(pres_stim).transform("first").to_numpy()
    length = np.diff(np.append(first_of, len(tokens)))
    token_code, _ = pd.factorize(pd.Series(tokens, dtype=object))
    mine_ref = ref[pres]
    inside = rank < length[mine_ref]
    ref_row = np.where(inside, first_of[mine_ref] + np.minimum(rank, length[mine_ref] - 1), 0)
    same = inside & (token_code == token_code[ref_row])
    equal = (np.minimum.reduceat(same, first_of) > 0) & (length == length[ref])
    position = rank.copy()
    for p in np.flatnonzero(~equal):
        mine = np.arange(first_of[p], first_of[p] + length[p])
        theirs = np.arange(first_of[ref[p]], first_of[ref[p]] + length[ref[p]])
        position[mine], _ = align_sequences(list(tokens[mine]), list(tokens[theirs]))
    return position


@register("stimulus_time")
@config
class StimulusTime(Transform):
    """The timed stimulus each event falls in, and the event's time since that stimulus began.

    For each event of ``event_types``, the ``stimulus_type`` event whose ``[start, stop)``
    holds its onset (the latest-starting one) gives ``stimulus`` (its ``key`` value) and ``stimulus_time`` (onset
    minus the stimulus's start, plus the stimulus's ``offset`` in its file), so that events of
    repeated presentations of one file line up on the file's time. Events in no stimulus get
    None and NaN.

    Parameters
    ----------
    stimulus_type
        The timed stimulus (``"Audio"``, ``"Video"``).
    event_types
        The events to place (``("Word",)``).
    key
        Column naming the stimulus (``"filepath"``).
    """

    # 1: an event under more than 64 shorter stimuli of the type found no stimulus, and one
    # starting where a stimulus ends was placed in it
    _version = 2

    stimulus_type: str = "Audio"
    event_types: tuple[str, ...] = ("Word",)
    key: str = "filepath"

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        if self.key not in events.columns:
            raise ConfigError(f"StimulusTime.key: no column {self.key!r} in the events")
        rows = np.flatnonzero(events["type"].isin(list(self.event_types)).to_numpy())
        start = events["start"].to_numpy()[rows]
        tl = events["timeline"].cat.codes.to_numpy()[rows]
        cover = EventIndex(events).containing(tl, start, self.stimulus_type)
        stim = np.full(len(events), None, dtype=object)
        stim_time = np.full(len(events), np.nan)
        ok = cover >= 0
        offset = (
            events["offset"].to_numpy(dtype=float)
            if "offset" in events.columns
            else np.zeros(len(events))
        )
        stim[rows[ok]] = events[self.key].astype(object).to_numpy()[cover[ok]]
        stim_time[rows[ok]] = (
            start[ok] - events["start"].to_numpy()[cover[ok]] + np.nan_to_num(offset[cover[ok]])
        )
        return events.assign(stimulus=stim, stimulus_time=stim_time)
