"""Timed words from transcript files: TextGrid (against praatio's reader), CSV, Gentle, MFA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.events.transcripts import (
    TranscriptError,
    TranscriptWords,
    read_aligner_json,
    read_textgrid,
    read_transcript,
    read_word_table,
)

WORDS = [
    (0.0, 0.31, ""),
    (0.31, 0.62, "Hello,"),
    (0.62, 0.9, 'say "hi"'),
    (0.9, 1.4, "sp"),
    (1.4, 2.05, "wörld"),
]


def praatio_textgrid(path: Path, fmt: str) -> None:
    from praatio import textgrid
    from praatio.utilities.constants import Interval, Point

    grid = textgrid.Textgrid()
    words = textgrid.IntervalTier("words", [Interval(a, b, t) for a, b, t in WORDS if t], 0, 2.05)
    phones = textgrid.IntervalTier(
        "phones", [Interval(0.31, 0.4, "HH"), Interval(0.4, 0.62, "AH")], 0, 2.05
    )
    marks = textgrid.PointTier("events", [Point(0.5, "click"), Point(1.7, "cough")], 0, 2.05)
    for tier in (words, phones, marks):
        grid.addTier(tier)
    grid.save(str(path), format=fmt, includeBlankSpaces=True)


@pytest.mark.parametrize("fmt", ["long_textgrid", "short_textgrid"])
def test_textgrid_equals_praatio(tmp_path: Path, fmt: str) -> None:
    from praatio import textgrid

    path = tmp_path / "a.TextGrid"
    praatio_textgrid(path, fmt)
    reference = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    for tier in ("words", "phones"):
        ours = read_textgrid(path, tier)
        entries = reference.getTier(tier).entries
        assert ours["text"].tolist() == [e.label for e in entries]
        np.testing.assert_allclose(ours["start"], [e.start for e in entries])
        np.testing.assert_allclose(ours["start"] + ours["duration"], [e.end for e in entries])
    points = read_textgrid(path, "events")
    assert points["text"].tolist() == ["click", "cough"] and (points["duration"] == 0).all()
    assert (
        read_textgrid(path, None)["text"].tolist() == read_textgrid(path, "words")["text"].tolist()
    )
    with pytest.raises(TranscriptError) as err:
        read_textgrid(path, "sentences")
    assert str(err.value) == f"{path}: no tier 'sentences'; tiers: words, phones, events"


def test_textgrid_utf16_and_quotes(tmp_path: Path) -> None:
    src = tmp_path / "a.TextGrid"
    praatio_textgrid(src, "long_textgrid")
    utf16 = tmp_path / "b.TextGrid"
    utf16.write_bytes(src.read_text(encoding="utf-8").encode("utf-16"))
    words = read_textgrid(utf16)
    assert words["text"].tolist() == ["", "Hello,", 'say "hi"', "sp", "wörld"]
    not_grid = tmp_path / "c.TextGrid"
    not_grid.write_text("hello")
    with pytest.raises(TranscriptError, match="not a Praat TextGrid text file"):
        read_textgrid(not_grid)


def test_csv_tsv_and_column_names(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv"
    pd.DataFrame({"Onset": [0.5, 0.1], "Duration": [0.2, 0.3], "Token": ["b", "a"]}).to_csv(
        path, sep="\t", index=False
    )
    words = read_word_table(path)
    assert words["text"].tolist() == ["a", "b"]  # in time order
    np.testing.assert_allclose(words["duration"], [0.3, 0.2])
    odd = tmp_path / "w.csv"
    pd.DataFrame({"t0": [0.0], "t1": [0.4], "lemma": ["x"]}).to_csv(odd, index=False)
    with pytest.raises(TranscriptError, match="needs a word, a start and an end"):
        read_word_table(odd)
    words = read_word_table(odd, columns={"start": "t0", "stop": "t1", "text": "lemma"})
    assert words.values.tolist() == [[0.0, 0.4, "x"]]


def test_csv_words_that_pandas_reads_as_missing_stay_words(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(
        "word,start,end\nNone,0.0,0.2\nof,0.2,0.3\n,0.3,0.5\nnull,0.5,0.7\nNA,0.7,0.9\n"
        "nan,0.9,1.0\n"
    )
    words = read_word_table(path)
    assert words["text"].tolist() == ["None", "of", "", "null", "NA", "nan"]
    np.testing.assert_allclose(words["duration"], [0.2, 0.1, 0.2, 0.2, 0.2, 0.1])
    untimed = tmp_path / "untimed.csv"  # WhisperX leaves some words (numbers) without times
    untimed.write_text("word,start,end\nwe,0.0,0.2\n42,,\nleft,0.4,0.6\n")
    with pytest.raises(TranscriptError) as err:
        read_word_table(untimed)
    assert str(err.value) == (
        f"{untimed}: column 'start' has no time (s) at 1 word(s), rows 1 (''); give each word "
        "its times, or drop the untimed rows from the file"
    )


def test_gentle_and_mfa_json(tmp_path: Path) -> None:
    gentle = {
        "transcript": "The cat, um, sat.",
        "words": [
            {
                "alignedWord": "the",
                "case": "success",
                "start": 0.2,
                "end": 0.41,
                "word": "The",
                "startOffset": 0,
                "endOffset": 3,
                "phones": [{"duration": 0.21, "phone": "dh_B"}],
            },
            {
                "alignedWord": "cat",
                "case": "success",
                "start": 0.41,
                "end": 0.8,
                "word": "cat",
                "startOffset": 4,
                "endOffset": 7,
                "phones": [],
            },
            {"case": "not-found-in-audio", "word": "um", "startOffset": 9, "endOffset": 11},
            {
                "alignedWord": "sat",
                "case": "success",
                "start": 1.1,
                "end": 1.5,
                "word": "sat",
                "startOffset": 13,
                "endOffset": 16,
                "phones": [],
            },
        ],
    }
    path = tmp_path / "gentle.json"
    path.write_text(json.dumps(gentle))
    assert read_aligner_json(path)["text"].tolist() == ["the", "cat", "sat"]
    # a word out of Gentle's dictionary is timed, with alignedWord "<unk>" (was dropped as a
    # silence by TranscriptWords)
    oov = {"alignedWord": "<unk>", "case": "success", "start": 1.6, "end": 2.0, "word": "Ishmael"}
    path.write_text(json.dumps({**gentle, "words": [*gentle["words"], oov]}))
    assert read_aligner_json(path)["text"].tolist() == ["the", "cat", "sat", "Ishmael"]
    mfa = {
        "start": 0,
        "end": 2.0,
        "tiers": {
            "words": {"type": "interval", "entries": [[0.1, 0.5, "hello"], [0.6, 1.0, "there"]]},
            "phones": {"type": "interval", "entries": [[0.1, 0.2, "HH"]]},
        },
    }
    path = tmp_path / "mfa.json"
    path.write_text(json.dumps(mfa))
    words = read_transcript(path)
    assert words["text"].tolist() == ["hello", "there"]
    np.testing.assert_allclose(words["duration"], [0.4, 0.4])
    assert read_transcript(path, tier="phones")["text"].tolist() == ["HH"]
    with pytest.raises(TranscriptError, match="unknown transcript format '.srt'"):
        (tmp_path / "x.srt").write_text("")
        read_transcript(tmp_path / "x.srt")
    with pytest.raises(TranscriptError, match="transcript not found"):
        read_transcript(tmp_path / "missing.TextGrid")


def test_transcript_words_places_the_words_on_the_timeline(tmp_path: Path) -> None:
    praatio_textgrid(tmp_path / "story.TextGrid", "long_textgrid")
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Audio", "Audio"],
                "start": [10.0, 3.0],
                "duration": [2.05, 1.0],
                "timeline": ["sub-01", "sub-02"],
                "filepath": ["story.wav", "story.wav"],
                "offset": [0.0, 0.5],  # sub-02 hears [0.5, 1.5) of the file
                "transcript": ["story.TextGrid", "story.TextGrid"],
                "study_root": str(tmp_path),
            }
        )
    )
    out = TranscriptWords()(events)
    words = out[out["type"] == "Word"]
    one = words[words["timeline"] == "sub-01"]
    assert one["text"].tolist() == ["Hello,", 'say "hi"', "wörld"]  # silences dropped
    np.testing.assert_allclose(one["start"], [10.31, 10.62, 11.4])
    two = words[words["timeline"] == "sub-02"]
    # "Hello," (0.31 s in the file) starts before the played part [0.5, 1.5)
    assert two["text"].tolist() == ['say "hi"', "wörld"]
    np.testing.assert_allclose(two["start"], [3.12, 3.9])
    with pytest.raises(ConfigError, match="TranscriptWords.column: no column 'tg'"):
        TranscriptWords(column="tg")(events)
