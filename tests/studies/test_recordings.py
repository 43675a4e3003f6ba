"""Any recording file, with its annotations (issue 9, section 3), on files nobody here wrote.

``../shared/data/mne-testing-files`` (MNE-Python's own test recordings: BrainVision, EDF+, BDF,
KIT, FIF), the EDF+/BDF files shipped inside the pyedflib wheel and a real EEGLAB file from
MNE's testing data (``tests/data/eeglab``). References: MNE reading the
same file (``mne.events_from_annotations``, ``mne.find_events``, ``mne.Epochs``,
``mne.make_fixed_length_epochs``).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.extractors import EegExtractor, MegExtractor
from neuralset.segments import segment_on_triggers, sliding_windows
from neuralset.store import Store
from neuralset.studies.annotations import EventMap
from neuralset.studies.recordings import RecordingsStudy

MNE_FILES = Path("/work/shared/data/mne-testing-files")
PYEDFLIB = (
    Path(__import__("importlib.util").util.find_spec("pyedflib").origin).parent / "tests/data"
)

pytestmark = pytest.mark.skipif(not MNE_FILES.is_dir(), reason="mne-testing-files not found")


def _raw(rel: str) -> mne.io.BaseRaw:
    return mne.io.read_raw(MNE_FILES / rel, verbose="error")


def _quiet(study: RecordingsStudy) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.events()


def test_one_data_event_per_file_from_the_header() -> None:
    events = _quiet(RecordingsStudy(path=MNE_FILES))
    recs = events[events["filepath"].notna() & (events["type"] != "Stimulus")]
    assert recs["timeline"].tolist() == [
        "brainvision/test.vhdr",
        "edf/test.bdf",
        "edf/test.edf",
        "edf/test_bdf_stim_channel.bdf",
        "edf/test_edf_stim_channel.edf",
        "kit/test.sqd",
        "kit/test_bin_raw.fif",
    ]
    for _, rec in recs.iterrows():
        raw = _raw(rec["filepath"])
        assert rec["frequency"] == raw.info["sfreq"]
        assert rec["duration"] == raw.n_times / raw.info["sfreq"]
        assert rec["duration_source"] == "header" and rec["file_present"]
    assert recs["type"].astype(str).tolist() == ["Eeg"] * 5 + ["Meg"] * 2


@pytest.mark.parametrize(
    "rel",
    ["brainvision/test.vhdr", "edf/test.edf"],
)
def test_annotations_equal_events_from_annotations(rel: str) -> None:
    raw = _raw(rel)
    ref, event_id = mne.events_from_annotations(raw, verbose="error")
    mapping = {d: EventMap(type="Stimulus", code=c) for d, c in event_id.items()}
    study = RecordingsStudy(path=MNE_FILES, files=(rel,), annotations=mapping, unmapped="error")
    events = study.events()
    stim = events[events["type"] == "Stimulus"].sort_values("start", kind="stable")
    samples = np.round(stim["start"].to_numpy() * raw.info["sfreq"]).astype(int) + raw.first_samp
    np.testing.assert_array_equal(samples, ref[:, 0])
    np.testing.assert_array_equal(stim["code"].to_numpy(), ref[:, 2])
    np.testing.assert_allclose(stim["duration"], raw.annotations.duration)


@pytest.mark.parametrize(
    ("rel", "channel"),
    [
        ("edf/test_bdf_stim_channel.bdf", "auto"),
        ("edf/test.edf", "Status"),
        ("edf/test_edf_stim_channel.edf", "DIG DTRIG"),
        ("kit/test.sqd", "STI 014"),
        ("kit/test_bin_raw.fif", "auto"),
    ],
)
def test_stim_channel_equals_find_events(rel: str, channel: str) -> None:
    kwargs = {"stim_channel": channel} if rel.endswith(".edf") else {}
    raw = mne.io.read_raw(MNE_FILES / rel, verbose="error", **kwargs)
    ref = mne.find_events(
        raw, stim_channel=None if channel == "auto" else channel, shortest_event=1, verbose="error"
    )
    assert len(ref) > 0
    study = RecordingsStudy(path=MNE_FILES, files=(rel,), stim_channel=channel, unmapped="keep")
    events = _quiet(study)
    stim = events[(events["type"] == "Stimulus") & events["description"].str.fullmatch(r"\d+")]
    samples = np.round(stim["start"].to_numpy() * raw.info["sfreq"]).astype(int) + raw.first_samp
    np.testing.assert_array_equal(samples, ref[:, 0])
    np.testing.assert_array_equal(stim["code"].to_numpy(), ref[:, 2])


def test_windows_equal_mne_epochs_brainvision(tmp_path: Path) -> None:
    rel = "brainvision/test.vhdr"
    raw = _raw(rel)
    ref, event_id = mne.events_from_annotations(raw, verbose="error")
    keep = {k: v for k, v in event_id.items() if k.startswith("Stimulus/")}
    study = RecordingsStudy(
        path=MNE_FILES,
        files=(rel,),
        annotations={"Stimulus/*": EventMap(type="Stimulus")},
        unmapped="drop",
    )
    with pytest.warns(
        UserWarning, match=r"descriptions without an event map, dropped: 'Event/254'"
    ):
        events = study.events()
    sfreq = raw.info["sfreq"]
    tmin, n_times = -0.1, 300
    segments = segment_on_triggers(events, "Stimulus", offset=tmin, duration=n_times / sfreq)
    segments = segments.require("Eeg")
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=sfreq)
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    sel = ref[np.isin(ref[:, 2], list(keep.values()))]
    epochs = mne.Epochs(
        raw, sel, tmin=tmin, tmax=tmin + (n_times - 1) / sfreq, baseline=None, picks="eeg",
        preload=True, verbose="error",
    )  # fmt: skip
    assert len(epochs) == len(segments) == 7
    np.testing.assert_allclose(got, epochs.get_data(), rtol=1e-5, atol=1e-9)


def test_windows_equal_mne_epochs_kit_stim(tmp_path: Path) -> None:
    rel = "kit/test_bin_raw.fif"
    raw = _raw(rel)
    ref = mne.find_events(raw, shortest_event=1, verbose="error")
    study = RecordingsStudy(
        path=MNE_FILES, files=(rel,), stim_channel="auto",
        annotations={"128": EventMap(type="Stimulus", description="trigger")},
    )  # fmt: skip
    events = study.events()
    assert events.loc[events["type"] == "Stimulus", "description"].tolist() == ["trigger"] * 2
    segments = segment_on_triggers(events, "Stimulus", offset=-0.05, duration=0.2).require("Meg")
    store = Store(tmp_path / "store")
    extractor = MegExtractor(frequency=1000.0, picks=("mag",))
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    epochs = mne.Epochs(
        raw, ref, tmin=-0.05, tmax=0.149, baseline=None, picks="mag", preload=True, verbose="error"
    )
    np.testing.assert_allclose(got, epochs.get_data(), rtol=1e-5, atol=1e-18)


def test_sliding_windows_equal_fixed_length_epochs(tmp_path: Path) -> None:
    path = PYEDFLIB / "test_subsecond.edf"
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    study = RecordingsStudy(path=PYEDFLIB, files=("test_subsecond.edf",))
    events = _quiet(study)
    ref, event_id = mne.events_from_annotations(raw, verbose="error")
    stim = events[events["type"] == "Stimulus"].sort_values("start", kind="stable")
    assert stim["description"].tolist() == list(raw.annotations.description)
    samples = np.round(stim["start"].to_numpy() * raw.info["sfreq"]).astype(int)
    np.testing.assert_array_equal(samples, ref[:, 0])
    segments = sliding_windows(events, duration=2.0, stride=2.0, blocks="Eeg")
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=raw.info["sfreq"])
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    epochs = mne.make_fixed_length_epochs(raw, duration=2.0, preload=True, verbose="error")
    assert len(epochs) == len(segments)
    np.testing.assert_allclose(got, epochs.get_data(picks="eeg"), rtol=1e-5, atol=1e-9)


def test_pyedflib_files_and_event_maps() -> None:
    study = RecordingsStudy(
        path=PYEDFLIB,
        files=("*.edf", "*.bdf"),
        annotations={
            "Recording starts": EventMap(type="Action", code=1),
            "Recording ends": EventMap(type="Action", code=2),
            "XL*": EventMap(type="Artifact"),
            "Clip Note": EventMap(type="Word", fields={"language": "en"}),
        },
        unmapped="error",
    )
    with pytest.raises(ConfigError) as err:
        study.events()
    assert "test_utf8.edf: no event map for the descriptions ['中文测试八个字']" in str(err.value)
    with pytest.warns(UserWarning, match=r"'中文测试八个字' \(1 files\)"):
        events = study.replace(unmapped="keep").events()
    assert events["timeline"].nunique() == 7
    generator = events[events["timeline"] == "test_generator.edf"]
    assert generator.loc[generator["type"] == "Action", "code"].tolist() == [1, 2]
    words = events[events["type"] == "Word"]
    assert set(words["text"]) == {"Clip Note"} and set(words["language"]) == {"en"}
    artifacts = events[events["type"] == "Artifact"]
    assert set(artifacts["description"]) == {"XLSpike", "XLEvent"}


def test_files_patterns_and_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"RecordingsStudy.files: no recording matches \['\*\.xyz'\]"
    ):
        RecordingsStudy(path=MNE_FILES, files=("*.xyz",)).events()
    with pytest.raises(ConfigError, match=r"EventMap.type: unknown event type 'Stimulos'"):
        EventMap(type="Stimulos")
    with pytest.raises(ConfigError, match=r"no channel 'STI 999' for stim_channel"):
        RecordingsStudy(path=MNE_FILES, files=("kit/test.sqd",), stim_channel="STI 999").events()
    study = from_dict(
        {
            "kind": "recordings",
            "path": str(MNE_FILES),
            "files": ["edf/*.bdf"],
            "annotations": {"4": {"type": "Stimulus", "description": "four"}},
            "stim_channel": "auto",
        }
    )
    assert isinstance(study, RecordingsStudy) and study.annotations["4"].description == "four"
    assert study.timelines() == ["edf/test.bdf", "edf/test_bdf_stim_channel.bdf"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.edf").write_bytes(b"0       not an edf header")
    with pytest.raises(ConfigError, match=r"unreadable recording .*broken.edf: "):
        RecordingsStudy(path=bad).events()


def test_split_fif_is_one_recording_and_cache_follows_files(tmp_path: Path) -> None:
    raw = _raw("kit/test_bin_raw.fif").load_data()
    big = mne.concatenate_raws([raw.copy() for _ in range(3)])
    folder = tmp_path / "fif"
    folder.mkdir()
    big.save(folder / "long_raw.fif", split_size="2MB", verbose="error")
    assert (folder / "long_raw-1.fif").exists()
    store = Store(tmp_path / "store")
    study = RecordingsStudy(path=folder)
    events = study.events(store)
    assert events["timeline"].tolist().count("long_raw.fif") == len(events)
    assert events.loc[events["type"] == "Meg", "duration"].tolist() == [big.n_times / 1000.0]
    shutil.copy(MNE_FILES / "kit/test_bin_raw.fif", folder / "long_raw.fif")  # a changed file
    (folder / "long_raw-1.fif").unlink()
    again = RecordingsStudy(path=folder).events(store)
    assert again.loc[again["type"] == "Meg", "duration"].tolist() == [2.0]  # not the cached 6 s


def test_eeglab_events(tmp_path: Path) -> None:
    """An EEGLAB .set (written by MNE's exporter, eeglabio): its events equal MNE's reading."""
    info = mne.create_info(["Fz", "Cz", "Pz"], 200.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(1).normal(size=(3, 2000)) * 1e-5, info)
    raw.set_annotations(mne.Annotations([1.0, 2.5, 7.25], [0.0, 0.5, 0.0], ["go", "nogo", "go"]))
    mne.export.export_raw(tmp_path / "rec.set", raw, verbose="error")
    ref = mne.io.read_raw(tmp_path / "rec.set", verbose="error")
    events = RecordingsStudy(
        path=tmp_path, annotations={"go": EventMap(code=1), "nogo": EventMap(code=2)}
    ).events()
    stim = events[events["type"] == "Stimulus"].sort_values("start")
    np.testing.assert_allclose(stim["start"], ref.annotations.onset)
    assert stim["code"].tolist() == [1, 2, 1] and stim["description"].tolist() == [
        "go",
        "nogo",
        "go",
    ]
    rec = events[events["type"] == "Eeg"].iloc[0]
    assert rec["filepath"] == "rec.set" and rec["duration"] == ref.n_times / 200.0


def test_real_eeglab_events_and_windows(tmp_path: Path) -> None:
    """A real EEGLAB .set (MNE's test file): events with durations, latencies between samples."""
    folder = Path(__file__).parents[1] / "data" / "eeglab"
    raw = mne.io.read_raw(folder / "test_raw_event_duration.set", preload=True, verbose="error")
    ref, event_id = mne.events_from_annotations(raw, verbose="error")
    study = RecordingsStudy(
        path=folder,
        files=("*.set",),
        annotations={"square": EventMap(type="Stimulus", code=2), "rt": EventMap(type="Action")},
        unmapped="error",
    )
    events = study.events()
    marks = events[events["type"].isin(["Stimulus", "Action"])].sort_values("start")
    assert marks["description"].tolist() == ["square", "square", "rt"]
    np.testing.assert_allclose(marks["start"], raw.annotations.onset)  # not rounded
    np.testing.assert_allclose(marks["duration"], [0.5, 0.5, 0.5])
    samples = np.round(marks["start"].to_numpy() * raw.info["sfreq"]).astype(int)
    np.testing.assert_array_equal(samples, ref[:, 0])
    segments = segment_on_triggers(events, "Stimulus", offset=-0.25, duration=0.5).require("Eeg")
    store = Store(tmp_path / "store")
    extractor = EegExtractor(frequency=128.0)
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    squares = ref[ref[:, 2] == event_id["square"]]
    epochs = mne.Epochs(
        raw, squares, tmin=-0.25, tmax=0.25 - 1 / 128, baseline=None, preload=True,
        verbose="error",
    )  # fmt: skip
    assert got.shape == epochs.get_data().shape == (2, 1, 64)
    np.testing.assert_allclose(got, epochs.get_data(), rtol=1e-5, atol=1e-12)
