"""Stimulus-aware splits: a stimulus, repeated or nearly repeated, is in one split only.

:class:`StimulusSplits` groups the rows that show the same stimulus (the same sentence text,
the same audio or image file, declared per event type by ``keys``), merges the groups of
near-duplicate stimuli (cosine similarity of a declared feature above a threshold: character
n-grams of the text, or an embedding column), and deals the merged groups to the splits (see
:mod:`neuralset.events.splits` for how groups are dealt). A word heard by five subjects is then
in the same split for all five, and so is a sentence that differs from another by a comma.

Grouping uses one :func:`pandas.factorize` of the stimulus identities and one connected-components
pass (:func:`scipy.sparse.csgraph.connected_components`) over the near-duplicate pairs; only the
similarity search is quadratic in the number of *distinct* stimuli, computed in blocks.

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> words = validate_events(pd.DataFrame({
...     "type": "Word", "start": range(12), "timeline": ["s1"] * 6 + ["s2"] * 6,
...     "text": ["the", "cat", "sat", "a", "dog", "ran"] * 2,
...     "sentence": ["The cat sat."] * 3 + ["A dog ran."] * 3
...     + ["the cat sat"] * 3 + ["a dog ran"] * 3}))
>>> out = StimulusSplits(ratios=(0.5, 0.5), names=("train", "test"))(words)
>>> cat = out["text"].isin(["the", "cat", "sat"])  # one sentence, both subjects: one split
>>> out[cat]["split"].nunique(), out[~cat]["split"].nunique(), out["split"].nunique()
(1, 1, 2)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .splits import Method, deal_groups
from .transforms import Transform, check_splits_filled

__all__ = ["StimulusSplits", "stimulus_groups", "near_duplicate_pairs", "DEFAULT_STIMULUS_KEYS"]

#: event type -> column holding the identity of its stimulus
DEFAULT_STIMULUS_KEYS: dict[str, str] = {
    "Word": "sentence",
    "Sentence": "text",
    "Audio": "filepath",
    "Image": "filepath",
    "Video": "filepath",
}


def _normalise(values: pd.Series) -> pd.Series:
    """Case-, punctuation-, whitespace- and Unicode-form-insensitive text (vectorised pandas
    string ops): NFKC first, so that a decomposed ``"café"`` (macOS file names, some
    transcripts) is the stimulus ``"café"``, then case folding (``"ß"`` is ``"ss"``)."""
    # punctuation goes, except dots and hyphens inside a word or a path ("cat.wav", "e-mail")
    drop = r"[^\w\s/.\-]|(?<!\w)[.\-]|[.\-](?!\w)"
    text = values.astype(str).str.normalize("NFKC").str.casefold()
    text = text.str.replace(drop, " ", regex=True)
    return text.str.split().str.join(" ")


def near_duplicate_pairs(
    features: np.ndarray | object, threshold: float, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, ``i < j``, whose cosine similarity is at least ``threshold``.

    ``features`` is a dense ``(n, d)`` array or a scipy sparse matrix (rows are normalised
    here); the similarity matrix is computed ``block`` rows at a time.
    """
    import scipy.sparse as sp

    if sp.issparse(features):
        x = sp.csr_matrix(features, dtype=np.float64)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        x = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x
        xt = x.T.tocsc()
    else:
        x = np.asarray(features, dtype=np.float64)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        xt = x.T
    first, second = [], []
    n = x.shape[0]
    for a in range(0, n, block):
        sims = x[a : a + block] @ xt
        if sp.issparse(sims):
            sims = sims.tocoo()
            i, j, v = sims.row + a, sims.col, sims.data
            keep = (v >= threshold - 1e-12) & (i < j)
            first.append(i[keep])
            second.append(j[keep])
        else:
            i, j = np.nonzero(sims >= threshold - 1e-12)
            keep = j > i + a
            first.append(i[keep] + a)
            second.append(j[keep])
    if not first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(first).astype(np.int64), np.concatenate(second).astype(np.int64)


def stimulus_groups(
    events: pd.DataFrame,
    keys: dict[str, str],
    *,
    threshold: float | None = None,
    feature: str = "text",
) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus group code of each row (-1: no stimulus) and a name per group.

    Rows of the types in ``keys`` with a non-empty identity value are grouped by their
    normalised identity; with ``threshold``, groups whose ``feature`` is that similar are
    merged (``"text"``: cosine of character 3-5-gram TF-IDF vectors of the identities, needs
    scikit-learn; any other value: a column holding one vector per row, an embedding).
    """
    identity = pd.Series(np.full(len(events), None, dtype=object))
    type_of = events["type"].astype(str).to_numpy()
    for etype, column in keys.items():
        rows = np.flatnonzero(type_of == etype)
        if not len(rows):
            continue
        if column not in events.columns:
            raise ConfigError(
                f"StimulusSplits.keys: {etype} events have no column {column!r}; columns: "
                f"{', '.join(map(str, events.columns))}"
            )
        # normalise each distinct value once, then broadcast to the rows
        local, distinct = pd.factorize(events[column].to_numpy()[rows], use_na_sentinel=True)
        text = _normalise(pd.Series(distinct, dtype=object)).to_numpy(dtype=object)
        present = local >= 0
        identity.iloc[rows[present]] = text[local[present]]
    identity = identity.where(identity.astype(str) != "", None)
    codes, uniques = pd.factorize(identity, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    names = np.asarray(uniques, dtype=object)
    if threshold is None or len(names) < 2:
        return codes, names
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if feature == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform(names)
    else:
        if feature not in events.columns:
            raise ConfigError(
                f"StimulusSplits.similarity_feature: no column {feature!r} holding vectors; use "
                "'text' or add an embedding column"
            )
        first_row = pd.Series(np.arange(len(codes)))[codes >= 0].groupby(codes[codes >= 0]).first()
        vectors = np.stack(
            [
                np.asarray(v, dtype=np.float64)
                for v in events[feature].to_numpy()[first_row.to_numpy()]
            ]
        )
    i, j = near_duplicate_pairs(vectors, threshold)
    n = len(names)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # name each merged group by its first identity in sorted order (independent of row order)
    order = np.argsort(names.astype(str), kind="stable")
    name_of = pd.Series(names[order]).groupby(component[order]).first()
    merged = np.where(codes >= 0, component[np.maximum(codes, 0)], -1)
    return merged, name_of.to_numpy(dtype=object)


@register("stimulus_splits")
@config
class StimulusSplits(Transform):
    """Splits in which a stimulus, repeated or nearly repeated, is in one split only.

    Writes ``column`` (``names``; ``""`` for rows without a stimulus, such as recordings) and
    ``group_column`` (the stimulus group code, -1 without one).

    Parameters
    ----------
    keys
        Event type -> column holding the identity of its stimulus (compared case-, space-,
        punctuation- and Unicode-form-insensitively). Default: words by ``sentence``, sentences by ``text``,
        audio, images and videos by ``filepath``.
    ratios, names
        Target fraction of groups (or rows, with ``weight="rows"``) per split, and the names.
    similarity_threshold
        Merge stimuli whose cosine similarity (of ``similarity_feature``) is at least this.
    similarity_feature
        ``"text"`` (character n-grams of the identities) or a column of vectors (embeddings).
    method, weight, seed
        How groups are dealt (see :mod:`neuralset.events.splits`).
    column, group_column
        Columns written with each row's split and stimulus group.
    """

    _version = 2  # 1: the NFC and NFD forms of a text or file name were two stimuli

    keys: dict[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_STIMULUS_KEYS))
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    names: tuple[str, ...] = ("train", "val", "test")
    similarity_threshold: float | None = None
    similarity_feature: str = "text"
    method: Method = "balanced"
    weight: str = "groups"
    seed: int = 0
    column: str = "split"
    group_column: str = "stimulus_group"

    def _check(self) -> None:
        if len(self.ratios) != len(self.names):
            raise ConfigError(
                f"StimulusSplits.ratios: {len(self.ratios)} ratios for {len(self.names)} names; "
                "give one ratio per split name"
            )
        if any(r < 0 for r in self.ratios) or sum(self.ratios) <= 0:
            raise ConfigError(
                f"StimulusSplits.ratios: must be >= 0 with a positive sum, got {self.ratios}"
            )
        if not self.keys:
            raise ConfigError("StimulusSplits.keys: name at least one event type and its column")
        t = self.similarity_threshold
        if t is not None and not 0.0 < t <= 1.0:
            raise ConfigError(f"StimulusSplits.similarity_threshold: must be in (0, 1], got {t}")
        if self.weight not in ("groups", "rows"):
            raise ConfigError(f"StimulusSplits.weight: 'groups' or 'rows', got {self.weight!r}")

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        codes, names = stimulus_groups(
            events,
            self.keys,
            threshold=self.similarity_threshold,
            feature=self.similarity_feature,
        )
        if not len(names):
            raise ConfigError(
                f"StimulusSplits.keys: no event has a stimulus identity ({self.keys}); nothing "
                "to split"
            )
        weights = np.bincount(codes[codes >= 0], minlength=len(names))
        which = deal_groups(
            names.astype(str),
            np.asarray(self.ratios),
            seed=self.seed,
            method=self.method,
            weights=weights if self.weight == "rows" else None,
        )
        check_splits_filled("StimulusSplits", self.names, self.ratios, which, "stimulus")
        labels = np.asarray(self.names, dtype=object)[which]
        split = np.where(codes >= 0, labels[np.maximum(codes, 0)], "")
        columns: dict[str, Any] = {
            self.column: pd.Categorical(split.astype(object)),
            self.group_column: codes,
        }
        return events.assign(**columns)
