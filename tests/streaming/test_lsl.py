"""Lab Streaming Layer: a recording replayed with mne-lsl's PlayerLSL, read back and streamed.

Network rule: LSL traffic must stay on 127.0.0.1. The replay runs in a child process inside a
new network namespace whose only interface is loopback (``isolated_command``: ``unshare -rn``;
the kernel guarantees no packet can leave), with liblsl also configured for loopback discovery
(``configure_loopback``). Where such a namespace cannot be made, the test is skipped: the
streaming path is then covered by the in-process source of ``test_online.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralset.extractors.neural.mne import MegExtractor
from neuralset.segments import TriggerSegmenter
from neuralset.store import Store
from neuralset.streaming.lsl import isolated_command
from neuralset.streaming.online import stored_scaling
from neuralset.synthetic import SyntheticStudy

pytest.importorskip("mne_lsl")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# stateless online steps (no filter): the stream starts mid-recording (the player runs before
# the inlet connects), so filter states could not match an offline pass from sample 0
MEG = MegExtractor(causal=True, frequency=200.0, scaling="robust", clamp=5.0, baseline=(-0.1, 0.0))


def test_player_lsl_replay_streams_the_offline_windows(tmp_path):
    config_path = tmp_path / "config.json"
    out = tmp_path / "out.npz"
    command = isolated_command(
        [sys.executable, str(HERE / "lsl_replay.py"), str(config_path), str(out)]
    )
    if command is None:
        pytest.skip("no loopback-only network namespace (unshare -rn): LSL is not run here")
    study = SyntheticStudy(
        path=tmp_path / "study", n_subjects=1, duration=6.0, meg_channels=9, meg_sfreq=200.0,
        eeg_channels=4, eeg_sfreq=200.0, modalities=("meg",),
    )  # fmt: skip
    events = study.events()
    store = Store(tmp_path / "store")
    MEG.prepare(events, store, progress=False)
    config = {
        "path": str(study.path / "sub-01" / "sub-01_meg.fif"),
        "extractor": MEG.to_dict(),
        "segmenter": {"offset": -0.1, "duration": 0.5},
        "scaling": stored_scaling(MEG, events, store),
    }
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    # every sample arrived, in order, with its exact float64 value
    assert bool(got["samples_equal"]) and bool(got["stamps_regular"])
    assert int(got["first"]) + int(got["n_samples"]) == 1200
    assert list(got["ch_names"])[:2] == ["RAMP", "MEG 001"]
    # the markers of the annotation stream cut the offline windows, sample for sample
    segments = TriggerSegmenter(triggers="Word", offset=-0.1, duration=0.5, require=("Meg",))(
        events
    )
    offline = MEG.read(segments, store).data
    starts = np.asarray(segments.start)
    match = [int(np.flatnonzero(np.isclose(starts, s, atol=1e-6))[0]) for s in got["starts"]]
    assert len(match) >= 10 and set(got["values"]) == {"Word"}
    np.testing.assert_array_equal(got["windows"], offline[match])
