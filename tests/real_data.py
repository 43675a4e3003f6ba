"""Where the tests find real recordings made by others (MNE-Python's test files, nibabel's).

``mne_testing_file(name)`` returns a file of MNE-Python's own test data (BSD-3-Clause; see the
README of that folder): from ``$NEURALSET_REAL_DATA/mne-testing-files``, else the project's
shared data folder beside the repository (``../shared/data``). Tests using them skip when the
folder is absent, and fail instead under ``CI=true``. nibabel's example images ship inside the
installed nibabel package.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _roots() -> list[Path]:
    roots = [Path(os.environ["NEURALSET_REAL_DATA"])] if "NEURALSET_REAL_DATA" in os.environ else []
    return [*roots, REPO.parent / "shared" / "data", Path("/work/shared/data")]


def mne_testing_file(name: str) -> Path:
    """A file of MNE's test data (e.g. ``"edf/test.edf"``), or skip (fail under CI=true)."""
    for root in _roots():
        path = root / "mne-testing-files" / name
        if path.is_file():
            return path
    reason = f"MNE's test file {name} not found (set NEURALSET_REAL_DATA to the data folder)"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def nibabel_example(name: str = "example4d.nii.gz") -> Path:
    """An example image shipped in the installed nibabel (``nibabel/tests/data``)."""
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data" / name
