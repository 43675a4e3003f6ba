"""Which events a fitted extractor learns from: the ``fit_on`` rule shared by PCA and TF-IDF.

Extractors that fit something on the data (a PCA basis, a TF-IDF vocabulary) must see the
training events only, or the test set leaks into the features. ``fit_on`` names them:

* a split name (``"train"``): the rows whose ``split`` column (written by
  :class:`~neuralset.events.transforms.AssignSplits`) equals it;
* ``"all"``: every row (no held-out data: say so explicitly);
* any other string: a :meth:`pandas.DataFrame.eval` query (``"split == 'train' and
  timeline != 'sub-03'"``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..config import ConfigError

__all__ = ["check_fit_on", "fit_rows"]

_SPLIT_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


def check_fit_on(owner: str, fit_on: str) -> None:
    """Construction-time check of a ``fit_on`` value (``owner`` is ``"Class.field"``)."""
    if not fit_on.strip():
        raise ConfigError(
            f"{owner}: name the training events, e.g. 'train' (a split of AssignSplits), a query "
            "such as \"split == 'train'\", or 'all' to fit on every event"
        )


def fit_rows(events: pd.DataFrame, rows: np.ndarray, fit_on: str, owner: str) -> np.ndarray:
    """The entries of ``rows`` (event rows) that ``fit_on`` selects, in table order.

    Raises
    ------
    ValueError
        The query cannot be evaluated, the ``split`` column is missing, or nothing is selected,
        naming ``owner`` and the fix.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if fit_on == "all":
        selected = rows
    elif _SPLIT_NAME.match(fit_on):
        if "split" not in events.columns:
            raise ValueError(
                f"{owner}: {fit_on!r} is a split name but the events have no 'split' column; "
                "assign splits first (AssignSplits) or give a query"
            )
        split = events["split"].astype(str).to_numpy()[rows]
        selected = rows[split == fit_on]
    else:
        try:
            mask = np.asarray(events.eval(fit_on), dtype=bool)
        except Exception as err:  # pandas raises many kinds
            raise ValueError(f"{owner}: cannot evaluate the query {fit_on!r}: {err}") from None
        selected = rows[mask[rows]]
    if not len(selected):
        raise ValueError(
            f"{owner}: {fit_on!r} selects none of the {len(rows)} events to fit on; "
            "check the split names or the query"
        )
    return selected
