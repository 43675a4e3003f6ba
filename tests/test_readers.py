"""``neuralset.readers``: which MNE reader opens a file, and the fixes for missing options."""

from __future__ import annotations

from pathlib import Path

import mne
import pytest

from neuralset.readers import open_raw, reader_hint, unreadable_error

CNT = Path(__file__).parent / "data" / "cnt" / "test_CNT_events_mne_JWoess_clipped.cnt"


def test_a_neuroscan_cnt_is_opened_by_the_cnt_reader_with_its_options() -> None:
    raw = open_raw(CNT, {"data_format": "int16"})
    assert isinstance(raw, mne.io.cnt.cnt.RawCNT) and not raw.preload
    assert raw.n_times == 90_000
    wrong = open_raw(CNT, {"data_format": "int32"})  # what the option changes
    assert len(raw.annotations) == 3 and len(wrong.annotations) == 12
    with pytest.raises(RuntimeError, match="set data_format manually"):
        open_raw(CNT)  # the CNT reader's own error, not read_raw's "any of the possible readers"


def test_another_cnt_goes_through_mne_read_raw(tmp_path: Path) -> None:
    ant = tmp_path / "ant.cnt"
    ant.write_bytes(b"RIFF" + bytes(64))  # an ANT Neuro CNT is a RIFF file
    with pytest.raises(RuntimeError, match="any of the possible readers for extension .cnt"):
        open_raw(ant)


def test_hints_name_the_option_or_nothing() -> None:
    asked = RuntimeError("Could not automatically compute ... set data_format manually.")
    assert reader_hint(asked, "EegExtractor") == (
        "this Neuroscan CNT file does not record how its samples are stored, and MNE will not "
        "guess; set EegExtractor.reader_options={'data_format': 'int16'} (or 'int32'; 16-bit is "
        "the most common)"
    )
    other = OSError("No such file")
    assert reader_hint(other, "EegExtractor") is None
    assert str(unreadable_error("MegExtractor", "/x.fif", "run 1", other)) == (
        "MegExtractor: cannot read /x.fif (run 1): No such file"
    )
