"""Shared fixtures on synthetic studies (a pytest plugin, registered in ``tests/conftest.py``).

* ``small_study`` / ``small_events``: a small synthetic M/EEG study, built, and its events.
  Files are written once per session under pytest's base temporary folder (a second module
  that asks finds them there and writes nothing).
* ``events``: the events of the module's own ``study`` fixture (a module defining ``study``
  gets it; a module defining its own ``events`` overrides it).
* ``store``: an empty :class:`~neuralset.store.Store` per module.

All are module-scoped.
"""

from __future__ import annotations

import pandas as pd
import pytest

from neuralset.store import Store
from neuralset.synthetic import SyntheticStudy

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


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    return shared_small_study(tmp_path_factory)


@pytest.fixture(scope="module")
def small_events(small_study: SyntheticStudy) -> pd.DataFrame:
    return small_study.events()


@pytest.fixture(scope="module")
def events(study: SyntheticStudy) -> pd.DataFrame:
    return study.events()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("store"))
