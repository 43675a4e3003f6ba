"""A real Neuroscan CNT file through :class:`RecordingsStudy` and :class:`EegExtractor`.

The file (``tests/data/cnt``, MNE-Python's own test recording) does not record its sample
format, so it is read with ``reader_options={"data_format": "int16"}``; the reference is
``mne.io.read_raw_cnt`` with the same option (``mne.events_from_annotations``, ``mne.Epochs``).
"""

from __future__ import annotations

import re
from pathlib import Path

import mne
import numpy as np
import pytest

from neuralset.config import ConfigError, from_yaml, to_yaml
from neuralset.extractors import EegExtractor
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from neuralset.studies.annotations import EventMap
from neuralset.studies.recordings import RecordingsStudy

CNT_DIR = Path(__file__).parents[1] / "data" / "cnt"
NAME = "test_CNT_events_mne_JWoess_clipped.cnt"
INT16 = {"data_format": "int16"}
MAPPING = {
    "KeyPad Response 1": EventMap(type="Action", code=1),
    "99": EventMap(type="Stimulus", code=99),
    "BAD_*": EventMap(type="Artifact"),
}


def _reference() -> mne.io.BaseRaw:
    return mne.io.read_raw_cnt(CNT_DIR / NAME, data_format="int16", preload=True, verbose="error")


def _study(**kwargs: object) -> RecordingsStudy:
    return RecordingsStudy(path=CNT_DIR, files=("*.cnt",), annotations=MAPPING, **kwargs)  # type: ignore[arg-type]


def test_without_the_sample_format_the_error_says_which_option_to_set() -> None:
    with pytest.raises(ConfigError) as err:
        _study(unmapped="error").events()
    assert str(err.value) == (
        f"unreadable recording {CNT_DIR / NAME}: this Neuroscan CNT file does not record how its "
        "samples are stored, and MNE will not guess; set RecordingsStudy.reader_options="
        "{'data_format': 'int16'} (or 'int32'; 16-bit is the most common), and the same on "
        "the extractor"
    )


def test_header_and_annotations_equal_mne() -> None:
    raw = _reference()
    events = _study(reader_options=INT16, unmapped="error").events()
    (rec,) = events[events["type"] == "Eeg"].itertuples()
    assert rec.frequency == raw.info["sfreq"] == 1000.0
    assert rec.duration == raw.n_times / raw.info["sfreq"] == 90.0
    assert rec.timeline == NAME and rec.duration_source == "header"
    ref, event_id = mne.events_from_annotations(raw, verbose="error")  # BAD_ spans left out
    marks = events[events["type"].isin(["Action", "Stimulus"])].sort_values("start")
    samples = np.round(marks["start"].to_numpy() * raw.info["sfreq"]).astype(int)
    np.testing.assert_array_equal(samples, ref[:, 0])
    assert marks["description"].tolist() == ["KeyPad Response 1", "99"]
    assert marks["code"].tolist() == [1, 99]
    (artifact,) = events[events["type"] == "Artifact"].itertuples()
    assert (artifact.start, artifact.duration) == (0.0, 90.0)  # the whole file is marked bad


def test_windows_equal_mne_epochs(tmp_path: Path) -> None:
    raw = _reference()
    events = _study(reader_options=INT16, unmapped="error").events()
    segments = segment_on_triggers(
        events, events["type"].isin(["Action", "Stimulus"]).to_numpy(), offset=-0.2, duration=0.5
    ).require("Eeg")
    extractor = EegExtractor(frequency=1000.0, reader_options=INT16)
    store = Store(tmp_path / "store")
    extractor.prepare(events, store, progress=False)
    got = extractor.read(segments, store).data
    ref, _ = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(
        raw, ref[np.argsort(ref[:, 0])], tmin=-0.2, tmax=0.299, baseline=None, picks="eeg",
        reject_by_annotation=False, preload=True, verbose="error",
    )  # fmt: skip
    assert got.shape == epochs.get_data().shape == (2, 2, 500)
    np.testing.assert_allclose(got, epochs.get_data(), rtol=1e-5, atol=1e-12)


def test_an_extractor_without_the_option_fails_at_preflight(tmp_path: Path) -> None:
    events = _study(reader_options=INT16, unmapped="drop").events()
    store = Store(tmp_path / "store")
    with pytest.raises(ValueError) as err:
        EegExtractor(frequency=1000.0).prepare(events, store, progress=False)
    assert re.fullmatch(
        rf"EegExtractor: cannot read {re.escape(str(CNT_DIR / NAME))} \(.+\): this Neuroscan "
        r"CNT file does not record how its samples are stored, and MNE will not guess; set "
        r"EegExtractor.reader_options=\{'data_format': 'int16'\} \(or 'int32'; 16-bit is the "
        r"most common\)",
        str(err.value),
    )
    assert not list(store.keys())  # nothing computed


def test_reader_options_are_part_of_the_key_and_round_trip() -> None:
    plain, int16 = (
        EegExtractor(frequency=100.0),
        EegExtractor(frequency=100.0, reader_options=INT16),
    )
    assert plain.prepare_key != int16.prepare_key
    assert from_yaml(to_yaml(int16)) == int16
    study = _study(reader_options=INT16)
    assert from_yaml(to_yaml(study)) == study
    assert study.key != _study().key
