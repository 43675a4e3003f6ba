"""One DataFrame from column parts and blocks: the same table as pandas makes of the columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.studies.columns import Block, merge_parts, place_columns, stack_columns


def _objects(*values: object) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


@pytest.mark.parametrize(
    "values",
    [
        _objects("a", None, "b"),
        _objects("a", np.nan),
        _objects(None, None),
        _objects(np.nan, np.nan),
        _objects("a", 1.0, None),
        _objects("a", pd.NaT),
        _objects(1, 2),
    ],
    ids=["text-none", "text-nan", "none", "nan", "mixed", "nat", "ints"],
)
def test_object_columns_typed_as_pandas_types_them(values):
    part = {"start": np.zeros(len(values)), "x": values}
    got = stack_columns([part])
    expected = pd.DataFrame({"start": np.zeros(len(values)), "x": values})
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["x"].dtype == expected["x"].dtype
    assert list(map(type, got["x"])) == list(map(type, expected["x"]))


def test_parts_stack_and_blocks_place_the_same_table():
    parts = [
        {"type": "Meg", "start": np.zeros(1), "duration": 2.0, "subject": "01", "age": 20.0},
        {"type": "Word", "start": np.array([0.5, 1.0]), "text": _objects("a", "b"), "age": None},
        {"type": "Meg", "start": np.zeros(1), "duration": 3.0, "subject": "02", "age": 31.0},
    ]
    stacked = stack_columns(parts)
    assert list(stacked.columns) == ["type", "start", "duration", "subject", "age", "text"]
    assert stacked["duration"].tolist()[::3] == [2.0, 3.0] and stacked["duration"][1:3].isna().all()
    assert stacked["age"].dtype == object and stacked["age"].tolist() == [20.0, None, None, 31.0]
    assert stacked["text"].isna().tolist() == [True, False, False, True]
    assert str(stacked["subject"].dtype) == str(
        pd.DataFrame({"s": _objects("01", None)})["s"].dtype
    )
    # the same rows as blocks placed out of order: rows 0 and 3 (the recordings) together
    recordings = merge_parts([parts[0], parts[2]], np.array([0, 3]))
    words = Block(np.array([1, 2]), 2, parts[1])
    placed = place_columns([words, recordings], 4)
    pd.testing.assert_frame_equal(placed, stacked, check_exact=True)
