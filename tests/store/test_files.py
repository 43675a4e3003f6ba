"""Array files of the store: atomic writes and their records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from neuralset.store import files


@pytest.mark.parametrize("n_rows", [3, 40_000])  # 1.5 kB (hashed inline), 5 MB (by a thread)
def test_write_npy_atomic_records_the_array(tmp_path: Path, n_rows: int) -> None:
    array = np.arange(n_rows * 32, dtype=np.float32).reshape(n_rows, 32)
    assert (array.nbytes >= files._THREADED_DIGEST_BYTES) == (n_rows > 3)
    path = tmp_path / "data.npy"
    record = files.write_npy_atomic(path, array, tmp_path)
    want = hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()
    assert record == {
        "shape": [n_rows, 32],
        "dtype": "<f4",
        "bytes": path.stat().st_size,
        "blake2b": want,
    }
    np.testing.assert_array_equal(np.load(path), array)
    assert [p.name for p in tmp_path.iterdir()] == ["data.npy"]  # no temporary left


def test_write_npy_atomic_failure_leaves_nothing(tmp_path: Path) -> None:
    array = np.zeros((40_000, 32), dtype=np.float32)  # hashed by a thread, which is joined
    missing = tmp_path / "no-such-folder" / "data.npy"
    with pytest.raises(OSError, match="no-such-folder"):
        files.write_npy_atomic(missing, array, tmp_path)
    assert list(tmp_path.iterdir()) == []
