"""The stream's clock: a replayed file's first sample is where the offline study puts it.

The recording is MNE's real KIT test file (``/work/shared/data/mne-testing-files``), cropped by
MNE so that its FIF has ``first_samp != 0`` (and a ``meas_date``), with annotations on MNE's
clock. The study reads it with :class:`RecordingsStudy`; the replay must cut the windows the
offline extractor reads, sample for sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuralset.extractors.neural.mne import MegExtractor
from neuralset.segments import TriggerSegmenter
from neuralset.store import Store
from neuralset.streaming.online import OnlinePipeline
from neuralset.streaming.source import ArraySource, Marker, markers_from_events
from neuralset.studies.annotations import EventMap
from neuralset.studies.recordings import RecordingsStudy

KIT_FIF = Path("/work/shared/data/mne-testing-files/kit/test_bin_raw.fif")
ONSETS = np.array([0.2, 0.45, 0.83, 1.1])  # seconds after the cropped file's first sample
MEG = MegExtractor(causal=True, frequency=100.0, filter=(1.0, 40.0))
WORDS = TriggerSegmenter(triggers="Word", offset=-0.1, duration=0.3, require=("Meg",))


@pytest.fixture(scope="module")
def cropped(tmp_path_factory) -> tuple[Path, float]:
    import mne

    if not KIT_FIF.exists():
        pytest.skip(f"{KIT_FIF} is not here (shared MNE test files)")
    raw = mne.io.read_raw_fif(KIT_FIF, preload=True, verbose="error").crop(tmin=0.3)
    first_time = raw.first_time  # 0.3 s: sample 300 of the acquisition
    raw.set_annotations(
        mne.Annotations(
            ONSETS + first_time, 0.05, ["Word"] * len(ONSETS), orig_time=raw.info["meas_date"]
        )
    )
    folder = tmp_path_factory.mktemp("kit")
    raw.save(folder / "sub-01_raw.fif", verbose="error")
    return folder, first_time


def test_file_with_first_samp_streams_on_the_study_clock(cropped, tmp_path):
    import mne

    folder, first_time = cropped
    raw = mne.io.read_raw_fif(folder / "sub-01_raw.fif", verbose="error")
    assert raw.first_samp == 300 and raw.first_time == pytest.approx(0.3) == first_time
    study = RecordingsStudy(
        path=folder, files=("*.fif",), annotations={"Word": EventMap(type="Word")}
    )
    events = study.events()
    words = events[events["type"] == "Word"]
    np.testing.assert_allclose(words["start"], ONSETS, atol=1e-9)  # the first sample is 0 s
    store = Store(tmp_path / "store")
    MEG.prepare(events, store, progress=False)
    segments = WORDS(events)
    offline = MEG.read(segments, store).data
    timeline = str(events["timeline"].iloc[0])

    source = ArraySource.from_file(folder / "sub-01_raw.fif", 25)
    assert source.t0 == 0.0 and source.first_time == pytest.approx(0.3)
    pipe = OnlinePipeline(MEG, source.info, WORDS, backend="numpy")
    windows = [w for b in pipe.run(source, markers_from_events(events, None, timeline)) for w in b]
    assert [w.start for w in windows] == pytest.approx(list(segments.start), abs=1e-12)
    assert offline.shape == (4, 157, 30)
    np.testing.assert_array_equal(np.stack([w.data for w in windows]), offline)

    # markers on MNE's clock (the raw annotations' onsets): the same windows with t0=first_time
    source = ArraySource.from_file(folder / "sub-01_raw.fif", 25, t0=source.first_time)
    pipe = OnlinePipeline(MEG, source.info, WORDS, backend="numpy")
    markers = [Marker(float(t), "Word", "Word") for t in raw.annotations.onset]
    windows = [w for b in pipe.run(source, markers) for w in b]
    np.testing.assert_array_equal(np.stack([w.data for w in windows]), offline)
