"""Bag-of-words and TF-IDF vectors of text events through scikit-learn: :class:`BagOfWords`.

Registered YAML kind: ``bag_of_words``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...hashing import chain_keys, structural_key
from ..base import Computed, Item
from ..event_features import EventFeatureExtractor
from ..selection import check_fit_on, fit_rows

__all__ = ["BagOfWords"]

#: fitted vocabularies per (config key, training texts digest), a few per process
_FITTED: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()


@register("bag_of_words")
@config
class BagOfWords(EventFeatureExtractor):
    """Word counts or TF-IDF weights of each text event, vocabulary fitted on the training events.

    The vocabulary (and the inverse document frequencies) are fitted with scikit-learn's
    :class:`~sklearn.feature_extraction.text.CountVectorizer` or
    :class:`~sklearn.feature_extraction.text.TfidfVectorizer` on the texts of the ``fit_on``
    events only (each event one document, in table order); every distinct text of the events is
    then transformed with that fit and stored: the vector equals
    ``Vectorizer(**settings).fit(training_texts).transform([text]).toarray()[0]``. The fit is
    part of each item's key, so other training events give other items.

    Parameters
    ----------
    field
        Column holding the text (``"text"``).
    weighting
        ``"count"`` (term counts), ``"binary"`` (presence) or ``"tfidf"``.
    fit_on
        The training events: a split name, a query or ``"all"`` (see
        :mod:`neuralset.extractors.selection`).
    max_features, min_df, ngram_range, lowercase, stop_words
        As in scikit-learn's vectorizers (``min_df`` a document count).
    norm, sublinear_tf
        TF-IDF only, as in :class:`~sklearn.feature_extraction.text.TfidfVectorizer`.
    """

    default_event_type: ClassVar[str] = "Sentence"
    stores_vectors: ClassVar[bool] = True

    field: str = "text"
    weighting: Literal["count", "binary", "tfidf"] = "tfidf"
    fit_on: str = ""
    max_features: int | None = 1000
    min_df: int = 1
    ngram_range: tuple[int, int] = (1, 1)
    lowercase: bool = True
    stop_words: Literal["english"] | None = None
    norm: Literal["l1", "l2"] | None = "l2"
    sublinear_tf: bool = False

    def _check(self) -> None:
        check_fit_on("BagOfWords.fit_on", self.fit_on)
        if self.max_features is not None and self.max_features < 1:
            raise ConfigError(f"BagOfWords.max_features: must be >= 1, got {self.max_features}")
        if self.min_df < 1:
            raise ConfigError(f"BagOfWords.min_df: must be >= 1, got {self.min_df}")
        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise ConfigError(
                f"BagOfWords.ngram_range: expected (min_n, max_n) with 1 <= min_n <= max_n, got {self.ngram_range}"
            )
        if self.weighting != "tfidf" and (self.norm != "l2" or self.sublinear_tf):
            raise ConfigError(
                "BagOfWords.norm: norm and sublinear_tf apply to weighting='tfidf' only"
            )

    def vectorizer(self, vocabulary: Sequence[str] | None = None) -> Any:
        """The scikit-learn vectorizer of these settings (with a fixed vocabulary if given)."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        common: dict[str, Any] = {
            "max_features": self.max_features,
            "min_df": self.min_df,
            "ngram_range": tuple(self.ngram_range),
            "lowercase": self.lowercase,
            "stop_words": self.stop_words,
            "vocabulary": list(vocabulary) if vocabulary is not None else None,
        }
        if self.weighting == "tfidf":
            return TfidfVectorizer(norm=self.norm, sublinear_tf=self.sublinear_tf, **common)
        return CountVectorizer(binary=self.weighting == "binary", **common)

    def _texts(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        if self.field not in events.columns:
            raise ValueError(f"BagOfWords.field: the events table has no column {self.field!r}")
        return [str(t) for t in events[self.field].to_numpy()[rows]]

    def fitted(self, events: pd.DataFrame) -> dict[str, Any]:
        """The vocabulary (and IDF weights) fitted on the training texts of ``events``."""
        rows = fit_rows(events, self.event_rows(events), self.fit_on, "BagOfWords.fit_on")
        texts = self._texts(events, rows)
        cache_key = (self.prepare_key, structural_key(tuple(texts)))
        if cache_key not in _FITTED:
            if self.min_df > len(texts):  # scikit-learn blames max_df, which was not set
                raise ValueError(
                    f"BagOfWords.min_df: {self.min_df} documents, but fit_on={self.fit_on!r} "
                    f"selects {len(texts)} training texts; lower min_df"
                )
            try:
                fit = self.vectorizer().fit(texts)
            except ValueError as err:  # e.g. "empty vocabulary"
                raise ValueError(
                    f"BagOfWords: fitting on the {len(texts)} training texts of "
                    f"{self.field!r} (fit_on={self.fit_on!r}) failed: {err}"
                ) from None
            state: dict[str, Any] = {
                "vocabulary": tuple(str(w) for w in fit.get_feature_names_out())
            }
            if self.weighting == "tfidf":
                state["idf"] = np.asarray(fit.idf_, dtype=np.float64)
            state["key"] = structural_key(tuple(state.items()))
            _FITTED[cache_key] = state
            while len(_FITTED) > 8:
                _FITTED.popitem(last=False)
        return _FITTED[cache_key]

    def items(self, events: pd.DataFrame) -> list[Item]:
        state = self.fitted(events)
        texts = self._texts(events, self.event_rows(events))
        keys = self.row_keys(events, self.event_rows(events))
        return [Item(key=k, label=t[:60], payload=(t, state)) for k, t in zip(keys, texts)]

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        fit_key = self.fitted(events)["key"]
        pk = self.prepare_key
        return [chain_keys(pk, structural_key((fit_key, t))) for t in self._texts(events, rows)]

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        out: dict[int, Computed] = {}
        fits = {i.payload[1]["key"]: i.payload[1] for i in items}
        for fit_key, state in fits.items():  # one fit per prepare call, in practice
            which = [k for k, i in enumerate(items) if i.payload[1]["key"] == fit_key]
            vec = self.vectorizer(state["vocabulary"])
            if self.weighting == "tfidf":
                vec.idf_ = state["idf"]
            matrix = vec.transform([items[k].payload[0] for k in which]).toarray()
            for k, row in zip(which, matrix):
                out[k] = Computed(value=np.asarray(row, dtype=np.float32))
        return [out[k] for k in range(len(items))]
