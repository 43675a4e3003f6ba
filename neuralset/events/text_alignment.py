"""Text alignment: sentences from words, and a transcript matched to the word events.

* :class:`SentencesFromWords` - ``Sentence`` events (and each word's ``sentence``) from the words
  alone: a sentence ends at a word ending with terminal punctuation, or at a pause longer than
  ``max_gap``.
* :func:`align_words` / :class:`AlignTranscript` - the words of a transcript (with its
  punctuation, casing and sentences) matched to the word events by sequence alignment
  (:class:`difflib.SequenceMatcher` over integer codes of normalised tokens), with a report of
  the words on either side that found no partner; the aligned text gives each word its
  transcript form, its sentence and a causal ``context``.

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> words = validate_events(pd.DataFrame({
...     "type": "Word", "start": [0.0, 0.4, 0.8, 2.5, 2.9], "duration": 0.3, "timeline": "r",
...     "text": ["the", "cat", "sat", "it", "slept"]}))
>>> out = SentencesFromWords(max_gap=1.0)(words)
>>> out.loc[out["type"] == "Sentence", "text"].tolist()
['the cat sat', 'it slept']
>>> alignment = align_words(["the", "cat", "sat", "uh", "it", "slept"], "The cat sat. It slept!")
>>> alignment.event_to_token.tolist(), alignment.unmatched_events.tolist()
([0, 1, 2, -1, 3, 4], [3])
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from ..validation import at_least, positive
from .table_utils import timeline_constants
from .transforms import Transform

__all__ = [
    "Tokens", "Alignment", "tokenize", "normalise", "join_groups", "align_sequences",
    "align_words", "SentencesFromWords", "AlignTranscript", "AlignmentError",
]  # fmt: skip

#: typographic apostrophes and quotes written inside words (``don’t``, ``l’homme``)
_APOSTROPHES = "[\u2018\u2019\u02bc\u2032`\u00b4]"
_SENTENCE_END = re.compile(r"[.!?…]+[\"'»”’)\]]*$")


class AlignmentError(ValueError):
    """Too many words found no partner; the message carries the alignment report."""


def normalise(tokens: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
    """Tokens case-folded, without punctuation (``"Cat,"`` -> ``"cat"``).

    Unicode forms are unified first (NFKC: a decomposed ``"café"`` or the ligature ``"ﬁ"`` read
    as typed), typographic apostrophes become ``'`` (``"don’t"`` -> ``"don't"``) and case is
    folded (``"Straße"`` -> ``"strasse"``). Each distinct token is normalised once
    (:func:`pandas.factorize`), then broadcast.
    """
    values = np.asarray(
        tokens.to_numpy() if isinstance(tokens, pd.Series) else list(tokens), dtype=object
    )
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    text = pd.Series(distinct, dtype=object).astype(str).str.normalize("NFKC").str.casefold()
    text = text.str.replace(_APOSTROPHES, "'", regex=True)
    clean = text.str.replace(r"[^\w']+|^'+|'+$", "", regex=True).to_numpy(dtype=object)
    return clean[codes] if len(values) else np.zeros(0, dtype=object)


def join_groups(texts: np.ndarray, first: np.ndarray, sep: str = " ") -> np.ndarray:
    """``sep.join`` of the consecutive runs of ``texts`` starting at the positions ``first``.

    One ``numpy.add.reduceat`` over the strings (no Python call per run).
    """
    if not len(texts):
        return np.zeros(0, dtype=object)
    joined = np.add.reduceat(np.asarray(texts, dtype=object) + sep, np.asarray(first))
    return pd.Series(joined, dtype=object).str[: -len(sep) or None].to_numpy(dtype=object)


@dataclasses.dataclass(frozen=True)
class Tokens:
    """The words of a text with their character spans and sentence.

    Attributes
    ----------
    text
        The whole text.
    words
        Each word as written (punctuation attached).
    norm
        Each word normalised (:func:`normalise`).
    start, stop
        Character span of each word in ``text``.
    sentence
        Sentence index of each word.
    sentence_start, sentence_stop
        Character span of each sentence.
    """

    text: str
    words: np.ndarray
    norm: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    sentence: np.ndarray
    sentence_start: np.ndarray
    sentence_stop: np.ndarray

    def sentences(self) -> list[str]:
        """The text of each sentence (whitespace collapsed)."""
        return [
            " ".join(self.text[a:b].split())
            for a, b in zip(self.sentence_start, self.sentence_stop)
        ]


def tokenize(text: str) -> Tokens:
    """Split a text into words (whitespace-separated, punctuation-only pieces joined to the
    previous word) and sentences (ending at ``.``, ``!``, ``?`` or a blank line)."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    pieces = [text[a:b] for a, b in spans]
    has_word = np.array([bool(re.search(r"\w", p)) for p in pieces], dtype=bool)
    # a punctuation-only piece joins the previous word ("word ," -> "word ,")
    owner = (
        np.maximum.accumulate(np.where(has_word, np.arange(len(pieces)), -1))
        if pieces
        else np.zeros(0, int)
    )
    keep = np.flatnonzero(has_word)
    start = np.array([spans[i][0] for i in keep], dtype=np.int64)
    stop_of = np.array([b for _, b in spans], dtype=np.int64)
    stop = np.zeros(len(keep), dtype=np.int64)
    if len(keep):
        last = pd.Series(np.arange(len(pieces))[owner >= 0]).groupby(owner[owner >= 0]).max()
        stop = stop_of[last.reindex(keep).to_numpy()]
    words = np.array([text[a:b] for a, b in zip(start, stop)], dtype=object)
    ends = np.array([bool(_SENTENCE_END.search(w)) for w in words], dtype=bool)
    if len(words) > 1:  # a blank line also ends a sentence
        ends[:-1] |= np.array(
            ["\n\n" in text[b:a].replace("\r", "") for b, a in zip(stop[:-1], start[1:])],
            dtype=bool,
        )
    sentence = (
        np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
        if len(words)
        else np.zeros(0, np.int64)
    )
    first = (
        np.flatnonzero(np.concatenate([[True], sentence[1:] != sentence[:-1]]))
        if len(words)
        else np.zeros(0, int)
    )
    last_word = np.append(first[1:] - 1, len(words) - 1) if len(words) else np.zeros(0, int)
    return Tokens(
        text=text,
        words=words,
        norm=normalise(words),
        start=start,
        stop=stop,
        sentence=sentence,
        sentence_start=start[first] if len(words) else np.zeros(0, np.int64),
        sentence_stop=stop[last_word] if len(words) else np.zeros(0, np.int64),
    )


def _collapse_spaces(text: str) -> tuple[str, np.ndarray]:
    """``text`` with each run of whitespace made one space, and the new position of each
    character (vectorised over the code points)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if not len(codes):
        return "", np.zeros(0, dtype=np.int64)
    distinct, inverse = np.unique(codes, return_inverse=True)
    space = np.array([chr(int(c)).isspace() for c in distinct], dtype=bool)[inverse]
    keep = ~space | np.concatenate([[True], ~space[:-1]])
    out = np.where(space, np.uint32(32), codes)[keep]
    return out.tobytes().decode("utf-32-le"), np.cumsum(keep) - 1


def align_sequences(a: Sequence[str], b: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Position in ``b`` of each item of ``a`` (-1: no partner) and whether it is an exact match.

    Items are compared as given (normalise them first). Runs of equal length that differ
    (``"colour"`` / ``"color"``) are paired as substitutions (``exact`` False); other
    differences leave items without a partner.
    """
    codes, _ = pd.factorize(pd.Series([*a, *b], dtype=object))
    ca, cb = codes[: len(a)].tolist(), codes[len(a) :].tolist()
    a_to_b = np.full(len(a), -1, dtype=np.int64)
    exact = np.zeros(len(a), dtype=bool)
    matcher = difflib.SequenceMatcher(None, ca, cb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            a_to_b[i1:i2] = np.arange(j1, j2)
            exact[i1:i2] = tag == "equal"
    return a_to_b, exact


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Word events matched to the words of a transcript.

    Attributes
    ----------
    event_to_token
        Per word event (in the order given), its position in the transcript's words, or -1.
    exact
        Whether each matched pair is identical once normalised (False: a substitution).
    unmatched_events
        Positions of the word events without a transcript word.
    unmatched_tokens
        Positions of the transcript words without a word event.
    tokens
        The transcript's :class:`Tokens`.
    events
        The word events' texts (as given).
    """

    event_to_token: np.ndarray
    exact: np.ndarray
    unmatched_events: np.ndarray
    unmatched_tokens: np.ndarray
    tokens: Tokens
    events: np.ndarray

    @property
    def unmatched_fraction(self) -> float:
        """Fraction of word events without a partner."""
        return len(self.unmatched_events) / max(len(self.events), 1)

    def summary(self, name: str = "") -> str:
        """One line: counts and the first unmatched words on each side."""
        n = len(self.events)
        matched = n - len(self.unmatched_events)
        subs = int(((self.event_to_token >= 0) & ~self.exact).sum())
        ev = ", ".join(repr(str(self.events[i])) for i in self.unmatched_events[:5])
        tok = ", ".join(repr(str(self.tokens.words[i])) for i in self.unmatched_tokens[:5])
        head = f"{name}: " if name else ""
        return (
            f"{head}{matched} of {n} word events matched ({subs} substituted); "
            f"{len(self.unmatched_events)} without a transcript word"
            + (f" (e.g. {ev})" if ev else "")
            + f"; {len(self.unmatched_tokens)} transcript words without an event"
            + (f" (e.g. {tok})" if tok else "")
        )


def align_words(words: Sequence[str] | np.ndarray, transcript: str | Tokens) -> Alignment:
    """Match word events (their texts, in time order) to the words of a transcript.

    Parameters
    ----------
    words
        The texts of the word events, in time order.
    transcript
        The transcript text, or its :class:`Tokens`.
    """
    tokens = transcript if isinstance(transcript, Tokens) else tokenize(transcript)
    events = np.asarray(list(words), dtype=object)
    a_to_b, exact = align_sequences(list(normalise(events)), list(tokens.norm))
    used = np.zeros(len(tokens.words), dtype=bool)
    used[a_to_b[a_to_b >= 0]] = True
    return Alignment(
        event_to_token=a_to_b,
        exact=exact,
        unmatched_events=np.flatnonzero(a_to_b < 0),
        unmatched_tokens=np.flatnonzero(~used),
        tokens=tokens,
        events=events,
    )


@register("sentences_from_words")
@config
class SentencesFromWords(Transform):
    """``Sentence`` events from the word events, and each word's ``sentence``.

    A sentence ends after a word ending with terminal punctuation (``. ! ? …``, quotes or
    brackets after it allowed), before a pause longer than ``max_gap`` seconds, and at the end
    of a timeline. Sentence events span their first word's onset to their last word's offset,
    and keep the columns that have one value per timeline on the words (``subject``...).

    Parameters
    ----------
    event_type
        The word type.
    max_gap
        Longest pause (s) inside a sentence; ``None``: punctuation only.
    rebuild
        Drop existing ``Sentence`` events first (otherwise having some is an error).
    """

    _version = 2  # 1: Sentence events had no subject, session... (no split by them)

    event_type: str = "Word"
    max_gap: float | None = 2.0
    rebuild: bool = False

    def _check(self) -> None:
        positive(self, "max_gap", "seconds", optional=True)

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        has = (events["type"] == "Sentence").to_numpy()
        if has.any() and not self.rebuild:
            raise ConfigError(
                f"SentencesFromWords: the events already have {int(has.sum())} Sentence events; "
                "pass rebuild=True to rebuild them from the words"
            )
        events = events[~has]
        rows = np.flatnonzero((events["type"] == self.event_type).to_numpy())
        if not len(rows):
            raise ConfigError(f"SentencesFromWords: no {self.event_type} events")
        tl = events["timeline"].cat.codes.to_numpy()[rows]
        start = events["start"].to_numpy()[rows]
        order = rows[np.lexsort((start, tl))]
        tl, start = (
            events["timeline"].cat.codes.to_numpy()[order],
            events["start"].to_numpy()[order],
        )
        stop = start + events["duration"].to_numpy()[order]
        text = events["text"].astype(str).to_numpy()[order]
        codes, distinct = pd.factorize(text)  # each distinct word is matched once
        ends_distinct = pd.Series(distinct, dtype=object).str.contains(_SENTENCE_END.pattern)
        ends = ends_distinct.to_numpy(dtype=bool)[codes]
        ends[:-1] |= tl[1:] != tl[:-1]
        if self.max_gap is not None:
            ends[:-1] |= (start[1:] - stop[:-1]) > self.max_gap
        sid = np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
        first = np.flatnonzero(np.concatenate([[True], sid[1:] != sid[:-1]]))  # first word of each
        sentence_text = join_groups(text.astype(object), first)
        last_stop = pd.Series(stop).groupby(sid).max().to_numpy()
        words = events.copy()
        sentence_col = (
            words["sentence"].astype(object).to_numpy().copy()
            if "sentence" in words
            else np.full(len(words), None, dtype=object)
        )
        sentence_col[order] = sentence_text[sid]
        words["sentence"] = sentence_col
        sentences = pd.DataFrame(
            {
                "type": "Sentence",
                "start": start[first],
                "duration": last_stop - start[first],
                "timeline": events["timeline"].cat.categories[tl[first]],
                "text": sentence_text,
            }
        )
        sentences = sentences.assign(**timeline_constants(events, order, tl, first))
        out = pd.concat([words, sentences], ignore_index=True)
        return out.sort_values(["timeline", "start"], kind="stable")


@register("align_transcript")
@config
class AlignTranscript(Transform):
    """Match each timeline's word events to its transcript and take the text from it.

    The transcript of a timeline is the text of its ``transcript_type`` events, in time order.
    Word events (in time order) are matched to the transcript's words (see :func:`align_words`)
    and get: ``transcript_word`` (the word as written, with punctuation; None without a match),
    ``word_index`` (its position in the transcript, -1 without one), ``sentence`` and
    ``sentence_index`` (its transcript sentence; an unmatched word takes those of the previous
    matched word), ``context`` (the transcript text from the start of the scope to the word,
    at most ``context_words`` words; an unmatched word appends its own text to its predecessor's)
    and ``aligned`` (bool).

    Parameters
    ----------
    event_type
        The word type.
    transcript_type
        The type of the events holding the transcript text (``"Text"``).
    max_unmatched
        Largest fraction of word events allowed without a partner, per timeline; more is an
        :class:`AlignmentError` with the report.
    context_words
        Longest context in words (the word included; default 256, more than most language
        models read); ``None``: no limit, whose memory grows as the square of the transcript.
    scope
        Context restarts at each ``"sentence"`` or runs over the ``"timeline"``.
    """

    # 1: "don’t" / "don't", NFD / NFC forms and "ß" / "ss" did not match, and the context of
    # a word without a transcript word could exceed context_words
    _version = 2

    event_type: str = "Word"
    transcript_type: str = "Text"
    max_unmatched: float = 0.1
    context_words: int | None = 256
    scope: Literal["sentence", "timeline"] = "timeline"

    def _check(self) -> None:
        if not 0.0 <= self.max_unmatched <= 1.0:
            raise ConfigError(
                f"AlignTranscript.max_unmatched: must be in [0, 1], got {self.max_unmatched}"
            )
        at_least(self, "context_words", 1, optional=True)

    def alignments(self, events: pd.DataFrame) -> dict[str, tuple[np.ndarray, Alignment]]:
        """Per timeline: the word rows (in time order) and their :class:`Alignment`."""
        out: dict[str, tuple[np.ndarray, Alignment]] = {}
        is_word = (events["type"] == self.event_type).to_numpy()
        is_text = (events["type"] == self.transcript_type).to_numpy()
        tl = events["timeline"].astype(str).to_numpy()
        start = events["start"].to_numpy()
        for name in pd.unique(tl[is_word]):  # once per timeline
            texts = np.flatnonzero(is_text & (tl == name))
            if not len(texts):
                raise ConfigError(
                    f"AlignTranscript: timeline {name!r} has {self.event_type} events but no "
                    f"{self.transcript_type} event holding its transcript"
                )
            transcript = "\n\n".join(
                events["text"]
                .astype(str)
                .to_numpy()[texts[np.argsort(start[texts], kind="stable")]]
            )
            rows = np.flatnonzero(is_word & (tl == name))
            rows = rows[np.argsort(start[rows], kind="stable")]
            out[str(name)] = (
                rows,
                align_words(events["text"].astype(str).to_numpy()[rows], transcript),
            )
        return out

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        n = len(events)
        cols = {
            "transcript_word": np.full(n, None, dtype=object),
            "word_index": np.full(n, -1, dtype=np.int64),
            "sentence": np.full(n, None, dtype=object),
            "sentence_index": np.full(n, -1, dtype=np.int64),
            "context": np.full(n, None, dtype=object),
            "aligned": np.zeros(n, dtype=bool),
        }
        reports = []
        texts = events["text"].astype(str).to_numpy()
        for name, (rows, al) in self.alignments(events).items():
            if al.unmatched_fraction > self.max_unmatched:
                reports.append(al.summary(name))
                continue
            self._fill(cols, rows, al, texts)
        if reports:
            raise AlignmentError(
                f"AlignTranscript: more than {self.max_unmatched:.0%} of the word events found no "
                "transcript word in " + "; ".join(reports) + ". Check the transcript, or raise "
                "max_unmatched"
            )
        return events.assign(**cols)

    def _fill(
        self, cols: dict[str, np.ndarray], rows: np.ndarray, al: Alignment, texts: np.ndarray
    ) -> None:
        tok = al.tokens
        pos = al.event_to_token
        ok = pos >= 0
        sentences = np.asarray(tok.sentences(), dtype=object)
        # unmatched words take the sentence of the previous matched word (or the next one)
        carry = pd.Series(np.where(ok, pos, np.nan)).ffill().bfill()
        ref = carry.to_numpy(dtype=float)
        has_ref = ~np.isnan(ref)
        ref_pos = np.where(has_ref, ref, 0).astype(np.int64)
        sent = np.where(has_ref, tok.sentence[ref_pos] if len(tok.sentence) else -1, -1)
        cols["transcript_word"][rows[ok]] = tok.words[pos[ok]]
        cols["word_index"][rows[ok]] = pos[ok]
        cols["sentence_index"][rows] = sent
        cols["sentence"][rows[has_ref]] = sentences[sent[has_ref]]
        cols["aligned"][rows] = ok
        # context: a slice of the transcript text from the scope start to the word
        if len(tok.words):
            first_word = np.zeros(len(tok.words), dtype=np.int64)
            if self.scope == "sentence":
                starts = np.flatnonzero(
                    np.concatenate([[True], tok.sentence[1:] != tok.sentence[:-1]])
                )
                first_word = starts[tok.sentence]
            if self.context_words is not None:
                first_word = np.maximum(
                    first_word, np.arange(len(tok.words)) - self.context_words + 1
                )
            flat, where = _collapse_spaces(tok.text)  # one pass; then each context is a slice
            a = where[tok.start[first_word[pos[ok]]]]
            b = where[tok.stop[pos[ok]] - 1] + 1
            context = [flat[i:j] for i, j in zip(a.tolist(), b.tolist())]
            cols["context"][rows[ok]] = np.asarray(context, dtype=object)
        previous = ""
        for i in np.flatnonzero(~ok):  # only the unmatched words (few) run in Python
            before = cols["context"][rows[i - 1]] if i > 0 else None
            previous = before if isinstance(before, str) else ""
            joined = f"{previous} {texts[rows[i]]}".strip()
            if self.context_words is not None:  # at most context_words words, here too
                joined = " ".join(joined.split()[-self.context_words :])
            cols["context"][rows[i]] = joined
