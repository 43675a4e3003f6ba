"""Classic word features: length and frequency of ``Word`` events.

Registered YAML kinds: ``word_length``, ``word_frequency``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import config, register
from ..base import Computed, Item
from ..event_features import EventFeatureExtractor

__all__ = ["WordLength", "WordFrequency"]


@config
class _WordFeature(EventFeatureExtractor):
    default_event_type: ClassVar[str] = "Word"
    stores_vectors: ClassVar[bool] = True

    def _identity(self, events: pd.DataFrame, rows: np.ndarray) -> list[tuple[Any, ...]]:
        return [(str(t),) for t in events["text"].to_numpy()[rows]]

    def items(self, events: pd.DataFrame) -> list[Item]:
        rows = self.event_rows(events)
        idents = self._identity(events, rows)
        keys = self.row_keys(events, rows)
        return [Item(key=k, label=str(i[0]), payload=i) for k, i in zip(keys, idents)]

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        return self._keys_of(self._identity(events, rows))


@register("word_length")
@config
class WordLength(_WordFeature):
    """Number of characters of each word (surrounding spaces excluded): a 1-value vector."""

    def compute(self, item: Item) -> Computed:
        return Computed(value=np.array([len(item.payload[0].strip())], dtype=np.float32))


@register("word_frequency")
@config
class WordFrequency(_WordFeature):
    """Zipf frequency of each word (log10 of occurrences per billion words): a 1-value vector.

    Parameters
    ----------
    source
        ``"wordfreq"``: from the corpora of the ``wordfreq`` package, in the word's ``language``
        (default ``"en"``); ``"study"``: from the counts of the (lower-cased) words of the events
        given to ``prepare`` and ``read``, ``log10(count / total * 1e9)``.
    """

    source: Literal["wordfreq", "study"] = "wordfreq"

    def _identity(self, events: pd.DataFrame, rows: np.ndarray) -> list[tuple[Any, ...]]:
        texts = events["text"].to_numpy()[rows]
        if self.source == "study":
            counts, total = self._study_counts(events)
            return [(str(t), counts.get(str(t).strip().lower(), 0), total) for t in texts]
        langs = (
            events["language"].to_numpy()[rows]
            if "language" in events.columns
            else [""] * len(rows)
        )
        return [
            (str(t), str(lang) if isinstance(lang, str) and lang else "en")
            for t, lang in zip(texts, langs)
        ]

    def _study_counts(self, events: pd.DataFrame) -> tuple[dict[str, int], int]:
        words = (
            events.loc[events["type"] == self.resolved_event_type, "text"]
            .astype(str)
            .str.strip()
            .str.lower()
        )
        counts = words.value_counts()
        return {str(k): int(v) for k, v in counts.items()}, int(counts.sum())

    def compute(self, item: Item) -> Computed:
        if self.source == "study":
            _, count, total = item.payload
            value = np.log10(count / total * 1e9) if count else 0.0
        else:
            from wordfreq import zipf_frequency

            text, lang = item.payload
            value = zipf_frequency(text, lang)
        return Computed(value=np.array([value], dtype=np.float32))
