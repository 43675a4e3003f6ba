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


def test_fmri_encoding_example(tmp_path: Path) -> None:
    """Word features -> HRF -> ridge per parcel: the two responsive regions are found, and the
    R^2 map is written as a PNG through inverse_transform."""
    env = {**os.environ}
    env.pop("NEURALSET_CACHE", None)
    out = tmp_path / "map.png"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "fmri_encoding.py"),
            "--quick",
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "120 frames (60 train, 60 test); 3 features, 20 parcels" in proc.stdout
    scores = dict(re.findall(r"^R\^2 (\w+): (-?\d\.\d+)$", proc.stdout, re.M))
    assert float(scores["left_superior_temporal"]) > 0.5, proc.stdout
    assert float(scores["occipital"]) > 0.5, proc.stdout
    elsewhere = re.search(r"^median R\^2 elsewhere: (-?\d\.\d+)$", proc.stdout, re.M)
    assert elsewhere and abs(float(elsewhere.group(1))) < 0.1, proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
