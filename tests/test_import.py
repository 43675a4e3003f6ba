"""`import neuralset` is light: no heavy libraries, no folders, no log handlers; names resolve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import neuralset

HEAVY = ("torch", "jax", "mne", "nilearn", "transformers", "equinox", "matplotlib")

PROBE = """
import json, logging, sys
before = set(sys.modules)
import neuralset
{access}
handlers = {{name: len(getattr(lg, "handlers", [])) for name, lg in logging.Logger.manager.loggerDict.items()}}
print(json.dumps({{
    "heavy": sorted(m for m in {heavy!r} if m in sys.modules),
    "root_handlers": len(logging.root.handlers),
    "handlers": {{k: v for k, v in handlers.items() if v}},
}}))
"""


def probe(tmp_path: Path, access: str = "") -> dict:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NEURALSET_CACHE"}
    env["HOME"] = str(home)
    code = PROBE.format(access=access, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["created"] = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p not in (home, work)
    )
    return result


def test_import_is_light(tmp_path: Path) -> None:
    result = probe(tmp_path)
    assert result == {"heavy": [], "root_handlers": 0, "handlers": {}, "created": []}


def test_loader_and_extractor_names_stay_light(tmp_path: Path) -> None:
    # the classes themselves import torch/jax/mne only when used
    access = "neuralset.SegmentDataset, neuralset.JaxBatchIterator, neuralset.MegExtractor, neuralset.LabelEncoder, neuralset.Pipeline, neuralset.Segments, neuralset.Store"
    result = probe(tmp_path, access)
    assert result["heavy"] == [] and result["created"] == [] and result["root_handlers"] == 0


def test_source_entity_and_streaming_names_stay_light(tmp_path: Path) -> None:
    access = (
        "neuralset.MegSourceExtractor, neuralset.NoiseCovariance, neuralset.EntityTable; "
        "import neuralset.streaming as s; s.OnlinePipeline, s.ArraySource, s.to_batch, "
        "s.LslSource"
    )
    result = probe(tmp_path, access)
    assert result["heavy"] == [] and result["created"] == [] and result["root_handlers"] == 0


def test_every_public_name_resolves() -> None:
    for name in neuralset._LAZY:
        assert getattr(neuralset, name) is not None, name
    assert neuralset.events.__name__ == "neuralset.events"
    assert neuralset.SegmentDataset.__name__ == "SegmentDataset"
    assert set(neuralset._LAZY) <= set(dir(neuralset))
    assert neuralset.__version__


def test_unknown_name() -> None:
    import pytest

    with pytest.raises(AttributeError, match="module 'neuralset' has no attribute 'Nope'"):
        neuralset.Nope  # noqa: B018
