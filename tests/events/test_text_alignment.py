"""Sentences from words, transcripts aligned to word events, repetitions aligned across timelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.events.repetitions import AlignRepetitions, StimulusTime
from neuralset.events.table_utils import AddColumn, SelectRows
from neuralset.events.text_alignment import (
    AlignmentError,
    AlignTranscript,
    SentencesFromWords,
    align_sequences,
    align_words,
    tokenize,
)
from neuralset.segments import segment_on_triggers

TRANSCRIPT = (
    'The old man walked home. "Was it late?" she asked;\nhe did not answer!\n\n'
    "Colour faded — slowly"
)


def word_events(
    texts: list[str], timeline: str = "r", gap_after: dict[int, float] | None = None
) -> pd.DataFrame:
    starts, t = [], 0.0
    for i in range(len(texts)):
        starts.append(t)
        t += 0.4 + (gap_after or {}).get(i, 0.0)
    return pd.DataFrame(
        {"type": "Word", "start": starts, "duration": 0.3, "timeline": timeline, "text": texts}
    )


def test_tokenize_words_and_sentences() -> None:
    tok = tokenize(TRANSCRIPT)
    assert tok.words.tolist() == [
        "The",
        "old",
        "man",
        "walked",
        "home.",
        '"Was',
        "it",
        'late?"',
        "she",
        "asked;",
        "he",
        "did",
        "not",
        "answer!",
        "Colour",
        "faded —",
        "slowly",
    ]
    assert tok.norm.tolist()[:6] == ["the", "old", "man", "walked", "home", "was"]
    assert tok.sentences() == [
        "The old man walked home.",
        '"Was it late?"',
        "she asked; he did not answer!",
        "Colour faded — slowly",
    ]
    assert [TRANSCRIPT[a:b] for a, b in zip(tok.start[:2], tok.stop[:2])] == ["The", "old"]


def test_align_sequences_insertions_deletions_substitutions() -> None:
    a = ["the", "old", "uh", "man", "walked", "hom", "was", "it", "late"]
    b = ["the", "old", "man", "walked", "home", "was", "it", "very", "late"]
    a_to_b, exact = align_sequences(a, b)
    assert a_to_b.tolist() == [0, 1, -1, 2, 3, 4, 5, 6, 8]
    assert exact.tolist() == [True, True, False, True, True, False, True, True, True]


def test_align_words_reports_unmatched_on_both_sides() -> None:
    asr = [
        "the",
        "old",
        "uh",
        "man",
        "walked",
        "home",
        "was",
        "it",
        "late",
        "she",
        "asked",
        "he",
        "did",
        "answer",
        "color",
        "faded",
        "slowly",
    ]
    al = align_words(asr, TRANSCRIPT)
    assert al.unmatched_events.tolist() == [2]
    assert al.tokens.words[al.unmatched_tokens].tolist() == ["not"]
    assert al.event_to_token[14] == 14 and not al.exact[14]  # color ~ Colour (substitution)
    assert al.summary("run-1") == (
        "run-1: 16 of 17 word events matched (1 substituted); 1 without a transcript word "
        "(e.g. 'uh'); 1 transcript words without an event (e.g. 'not')"
    )


def test_typographic_apostrophes_unicode_forms_and_case_match_exactly() -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "café")
    assert nfd != "café"
    # an aligner writes "don't", "cafe" + combining accent, "STRASSE"; the transcript is typeset
    words = ["I", "don't", "uh", "know", "the", nfd, "on", "STRASSE", "ﬁve"]
    al = align_words(words, "I don’t know the café on Straße five.")
    assert al.event_to_token.tolist() == [0, 1, -1, 2, 3, 4, 5, 6, 7]
    assert al.exact.tolist() == [True, True, False, True, True, True, True, True, True]
    assert al.unmatched_tokens.tolist() == []
    # repeated presentations written in two Unicode forms are one stimulus
    events = pd.concat(
        [
            word_events(["l’homme", "café"], "s1").assign(sentence="L’homme café."),
            word_events(["l'homme", nfd], "s2").assign(sentence=f"L'homme {nfd}."),
        ]
    )
    out = AlignRepetitions(event_type="Word")(validate_events(events))
    assert out["stimulus_id"].tolist() == [0, 0, 0, 0]
    assert out["presentation"].tolist() == [0, 0, 1, 1]
    assert out["aligned_id"].tolist() == [0, 1, 0, 1]


def test_align_transcript_fills_text_sentence_and_context() -> None:
    words = word_events(
        [
            "the",
            "old",
            "uh",
            "man",
            "walked",
            "home",
            "was",
            "it",
            "late",
            "she",
            "asked",
            "he",
            "did",
            "answer",
            "color",
            "faded",
            "slowly",
        ]
    )
    text = pd.DataFrame(
        {
            "type": ["Text"],
            "start": [0.0],
            "duration": [7.0],
            "timeline": ["r"],
            "text": [TRANSCRIPT],
        }
    )
    events = validate_events(pd.concat([words, text], ignore_index=True))
    before = events.copy()
    out = AlignTranscript(max_unmatched=0.1)(events)
    pd.testing.assert_frame_equal(events, before)
    w = out[out["type"] == "Word"].reset_index(drop=True)
    assert w["transcript_word"].where(w["aligned"], "-").tolist()[:6] == [
        "The",
        "old",
        "-",
        "man",
        "walked",
        "home.",
    ]
    assert pd.isna(w["transcript_word"][2])
    assert w["aligned"].tolist()[:3] == [True, True, False]
    assert (
        w["sentence"][2] == "The old man walked home."
    )  # the unmatched word takes its neighbour's
    assert w["sentence"][8] == '"Was it late?"'
    assert w["context"][5] == "The old man walked home."
    assert w["context"][2] == "The old uh"
    assert w["context"][16] == TRANSCRIPT.replace("\n\n", " ").replace("\n", " ")
    short = AlignTranscript(context_words=4)(events)
    # four words: "faded —" is one (the dash joins the word before it)
    assert short.loc[short["type"] == "Word", "context"].iloc[16] == "answer! Colour faded — slowly"
    scoped = AlignTranscript(scope="sentence", context_words=3)(events)
    w = scoped[scoped["type"] == "Word"].reset_index(drop=True)
    assert w["context"][8] == '"Was it late?"'  # the sentence restarts the context
    assert w["context"][5] == "man walked home."  # three words at most
    assert w["sentence_index"].tolist()[:10] == [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]


def test_context_of_unmatched_words_keeps_to_context_words() -> None:
    words = word_events(["the", "old", "man", "uh", "um", "walked"])
    text = pd.DataFrame(
        {"type": ["Text"], "start": [0.0], "duration": [6.0], "timeline": ["r"]}
    ).assign(text="The old man walked.")
    events = validate_events(pd.concat([words, text], ignore_index=True))
    out = AlignTranscript(context_words=2, max_unmatched=0.5)(events)
    assert out.loc[out["type"] == "Word", "context"].tolist() == [
        "The",
        "The old",
        "old man",
        "man uh",  # was "old man uh", then "old man uh um": 3 and 4 words
        "uh um",
        "man walked.",
    ]


def test_align_transcript_fails_with_the_report_when_the_text_is_wrong() -> None:
    words = word_events(["completely", "different", "words", "here"])
    text = pd.DataFrame(
        {
            "type": ["Text"],
            "start": [0.0],
            "duration": [2.0],
            "timeline": ["r"],
            "text": ["The old man."],
        }
    )
    events = validate_events(pd.concat([words, text], ignore_index=True))
    with pytest.raises(AlignmentError) as err:
        AlignTranscript()(events)
    assert str(err.value) == (
        "AlignTranscript: more than 10% of the word events found no transcript word in r: 0 of 4 "
        "word events matched (0 substituted); 4 without a transcript word (e.g. 'completely', "
        "'different', 'words', 'here'); 3 transcript words without an event (e.g. 'The', 'old', "
        "'man.'). Check the transcript, or raise max_unmatched"
    )
    no_text = validate_events(words)
    with pytest.raises(ConfigError, match="timeline 'r' has Word events but no Text event"):
        AlignTranscript()(no_text)


def test_sentences_from_words_by_punctuation_and_pauses() -> None:
    two = word_events(
        ["Hello", "there.", "How", "are", "you?", "fine", "thanks"], gap_after={4: 3.0}
    )
    other = word_events(["a", "b"], timeline="s")
    events = validate_events(pd.concat([two, other], ignore_index=True))
    out = SentencesFromWords(max_gap=2.0)(events)
    sentences = out[out["type"] == "Sentence"]
    assert sentences["text"].tolist() == ["Hello there.", "How are you?", "fine thanks", "a b"]
    np.testing.assert_allclose(sentences["start"], [0.0, 0.8, 5.0, 0.0])
    np.testing.assert_allclose(sentences["duration"], [0.7, 1.1, 0.7, 0.7])
    words = out[(out["type"] == "Word") & (out["timeline"] == "r")]
    assert (
        words["sentence"].tolist()
        == ["Hello there."] * 2 + ["How are you?"] * 3 + ["fine thanks"] * 2
    )
    punct_only = SentencesFromWords(max_gap=None)(events)
    assert punct_only.loc[punct_only["type"] == "Sentence", "text"].tolist()[2] == "fine thanks"
    with pytest.raises(ConfigError, match="already have 4 Sentence events; pass rebuild=True"):
        SentencesFromWords()(out)
    again = SentencesFromWords(rebuild=True)(out)
    assert (again["type"] == "Sentence").sum() == 4


def test_sentences_keep_the_subject_of_their_words_for_splits() -> None:
    from neuralset.events import AssignSplits, chain

    words = pd.concat([word_events(["a", "b.", "c", "d."], tl) for tl in ("r1", "r2")])
    words = words.assign(subject=np.repeat(["s1", "s2"], 4), position=np.arange(8))
    split = AssignSplits(by="subject", ratios=(0.5, 0.5), names=("train", "test"))
    out = chain(SentencesFromWords(), split)(validate_events(words))
    sentences = out[out["type"] == "Sentence"]
    assert sentences["subject"].tolist() == ["s1", "s1", "s2", "s2"]
    # they were in no split: segments on sentences left out of training and test, silently
    by_subject = out.groupby("subject")["split"].agg(lambda v: sorted(set(v)))
    assert by_subject.tolist() == [["train"], ["test"]]
    assert sentences["position"].isna().all()  # a value per word is not carried


def test_repetitions_align_words_across_subjects_for_averaging() -> None:
    tables = []
    for s, texts in enumerate([["the", "cat", "sat"], ["the", "cat", "um", "sat"], ["the", "sat"]]):
        w = word_events(texts, timeline=f"sub-{s}")
        w["sentence"] = "The cat sat."
        tables.append(w)
    # sub-0 hears the sentence again later
    again = word_events(["the", "cat", "sat"], timeline="sub-0").assign(
        start=lambda d: d["start"] + 10, sentence="the cat sat"
    )
    other = word_events(["a", "dog"], timeline="sub-1").assign(
        start=lambda d: d["start"] + 20, sentence="A dog"
    )
    events = validate_events(pd.concat([*tables, again, other], ignore_index=True))
    out = AlignRepetitions()(events)
    w = out[out["type"] == "Word"].sort_values(["timeline", "start"])
    by_tl = {tl: g for tl, g in w.groupby("timeline", observed=True)}
    assert by_tl["sub-0"]["position"].tolist() == [0, 1, 2, 0, 1, 2]
    assert by_tl["sub-0"]["repetition"].tolist() == [0, 0, 0, 1, 1, 1]
    assert by_tl["sub-0"]["presentation"].tolist() == [0, 0, 0, 1, 1, 1]
    assert by_tl["sub-1"]["position"].tolist() == [0, 1, -1, 2, 0, 1]
    assert by_tl["sub-2"]["position"].tolist() == [0, 2]
    # segments of corresponding words share an aligned_id: pair or average them by it
    segments = segment_on_triggers(out, "Word", offset=0.0, duration=0.3)
    ids = segments.trigger_values("aligned_id")
    texts = segments.trigger_values("text")
    groups = pd.Series(texts).groupby(ids).agg(lambda t: sorted(set(t)))
    assert groups.loc[groups.index >= 0].map(len).max() == 1  # one word per id
    sat = ids[texts == "sat"]
    assert len(set(sat)) == 1 and len(sat) == 4  # four presentations of "sat", one id
    assert (ids[texts == "um"] == -1).all()


def test_stimulus_time_lines_up_repeated_audio() -> None:
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Audio", "Word", "Word", "Audio", "Word", "Word"],
                "start": [5.0, 5.5, 6.0, 1.0, 1.0, 1.5],
                "duration": [2.0, 0.3, 0.3, 1.5, 0.3, 0.3],
                "timeline": ["a", "a", "a", "b", "b", "b"],
                "filepath": ["s.wav", None, None, "s.wav", None, None],
                "offset": [0.0, 0, 0, 0.5, 0, 0],  # b plays the file from 0.5 s
                "text": [None, "x", "y", None, "x", "y"],
            }
        )
    )
    out = StimulusTime()(events)
    w = out[out["type"] == "Word"]
    assert w["stimulus"].tolist() == ["s.wav"] * 4
    np.testing.assert_allclose(w["stimulus_time"], [0.5, 1.0, 0.5, 1.0])


def test_add_column_and_select_rows() -> None:
    events = validate_events(word_events(["a", "bb", "ccc"]))
    assert AddColumn(name="n", expression="text.str.len() * 2")(events)["n"].tolist() == [2, 4, 6]
    assert AddColumn(name="late", expression="start > 0.3")(events)["late"].tolist() == [
        False,
        True,
        True,
    ]
    with pytest.raises(
        ConfigError,
        match=r"AddColumn.expression: cannot evaluate 'nope \+ 1': name 'nope' is not defined",
    ):
        AddColumn(name="x", expression="nope + 1")(events)
    with pytest.raises(ConfigError, match="AddColumn.name: 'start' defines the events"):
        AddColumn(name="start", expression="start + 1")
    assert SelectRows(indices=(2, 0))(events)["text"].tolist() == ["ccc", "a"]
    with pytest.raises(ConfigError, match=r"SelectRows.indices: \[3\] out of range for 3 events"):
        SelectRows(indices=(3,))(events)
    with pytest.raises(ConfigError, match="SelectRows.indices: two indices name the same row"):
        SelectRows(indices=(0, -3))(events)
