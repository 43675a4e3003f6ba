"""braindecode's windowers, imported without braindecode's package ``__init__``.

``import braindecode`` imports its models, whose filter layers import torchaudio; the torchaudio
wheel on PyPI is built for CUDA torch and cannot load next to the CPU torch of this project.
The windowing functions themselves (``braindecode.preprocessing.windowers`` and
``braindecode.datasets.base``) need neither, so this helper registers the two package folders as
bare packages (their ``__init__`` not run), imports the real modules from braindecode's own
files, and restores ``sys.modules`` afterwards. Nothing of braindecode is replaced or faked.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def braindecode_windowers() -> Iterator[tuple[Any, Any]]:
    """``(windowers module, datasets.base module)`` of the installed braindecode."""
    spec = importlib.util.find_spec("braindecode")
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("braindecode (a dev dependency) is not installed")
        pytest.skip("braindecode is not installed (pip install braindecode)")
    root = Path(list(spec.submodule_search_locations)[0])
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "braindecode"}
    try:
        for name, folder in (
            ("braindecode", root),
            ("braindecode.preprocessing", root / "preprocessing"),
        ):
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            sys.modules[name] = package
        windowers = importlib.import_module("braindecode.preprocessing.windowers")
        base = importlib.import_module("braindecode.datasets.base")
        yield windowers, base
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] == "braindecode"]:
            del sys.modules[k]
        sys.modules.update(saved)
