"""The example scripts run end to end (tiny setting) and report accuracies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ACCURACY = re.compile(
    r"^epoch 3/3: loss \d+\.\d+, train accuracy (\d\.\d+), val accuracy (\d\.\d+)$", re.M
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for both examples: the second reuses the study files and the prepared MEG."""
    return tmp_path_factory.mktemp("examples")


@pytest.mark.parametrize("script", ["train_torch_decoder.py", "train_equinox.py"])
def test_example_trains(script: str, cache: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("NEURALSET_CACHE", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--cache", str(cache)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "windows of 32 channels x 20 samples; labels ('none', 'word')" in proc.stdout
    match = ACCURACY.search(proc.stdout)
    assert match, proc.stdout
    train_acc, val_acc = map(float, match.groups())
    # the synthetic MEG responds to every word onset: the task is learnt within three epochs
    assert train_acc >= 0.9 and val_acc >= 0.9, proc.stdout
