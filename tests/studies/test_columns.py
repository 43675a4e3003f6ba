"""One DataFrame from column parts and blocks: the same table as pandas makes of the columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.studies.columns import Block, RunColumns, merge_parts, place_columns, stack_columns


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


@pytest.mark.parametrize(
    "ages", [(20.0, 31.0), (20.0, None), ("young", None)], ids=["numbers", "missing", "text"]
)
def test_run_columns_same_as_scalars_in_every_part(ages):
    """Run-wide columns (one value per run) give the table of parts that each carry them."""
    own = [
        {"type": "Meg", "start": np.zeros(1), "subject": "x"},
        {"type": "Word", "start": np.array([0.5, 1.0]), "text": _objects("a", "b")},
        {"type": "Meg", "start": np.zeros(1), "subject": "y"},
    ]
    runs = [0, 0, 1]
    shared = [{"subject": f"0{r + 1}", "age": ages[r]} for r in range(2)]
    expected = stack_columns([{**p, **shared[r]} for p, r in zip(own, runs)])
    keys = [tuple(dict.fromkeys((*p, "subject", "age"))) for p in own]
    mine = [{k: v for k, v in p.items() if k not in ("subject", "age")} for p in own]
    blocks = [
        Block(np.array([0]), 1, mine[0], keys[0]),
        Block(np.array([1, 2]), 2, mine[1], keys[1]),
        Block(np.array([3]), 1, mine[2], keys[2]),
    ]
    per_run = {k: _objects(*(s[k] for s in shared)) for k in ("subject", "age")}
    placed = place_columns(blocks, 4, RunColumns(np.array([0, 0, 0, 1]), per_run))
    pd.testing.assert_frame_equal(placed, expected, check_exact=True)
    assert list(map(type, placed["age"])) == list(map(type, expected["age"]))
