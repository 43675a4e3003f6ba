"""Splits without leakage: K-fold by group, scikit-learn splitters, stimulus-aware splits.

Every transform here assigns whole *groups* of rows (a subject, a session, a sentence, a
stimulus) to one split, so that no group is in two splits, and writes a ``split`` column.

How groups are dealt (``method``):

* ``"balanced"`` (default) - groups are ordered by a keyed hash of their name (``seed``) and
  dealt so that the split sizes match the ratios to within one group (or, with
  ``weight="rows"``, to within the largest group's rows); with ``stratify``, dealt within each
  stratum. Deterministic and independent of the row order; adding rows to existing groups
  changes nothing, but a new group can move others.
* ``"hash"`` - each group's split depends on its own name and the seed only (a uniform draw from
  a keyed hash), so adding rows *or groups* never moves an existing group; the sizes match the
  ratios in expectation (binomial spread, ~``sqrt(p (1 - p) / n_groups)``).

Rows without a group value get the split ``""`` (they belong to no split; segments take the
split of their trigger or of the events they cover).

Examples
--------
>>> import pandas as pd
>>> from neuralset.events import validate_events
>>> events = validate_events(pd.DataFrame({
...     "type": "Word", "start": range(8), "duration": 0.5, "timeline": "run-1",
...     "text": list("abcdefgh"), "subject": ["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4"]}))
>>> out = KFoldSplits(by="subject", n_folds=4, test_fold=0)(events)
>>> int(out.groupby("subject")["split"].nunique().max())  # one split per subject
1
>>> sorted(out["split"].value_counts().to_dict().items())
[('test', 2), ('train', 6)]
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .selectors import event_mask
from .transforms import Transform

__all__ = [
    "KFoldSplits",
    "SklearnSplits",
    "group_values",
    "unit_hash",
    "deal_groups",
    "check_no_leak",
    "LeakageError",
]

Method = Literal["balanced", "hash"]


class LeakageError(ValueError):
    """A group (subject, stimulus...) would land in two splits; the message names it."""


def unit_hash(names: np.ndarray, seed: int) -> np.ndarray:
    """A uniform draw in ``[0, 1)`` per name, from a keyed hash (the same in every process)."""
    out = np.empty(len(names), dtype=np.float64)
    for i, name in enumerate(names):  # once per distinct group, never per row
        digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") / 2.0**64
    return out


def group_values(events: pd.DataFrame, column: str, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Group code per row (-1: no group) and the group names (as text), for ``column``."""
    if column not in events.columns:
        raise ConfigError(
            f"{owner}: no column {column!r} in the events; available: "
            f"{', '.join(map(str, events.columns))}"
        )
    values = events[column]
    codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=True)
    names = np.array([str(u) for u in uniques], dtype=object)
    empty = np.flatnonzero(names == "")
    codes = np.asarray(codes, dtype=np.int64)
    if len(empty):  # "" is no group either
        codes = np.where(np.isin(codes, empty), -1, codes)
    return codes, names


def deal_groups(
    names: np.ndarray,
    ratios: np.ndarray,
    *,
    seed: int,
    method: Method = "balanced",
    weights: np.ndarray | None = None,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Split index (into ``ratios``) of each group.

    Parameters
    ----------
    names
        Group names (their hash orders them).
    ratios
        Target fraction per split (normalised here).
    seed
        Seed of the keyed hash that orders the groups.
    method
        ``"balanced"`` or ``"hash"`` (see the module doc).
    weights
        Size of each group (rows); ``None``: every group counts 1.
    strata
        Stratum code per group (``"balanced"`` only): each stratum is dealt on its own.
    """
    ratios = np.asarray(ratios, dtype=float) / float(np.sum(ratios))
    bounds = np.cumsum(ratios)
    bounds[-1] = 1.0 + 1e-12
    u = unit_hash(names, seed)
    if method == "hash":
        return np.searchsorted(bounds, u, side="right").astype(np.int64)
    w = np.ones(len(names)) if weights is None else np.asarray(weights, dtype=float)
    s = np.zeros(len(names), dtype=np.int64) if strata is None else np.asarray(strata)
    out = np.empty(len(names), dtype=np.int64)
    order = np.lexsort((u, s))  # by stratum, then by hash
    s_sorted, w_sorted = s[order], w[order]
    starts = np.flatnonzero(np.concatenate([[True], s_sorted[1:] != s_sorted[:-1]]))
    stops = np.append(starts[1:], len(order))
    for a, b in zip(starts, stops):  # once per stratum
        cum = np.cumsum(w_sorted[a:b])
        middle = (cum - w_sorted[a:b] / 2) / cum[-1]  # each group's centre on [0, 1]
        out[order[a:b]] = np.searchsorted(bounds, middle, side="right")
    return out


def check_no_leak(split: np.ndarray, groups: np.ndarray, names: np.ndarray, what: str) -> None:
    """Raise :class:`LeakageError` if a group has rows in two different (non-empty) splits."""
    ok = (groups >= 0) & (split != "")
    if not ok.any():
        return
    frame = pd.DataFrame({"g": groups[ok], "s": split[ok]})
    n_splits = frame.groupby("g")["s"].nunique()
    leaked = n_splits.index[n_splits.to_numpy() > 1].to_numpy()
    if len(leaked):
        shown = ", ".join(repr(str(n)) for n in names[leaked[:3]])
        raise LeakageError(
            f"{what} groups in two splits: {len(leaked)} of {len(n_splits)} (e.g. {shown}); "
            "split by that group (a Group* splitter) so that each stays in one split"
        )


def _majority_per_group(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """The most frequent value code of each group (ties: the smallest code); -1 if none."""
    ok = (codes >= 0) & (values >= 0)
    frame = pd.DataFrame({"g": codes[ok], "v": values[ok]})
    counts = frame.value_counts().reset_index(name="n")
    counts = counts.sort_values(["g", "n", "v"], ascending=[True, False, True])
    first = counts.drop_duplicates("g")
    out = np.full(n_groups, -1, dtype=np.int64)
    out[first["g"].to_numpy()] = first["v"].to_numpy()
    return out


@register("kfold_splits")
@config
class KFoldSplits(Transform):
    """K folds of whole groups; one fold is the test split (and optionally one the validation).

    Writes ``fold_column`` (the fold of each row's group, -1 without a group) and ``column``
    (``"test"``, ``"val"``, ``"train"``, or ``""`` without a group).

    Parameters
    ----------
    by
        Column of the groups (``"subject"``, ``"session"``, ``"sentence"``...).
    n_folds
        Number of folds (>= 2).
    test_fold, val_fold
        The fold used as the test split, and optionally the validation split.
    stratify
        Column whose value (the most frequent one of each group) the folds should balance,
        e.g. a diagnosis per subject (``method="balanced"`` only).
    method
        ``"balanced"`` (equal folds to within one group) or ``"hash"`` (stable when groups are
        added); see the module doc.
    weight
        Balance the number of ``"groups"`` (default) or of ``"rows"`` per fold.
    seed
        Seed of the keyed hash ordering the groups.
    column, fold_column
        Columns written with each row's split and fold.
    """

    by: str = "timeline"
    n_folds: int = 5
    test_fold: int = 0
    val_fold: int | None = None
    stratify: str | None = None
    method: Method = "balanced"
    weight: Literal["groups", "rows"] = "groups"
    seed: int = 0
    column: str = "split"
    fold_column: str = "fold"

    def _check(self) -> None:
        if self.n_folds < 2:
            raise ConfigError(f"KFoldSplits.n_folds: must be >= 2, got {self.n_folds}")
        for name in ("test_fold", "val_fold"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.n_folds:
                raise ConfigError(
                    f"KFoldSplits.{name}: must be in [0, {self.n_folds - 1}], got {value}"
                )
        if self.val_fold is not None and self.val_fold == self.test_fold:
            raise ConfigError("KFoldSplits.val_fold: must differ from test_fold")
        if self.stratify is not None and self.method != "balanced":
            raise ConfigError(
                "KFoldSplits.stratify: stratified folds need method='balanced' (hashing each "
                "group on its own cannot balance strata)"
            )

    def folds(self, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Fold of each row (-1 without a group) and the group code of each row."""
        codes, names = group_values(events, self.by, "KFoldSplits.by")
        weights = np.bincount(codes[codes >= 0], minlength=len(names))
        strata = None
        if self.stratify is not None:
            values, _ = group_values(events, self.stratify, "KFoldSplits.stratify")
            strata = _majority_per_group(codes, values, len(names))
        fold_of_group = deal_groups(
            names,
            np.ones(self.n_folds),
            seed=self.seed,
            method=self.method,
            weights=weights if self.weight == "rows" else None,
            strata=strata,
        )
        return np.where(codes >= 0, fold_of_group[np.maximum(codes, 0)], -1), codes

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        fold, codes = self.folds(events)
        n_groups = len(np.unique(codes[codes >= 0]))
        for name, which in (("test_fold", self.test_fold), ("val_fold", self.val_fold)):
            if which is not None and not (fold == which).any():  # more folds than groups
                raise ConfigError(
                    f"KFoldSplits.{name}: fold {which} gets no group: {n_groups} {self.by!r} "
                    f"groups for {self.n_folds} folds (method={self.method!r}); use n_folds <= "
                    f"{n_groups}" + (", or another seed" if self.method == "hash" else "")
                )
        split = np.where(fold >= 0, "train", "").astype(object)
        split[fold == self.test_fold] = "test"
        if self.val_fold is not None:
            split[fold == self.val_fold] = "val"
        columns: dict[str, Any] = {self.fold_column: fold, self.column: pd.Categorical(split)}
        return events.assign(**columns)


@register("sklearn_splits")
@config
class SklearnSplits(Transform):
    """A scikit-learn splitter (``GroupKFold``, ``StratifiedGroupKFold``...) as a transform.

    The rows selected by ``rows`` (default: every row with a group) are the splitter's
    samples, ``by`` its ``groups`` and ``stratify`` its ``y``; split number ``fold`` of
    ``splitter.split(X, y, groups)`` gives their train and test rows (rows in neither, as
    ``GroupShuffleSplit`` leaves with ``train_size + test_size < 1``, get ``""``). Each group
    then takes the split of its rows, on every row of the group (a Meg recording row takes its
    subject's split). A group whose rows land in both (a splitter that ignores groups) is an error unless
    ``check_groups=False``, which keeps the splits of the selected rows only.

    Parameters
    ----------
    splitter
        A class name of :mod:`sklearn.model_selection` or ``"module:Class"``.
    params
        Its keyword arguments (``{"n_splits": 5}``).
    by
        Column of the groups.
    stratify
        Column passed as ``y`` (for stratified splitters).
    fold
        Which split of the splitter's sequence to use.
    val_fold
        Optionally, another split whose test rows become ``"val"`` (taken out of train).
    rows
        A :meth:`pandas.DataFrame.eval` query selecting the samples (e.g. ``"type == 'Word'"``).
    seed
        Passed as ``random_state`` when the splitter accepts one and ``params`` does not set it.
    check_groups
        Refuse a group whose rows land in both train and test (see above).
    column
        Column written with each row's split.
    """

    _version = 2  # 1: rows in neither train nor test of the split were "train"

    splitter: str = "GroupKFold"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    by: str = "timeline"
    stratify: str | None = None
    fold: int = 0
    val_fold: int | None = None
    rows: str | None = None
    seed: int | None = None
    check_groups: bool = True
    column: str = "split"

    def _check(self) -> None:
        if self.fold < 0 or (self.val_fold is not None and self.val_fold < 0):
            raise ConfigError("SklearnSplits.fold: must be >= 0")
        if self.val_fold is not None and self.val_fold == self.fold:
            raise ConfigError("SklearnSplits.val_fold: must differ from fold")

    def make_splitter(self) -> Any:
        """The scikit-learn splitter object (imports scikit-learn)."""
        import importlib
        import inspect

        module, _, name = self.splitter.rpartition(":")
        try:
            cls = getattr(importlib.import_module(module or "sklearn.model_selection"), name)
        except (ImportError, AttributeError):
            raise ConfigError(
                f"SklearnSplits.splitter: no splitter {self.splitter!r}; give a class of "
                "sklearn.model_selection (e.g. 'GroupKFold') or 'module:Class'"
            ) from None
        params = dict(self.params)
        accepts = inspect.signature(cls).parameters
        if self.seed is not None and "random_state" in accepts and "random_state" not in params:
            params["random_state"] = self.seed
            if "shuffle" in accepts and "shuffle" not in params:
                params["shuffle"] = True
        try:
            return cls(**params)
        except TypeError as err:
            raise ConfigError(f"SklearnSplits.params: {err}") from None

    def _nth_split(
        self, splitter: Any, n: int, y: Any, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.zeros((len(groups), 1))
        for i, (train, test) in enumerate(splitter.split(x, y, groups)):
            if i == n:
                return np.asarray(train), np.asarray(test)
        raise ConfigError(
            f"SklearnSplits.fold: {type(splitter).__name__} gives fewer than {n + 1} splits"
        )

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        codes, names = group_values(events, self.by, "SklearnSplits.by")
        sample = codes >= 0
        if self.rows is not None:
            try:
                sample &= event_mask(events, self.rows)
            except ValueError as err:
                raise ConfigError(f"SklearnSplits.rows: {err}") from None
        rows = np.flatnonzero(sample)
        if not len(rows):
            raise ConfigError(f"SklearnSplits: no row has a {self.by!r} group to split")
        y = None
        if self.stratify is not None:
            y, _ = group_values(events, self.stratify, "SklearnSplits.stratify")
            y = y[rows]
            if (y < 0).any():  # a missing label would silently be one more class
                raise ConfigError(
                    f"SklearnSplits.stratify: {int((y < 0).sum())} of {len(rows)} selected rows "
                    f"have no {self.stratify!r} value (rows {rows[y < 0][:5].tolist()}); fill "
                    f'them, or leave them out with rows="{self.stratify}.notna()"'
                )
        splitter = self.make_splitter()
        # rows in neither train nor test (GroupShuffleSplit with train_size + test_size < 1)
        # stay out of both: ""
        row_split = np.full(len(rows), "", dtype=object)
        train, test = self._nth_split(splitter, self.fold, y, codes[rows])
        row_split[train] = "train"
        row_split[test] = "test"
        if self.val_fold is not None:
            val = self._nth_split(splitter, self.val_fold, y, codes[rows])[1]
            row_split[val[row_split[val] != "test"]] = "val"
        split = np.full(len(events), "", dtype=object)
        split[rows] = row_split
        if not self.check_groups:
            return events.assign(**{self.column: pd.Categorical(split)})
        check_no_leak(split, codes, names, repr(self.by))
        per_group = pd.Series(row_split).replace("", None).groupby(codes[rows]).first()
        group_split = np.full(len(names), "", dtype=object)
        group_split[per_group.index.to_numpy()] = per_group.fillna("").to_numpy()
        split = np.where(codes >= 0, group_split[np.maximum(codes, 0)], "")
        return events.assign(**{self.column: pd.Categorical(split.astype(object))})
