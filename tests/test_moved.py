"""The 0.1 module paths keep importing, with a DeprecationWarning naming the new path."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import pytest

from neuralset._moved import DEFINED_IN, MOVED_MODULES


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_old_module_path_imports_the_new_module(old: str) -> None:
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error')\n"
        "import neuralset\n"
        f"try:\n    importlib.import_module({old!r})\n"
        "except DeprecationWarning as w:\n    print(w)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{old} moved to {MOVED_MODULES[old]}; import it from there"


def test_old_names_are_the_same_objects() -> None:
    with pytest.warns(DeprecationWarning):
        from neuralset.extractors.meeg import MegExtractor as old  # noqa: PLC0415
    from neuralset.extractors import MegExtractor

    assert old is MegExtractor
    with pytest.warns(DeprecationWarning):
        from neuralset.studies.synthetic import SyntheticStudy as old_study  # noqa: PLC0415
    from neuralset.synthetic import SyntheticStudy

    assert old_study is SyntheticStudy
    # a pickle naming the old path loads
    data = pickle.dumps(MegExtractor(frequency=100.0), protocol=0).replace(
        b"neuralset.extractors.neural.mne.meeg", b"neuralset.extractors.meeg"
    )
    assert pickle.loads(data) == MegExtractor(frequency=100.0)


def test_defined_in_names_existing_modules() -> None:
    for new in DEFINED_IN:
        importlib.import_module(new)
