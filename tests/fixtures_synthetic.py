"""Shared small synthetic M/EEG study for tests (import the fixtures into a test module).

Use in a test module::

    @pytest.fixture(scope="module")
    def small_study(tmp_path_factory):
        return shared_small_study(tmp_path_factory)

Files are written once per session under pytest's base temporary folder (a second module that
asks finds them there and writes nothing).
"""

from __future__ import annotations

import pytest

from neuralset.studies.synthetic import SyntheticStudy

#: Parameters of the shared study: 2 subjects x 12 s, 6 MEG sensors at 1000 Hz, 8 EEG at 500 Hz.
SMALL = {
    "n_subjects": 2,
    "duration": 12.0,
    "meg_channels": 6,
    "eeg_channels": 8,
    "seed": 7,
}


def make_small_study(root, **overrides) -> SyntheticStudy:  # noqa: ANN001
    """The shared study's config at ``root / "small"`` (with optional overrides)."""
    return SyntheticStudy(path=root / "small", **{**SMALL, **overrides})


def shared_small_study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    """The shared study, built (files are written once per session, then found on disk)."""
    study = make_small_study(tmp_path_factory.getbasetemp())
    study.build()
    return study
