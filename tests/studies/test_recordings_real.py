"""RecordingsStudy and the MNE extractors against MNE on its own test recordings (review round 4).

``../shared/data/mne-testing-files`` (see its README): each test reads one real file through
neuralset and through MNE directly, and compares what comes out.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.extractors import EegExtractor
from neuralset.segments import segment_on_triggers, sliding_windows
from neuralset.store import Store
from neuralset.studies.recordings import RecordingsStudy

MNE_FILES = Path("/work/shared/data/mne-testing-files")

pytestmark = pytest.mark.skipif(not MNE_FILES.is_dir(), reason="mne-testing-files not found")


def _quiet(study: RecordingsStudy) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.events()


def _quiet_cached(study: RecordingsStudy, store: Store) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.events(store)


def test_edf_trigger_channel_is_not_stored_as_eeg(tmp_path: Path) -> None:
    """The EDF header types its trigger channel ``DIG DTRIG`` as EEG: the study reads it as the
    stim channel, and so must the extractor (it stored the trigger codes among the EEG)."""
    rel, channel = "edf/test_edf_stim_channel.edf", "DIG DTRIG"
    raw = mne.io.read_raw(MNE_FILES / rel, stim_channel=channel, preload=True, verbose="error")
    ref = mne.find_events(raw, stim_channel=channel, shortest_event=1, verbose="error")
    events = _quiet(RecordingsStudy(path=MNE_FILES, files=(rel,), stim_channel=channel))
    assert events.loc[events["type"] == "Eeg", "stim_channel"].tolist() == [channel]
    segments = segment_on_triggers(events, "Stimulus", offset=-0.25, duration=0.5).require("Eeg")
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=128.0)
    extractor.prepare(events, store, progress=False)
    epochs = mne.Epochs(
        raw, ref, tmin=-0.25, tmax=0.25 - 1 / 128, baseline=None, picks="eeg", preload=True,
        verbose="error",
    )  # fmt: skip
    assert extractor.output_channels(segments, store) == tuple(epochs.ch_names)
    assert channel not in epochs.ch_names and len(epochs.ch_names) == 24
    got = extractor.read(segments, store).data
    assert got.shape == (len(ref), 24, 64)
    np.testing.assert_allclose(got, epochs.get_data(), rtol=1e-5, atol=1e-9)


def test_edf_trigger_channel_read_as_mne_reads_it(tmp_path: Path) -> None:
    """``picks=("stim",)`` on that channel gives MNE's trigger codes (100), not the codes scaled
    as microvolts (1e-4) by the EEG reading of the channel."""
    rel, channel = "edf/test_edf_stim_channel.edf", "DIG DTRIG"
    raw = mne.io.read_raw(MNE_FILES / rel, stim_channel=channel, preload=True, verbose="error")
    events = _quiet(RecordingsStudy(path=MNE_FILES, files=(rel,), stim_channel=channel))
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=128.0, picks=("stim",))
    extractor.prepare(events, store, progress=False)
    segments = sliding_windows(events, duration=1.0, stride=1.0, blocks="Eeg")
    got = extractor.read(segments, store).data
    assert extractor.output_channels(segments, store) == (channel,)
    want = raw.get_data(picks=[channel])[:, : len(segments) * 128]
    np.testing.assert_array_equal(got.transpose(1, 0, 2).reshape(1, -1), want)
    assert set(np.unique(got)) == {0.0, 100.0}


def _brainvision_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "bv"
    shutil.copytree(MNE_FILES / "brainvision", folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_cached_events_follow_a_brainvision_marker_file(tmp_path: Path) -> None:
    """Editing the ``.vmrk`` (the markers) changes the events; the cached events were stale."""
    folder = _brainvision_copy(tmp_path)
    store = Store(tmp_path / "store")
    before = _quiet_cached(RecordingsStudy(path=folder), store)
    assert len(before) == 14
    marker = folder / "test.vmrk"
    lines = marker.read_text().splitlines(keepends=True)
    marker.write_text("".join(line for line in lines if not line.startswith("Mk13=")))
    after = _quiet_cached(RecordingsStudy(path=folder), store)
    raw = mne.io.read_raw(folder / "test.vhdr", verbose="error")
    assert len(raw.annotations) == 12 and len(after) == 13
    assert "SyncStatus/Sync On" not in set(after["description"].dropna())


def test_stored_recording_follows_a_brainvision_data_file(tmp_path: Path) -> None:
    """Replacing the ``.eeg`` (the samples) beside an unchanged ``.vhdr`` is a new version of
    the recording; the store served the old samples."""
    folder = _brainvision_copy(tmp_path)
    events = _quiet(RecordingsStudy(path=folder, files=("*.vhdr",)))
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=1000.0)
    segments = sliding_windows(events, duration=1.0, stride=1.0, blocks="Eeg")
    extractor.prepare(events, store, progress=False)
    assert np.abs(extractor.read(segments, store).data).max() > 0
    data = folder / "test.eeg"
    data.write_bytes(bytes(data.stat().st_size))  # the same size, every sample 0
    extractor.prepare(events, store, progress=False)
    raw = mne.io.read_raw(folder / "test.vhdr", preload=True, verbose="error")
    assert np.abs(raw.get_data()).max() == 0
    assert np.abs(extractor.read(segments, store).data).max() == 0


def test_auto_stim_channel_without_one_names_the_file_and_the_fix() -> None:
    """MNE's message advised ``mne.events_from_annotations``, which the study already does."""
    path = MNE_FILES / "edf/test_edf_stim_channel.edf"
    study = RecordingsStudy(path=MNE_FILES, files=("edf/*_stim_channel.edf",), stim_channel="auto")
    with pytest.raises(ConfigError) as err:
        study.events()
    assert str(err.value) == (
        f"RecordingsStudy.stim_channel: 'auto' finds no stim channel in {path} (its 0 "
        "annotations are events without it); name its trigger channel, stim_channel='<name>' "
        "(an EDF header types it EEG), or set stim_channel=None, or leave the file out of "
        "files; channels: EEG Fp1, EEG Fp2, EEG F7, EEG F3, EEG Fz, EEG F4, EEG F8, EEG T3, "
        "EEG C3, EEG Cz, EEG C4, EEG T4, EEG T5, EEG P3, EEG Pz, EEG P4, EEG T6, EEG O1, EEG O2, "
        "EOG VEOG_I..."
    )


def test_split_fif_parts_and_recordings_named_like_parts(tmp_path: Path) -> None:
    """A BIDS split FIF (``_split-01_``, ``_split-02_``...) was dropped whole: its first part
    was taken for a continuation. A lone ``run-1.fif`` is a recording, not a part."""
    raw = mne.io.read_raw(MNE_FILES / "kit/test_bin_raw.fif", preload=True, verbose="error")
    big = mne.concatenate_raws([raw.copy() for _ in range(3)])
    folder = tmp_path / "fif"
    folder.mkdir()
    big.save(
        folder / "sub-01_task-x_meg.fif", split_size="2MB", split_naming="bids", verbose="error"
    )
    shutil.copy(MNE_FILES / "kit/test_bin_raw.fif", folder / "run-1.fif")
    parts = sorted(p.name for p in folder.glob("sub-01_task-x_split-*_meg.fif"))
    assert len(parts) > 2
    study = RecordingsStudy(path=folder, files=("*.fif",))
    assert study.timelines() == ["run-1.fif", "sub-01_task-x_split-01_meg.fif"]
    events = _quiet(study)
    durations = events.loc[events["type"] == "Meg", "duration"].tolist()
    assert durations == [2.0, big.n_times / 1000.0]
