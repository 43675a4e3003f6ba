"""Transforms: pure functions from an events table to a new events table.

Each transform is a frozen, callable config (so it has a structural key and a YAML form) and never
modifies the table it is given. :func:`chain` composes transforms into one value whose key folds
in the key of its input (see :meth:`Transform.output_key`).

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> events = validate_events(pd.DataFrame({
...     "type": ["Word", "Word", "Word"], "start": [0.0, 0.5, 1.0], "duration": 0.2,
...     "timeline": "run-1", "text": ["the", "cat", "sat"]}))
>>> pipeline = chain(AddContext(), Query(query="text != 'the'"))
>>> pipeline(events)["context"].tolist()
['the cat', 'the cat sat']
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal

import numpy as np
import pandas as pd

from ..config import Config, ConfigError, config, register
from ..hashing import KEY_UNLESS_DEFAULT, chain_keys
from ..validation import at_least, positive, require, unique
from .index import EventIndex
from .selectors import SelectorError, check_event_types, event_mask
from .table import validate_events

__all__ = ["Transform", "Query", "AssignSplits", "AddContext", "ChunkEvents", "Chain", "chain"]


@config
class Transform(Config):
    """Base of the transforms: ``__call__(events) -> events``, pure."""

    def __call__(self, events: pd.DataFrame) -> pd.DataFrame:
        self.check_type_fields()
        return validate_events(self._apply(events))

    def check_type_fields(self) -> None:
        """Refuse a ``*_type`` or ``*_types`` field naming no event type (``"word"``, ``"MEG"``):
        such a transform would silently find no event (a :class:`ConfigError` naming the field
        and the closest types). Checked when called, after every type is registered."""
        for field in dataclasses.fields(self):
            if not field.name.endswith(("_type", "_types")):
                continue
            value = getattr(self, field.name)
            names = [value] if isinstance(value, str) else list(value or ())
            try:
                check_event_types([str(n) for n in names])
            except SelectorError as err:
                raise ConfigError(f"{type(self).__name__}.{field.name}: {err}") from None

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def output_key(self, input_key: str) -> str:
        """Key of this transform's output: its own key folded with the key of its input."""
        return chain_keys(self.key, input_key)


@register("query")
@config
class Query(Transform):
    """Keep the events for which ``query`` (a :meth:`pandas.DataFrame.query` string) is true.

    Parameters
    ----------
    query
        E.g. ``"type in ['Meg', 'Word'] and timeline != 'sub-03'"``.
    keep_types
        Event types always kept whatever the query (e.g. recordings while filtering words).
    """

    query: str
    keep_types: tuple[str, ...] = ()

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        try:  # one True/False per row: a number, a text or a missing value is not a condition
            mask = event_mask(events, self.query)
        except ValueError as err:
            raise ConfigError(f"Query.query: {err}") from None
        if self.keep_types:
            mask = mask | events["type"].isin(list(self.keep_types)).to_numpy()
        return events[mask]


def _group_rank(values: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic pseudo-random score per group name (independent of order and process)."""
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(f"{seed}:{v}".encode(), digest_size=8).digest(), "little"
            )
            for v in values
        ],
        dtype=np.uint64,
    )


def check_splits_filled(
    owner: str, names: tuple[str, ...], ratios: tuple[float, ...], dealt: np.ndarray, what: str
) -> None:
    """Raise :class:`ConfigError` when a split with a positive ratio got none of the groups.

    ``dealt`` is the split index of each group; ``what`` names the groups (``"'subject'"``).
    With few groups, rounding the ratios leaves a split empty (3 subjects and the ratios
    0.8/0.1/0.1 give no test subject), which would go unnoticed until training.
    """
    counts = np.bincount(np.asarray(dealt, dtype=np.int64), minlength=len(names))
    empty = [n for n, r, c in zip(names, ratios, counts) if r > 0 and c == 0]
    if empty:
        got = ", ".join(f"{n!r}: {int(c)}" for n, c in zip(names, counts))
        raise ConfigError(
            f"{owner}.ratios: {'splits' if len(empty) > 1 else 'split'} "
            f"{', '.join(map(repr, empty))} {'get' if len(empty) > 1 else 'gets'} no group: "
            f"{len(dealt)} {what} "
            f"groups dealt with ratios {tuple(ratios)} give {got}; use fewer splits (names and "
            "ratios), ratios that give each split at least one group, or a finer grouping column"
        )


@register("assign_splits")
@config
class AssignSplits(Transform):
    """Assign train/val/test splits by group, deterministically from a seed.

    Groups (subjects, timelines, sentences...) are ordered by a keyed hash of their name and cut
    by the ratios, so no group crosses splits. With ``method="rank"`` (default) the split sizes
    follow the ratios to within one group, but adding a group moves the cut points: a group that
    was in ``val`` or ``test`` can land in ``train`` (a model trained before then sees it in the
    new test split). With ``method="hash"`` each group's split depends on its own name and the
    seed only, so adding groups never moves an existing one; the sizes then follow the ratios
    only in expectation. A split with a positive ratio that gets no group (3 subjects cut
    0.8/0.1/0.1) is an error.

    Parameters
    ----------
    by
        Column defining the groups (``"subject"``, ``"timeline"``, ``"sentence"``...). Rows
        without a group value get the split ``""``.
    ratios
        Fractions of groups for ``names`` (normalised).
    names
        Split names.
    seed
        Seed of the assignment.
    column
        Output column.
    method
        ``"rank"`` (cut the hash order by the ratios) or ``"hash"`` (stable when groups are
        added); see above.
    """

    by: str = "timeline"
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    names: tuple[str, ...] = ("train", "val", "test")
    seed: int = 0
    column: str = "split"
    method: Literal["rank", "hash"] = dataclasses.field(default="rank", metadata=KEY_UNLESS_DEFAULT)

    def _check(self) -> None:
        require(
            len(self.ratios) == len(self.names),
            self,
            "ratios",
            f"{len(self.ratios)} ratios for {len(self.names)} names; give one ratio per split name",
        )
        require(
            all(r >= 0 for r in self.ratios) and sum(self.ratios) > 0,
            self,
            "ratios",
            f"must be >= 0 with a positive sum, got {self.ratios}",
        )
        unique(self, "names")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        if self.by not in events.columns:
            raise ConfigError(
                f"AssignSplits.by: no column {self.by!r} in the events; available: "
                f"{', '.join(map(str, events.columns))}"
            )
        values = events[self.by]
        present = values.notna() & (values.astype(str) != "")
        groups = np.unique(values[present].astype(str).to_numpy())
        rank = _group_rank(groups, self.seed)
        ratios = np.asarray(self.ratios, dtype=float) / sum(self.ratios)
        if self.method == "hash":  # each group on its own: a uniform draw cut by the ratios
            edges = np.cumsum(ratios)
            edges[-1] = 1.0 + 1e-12
            order = np.arange(len(groups))
            dealt = np.searchsorted(edges, rank.astype(np.float64) / 2.0**64, side="right")
        else:
            order = np.argsort(rank, kind="stable")
            bounds = np.round(np.cumsum(ratios) * len(groups)).astype(int)
            dealt = np.searchsorted(bounds, np.arange(len(groups)), side="right")
        check_splits_filled("AssignSplits", self.names, self.ratios, dealt, f"{self.by!r}")
        mapping = dict(zip(groups[order], [self.names[int(k)] for k in dealt]))
        split = values.astype(str).map(mapping).where(present, "")
        return events.assign(**{self.column: split.astype("category")})


@register("add_context")
@config
class AddContext(Transform):
    """Add the sentence and the causal context to each word.

    ``sentence`` (when empty) is filled with the text of the Sentence event whose
    ``[start, stop)`` holds the word's onset; ``context`` is the text of the preceding words of the same scope followed by the word
    itself, so the word always ends its context.

    Parameters
    ----------
    event_type
        The word-like event type.
    scope
        ``"sentence"`` (context restarts at each sentence) or ``"timeline"``.
    max_words
        Keep at most this many words (the word included) in the context; ``None``: no limit.

    Notes
    -----
    Words with an empty or blank ``text`` are left out of every context (their own context is
    the words before them). With ``scope="sentence"``, consecutive words without a sentence
    (None, NaN, ``""`` or no Sentence event over them) share one scope, as a sentence would.
    """

    # 1: an empty or blank word entered the contexts (a double space); 2: with scope="sentence",
    # words whose sentence was NaN (not None) each had a context of their own, and a word
    # starting where a Sentence event ends took that sentence
    _version = 3

    event_type: str = "Word"
    scope: Literal["sentence", "timeline"] = "timeline"
    max_words: int | None = None

    def _check(self) -> None:
        at_least(self, "max_words", 1, optional=True)

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        events = validate_events(events)
        words = np.flatnonzero((events["type"] == self.event_type).to_numpy())
        sentence = (
            events["sentence"].astype(object).to_numpy().copy()
            if "sentence" in events.columns
            else np.full(len(events), None, dtype=object)
        )
        if (events["type"] == "Sentence").any():
            index = EventIndex(events)
            starts = events["start"].to_numpy()[words]
            tl = events["timeline"].cat.codes.to_numpy()[words]
            cover = index.containing(tl, starts, "Sentence")
            texts = events["text"].astype(object).to_numpy()
            empty = np.array([not isinstance(s, str) or not s for s in sentence[words]], dtype=bool)
            fill = empty & (cover >= 0)
            sentence[words[fill]] = texts[cover[fill]]
        context = np.full(len(events), None, dtype=object)
        order = words[
            np.lexsort(
                (events["start"].to_numpy()[words], events["timeline"].cat.codes.to_numpy()[words])
            )
        ]
        text = events["text"].astype(object).to_numpy()
        tl_codes = events["timeline"].cat.codes.to_numpy()
        # one key for "no sentence": NaN != NaN would make each such word a scope of its own
        no_sentence = pd.isna(sentence) | (sentence == "")
        scope_of = sentence.copy()
        scope_of[no_sentence] = None
        history: list[str] = []
        prev_scope: tuple[object, ...] | None = None
        for row in order:
            scope = (tl_codes[row], scope_of[row]) if self.scope == "sentence" else (tl_codes[row],)
            if scope != prev_scope:
                history = []
                prev_scope = scope
            if not isinstance(text[row], str) or not text[row].strip():
                context[row] = " ".join(history)  # an empty or blank word adds nothing
                continue
            history.append(text[row])
            if self.max_words is not None and len(history) > self.max_words:
                history = history[-self.max_words :]
            context[row] = " ".join(history)
        return events.assign(sentence=sentence, context=context)


@register("chunk_events")
@config
class ChunkEvents(Transform):
    """Split long data events into chunks of at most ``max_duration``, on their sample grid.

    Each chunk keeps the event's fields, with ``start``, ``duration`` and ``offset`` (time in the
    file) advanced by a whole number of samples (``frequency`` of the event; plain seconds when it
    is 0).

    Parameters
    ----------
    event_type
        Type of the events to split (e.g. ``"Meg"``); other events are kept as they are.
    max_duration
        Longest chunk, in seconds (> 0).
    """

    event_type: str
    max_duration: float

    def _check(self) -> None:
        positive(self, "max_duration", "seconds")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        mask = (events["type"] == self.event_type).to_numpy()
        if not mask.any():
            return events
        long = events[mask]
        freq = (
            long["frequency"].to_numpy(dtype=float) if "frequency" in long else np.zeros(len(long))
        )
        # whole samples per chunk; the tolerance keeps 0.29 s * 100 Hz (28.999999999999996) at 29
        step = np.where(
            freq > 0,
            np.floor(self.max_duration * freq + 1e-6) / np.where(freq > 0, freq, 1),
            self.max_duration,
        )
        if (step <= 0).any():
            raise ConfigError(
                f"ChunkEvents.max_duration: {self.max_duration} s is shorter than one sample of some "
                f"{self.event_type} events"
            )
        duration = long["duration"].to_numpy()
        counts = np.maximum(np.ceil(duration / step - 1e-9).astype(np.int64), 1)
        rep = np.repeat(np.arange(len(long)), counts)
        k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        delta = k * step[rep]
        chunks = long.iloc[rep].copy()
        chunks["start"] = long["start"].to_numpy()[rep] + delta
        chunks["duration"] = np.minimum(step[rep], duration[rep] - delta)
        offset = long["offset"].to_numpy(dtype=float) if "offset" in long else np.zeros(len(long))
        chunks["offset"] = np.nan_to_num(offset)[rep] + delta
        out = pd.concat([events[~mask], chunks], ignore_index=True)
        return out.sort_values(["timeline", "start"], kind="stable")


@register("chain")
@config
class Chain(Transform):
    """Transforms applied in order; itself a transform (see :func:`chain`).

    Parameters
    ----------
    steps
        The transforms, applied first to last.
    """

    steps: tuple[Transform, ...] = ()

    def __call__(self, events: pd.DataFrame) -> pd.DataFrame:
        for step in self.steps:
            events = step(events)
        return validate_events(events)

    def output_key(self, input_key: str) -> str:
        key = input_key
        for step in self.steps:
            key = step.output_key(key)
        return key


def chain(*transforms: Transform) -> Chain:
    """Compose transforms left to right into a :class:`Chain`.

    Parameters
    ----------
    *transforms
        The transforms, applied in this order."""
    return Chain(steps=tuple(transforms))
