"""Real ANT Neuro ``.cnt`` files through :class:`RecordingsStudy` and :class:`EegExtractor`.

References: MNE reading the same file (``mne.io.read_raw_ant``: ``mne.events_from_annotations``,
``mne.make_fixed_length_epochs``) and the vendor's own BrainVision export of the same recording.
"""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from neuralset.extractors import EegExtractor
from neuralset.segments import sliding_windows
from neuralset.store import Store
from neuralset.studies.annotations import EventMap
from neuralset.studies.recordings import RecordingsStudy

pytest.importorskip("antio")  # a dependency of the meg extra: present wherever the suite runs
ANT = Path(__file__).parents[1] / "data" / "ant"


def test_an_ant_cnt_and_its_brainvision_export_give_the_same_windows(tmp_path: Path) -> None:
    study = RecordingsStudy(
        path=ANT,
        files=("test-ref.cnt", "test-ref.vhdr"),
        annotations={"Marker/Impedance": EventMap(type="Artifact")},
        unmapped="error",
    )
    events = study.events()
    recs = events[events["type"] == "Eeg"].set_index("timeline")
    assert recs.index.tolist() == ["test-ref.cnt", "test-ref.vhdr"]
    assert recs["frequency"].tolist() == [500.0, 500.0]
    assert recs["duration"].tolist() == [1946 / 500.0] * 2
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=500.0)
    extractor.prepare(events, store, progress=False)
    windows = sliding_windows(events, duration=1.0, stride=1.0, blocks="Eeg")
    data = extractor.read(windows, store).data
    names = np.asarray(events["timeline"].cat.categories)[windows.timeline]
    from_cnt, from_vhdr = data[names == "test-ref.cnt"], data[names == "test-ref.vhdr"]
    raw = mne.io.read_raw_ant(ANT / "test-ref.cnt", preload=True, verbose="error")
    epochs = mne.make_fixed_length_epochs(raw, duration=1.0, preload=True, verbose="error")
    assert from_cnt.shape == epochs.get_data().shape == (3, 64, 500)
    np.testing.assert_allclose(from_cnt, epochs.get_data(), rtol=1e-5, atol=1e-12)
    # the export stores the same samples, rounded to its resolution (0.0078 uV here)
    np.testing.assert_allclose(from_cnt, from_vhdr, rtol=0, atol=1e-8)


def test_ant_annotations_equal_events_from_annotations() -> None:
    raw = mne.io.read_raw_ant(ANT / "test-user-annotation.cnt", verbose="error")
    ref, event_id = mne.events_from_annotations(raw, verbose="error")
    assert event_id == {"1000": 1}
    study = RecordingsStudy(
        path=ANT,
        files=("test-user-annotation.cnt",),
        annotations={"1000": EventMap(type="Stimulus", code=1000)},
        unmapped="error",
    )
    events = study.events()
    stim = events[events["type"] == "Stimulus"]
    samples = np.round(stim["start"].to_numpy() * raw.info["sfreq"]).astype(int)
    np.testing.assert_array_equal(samples, ref[:, 0])
    assert stim["code"].tolist() == [1000]
    (rec,) = events[events["type"] == "Eeg"].itertuples()
    assert (rec.frequency, rec.duration) == (500.0, raw.n_times / 500.0)
