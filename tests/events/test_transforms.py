import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError, from_dict
from neuralset.events import AddContext, AssignSplits, ChunkEvents, Query, chain, validate_events


@pytest.fixture
def events():
    rows = []
    for s in range(6):
        tl = f"sub-{s}"
        rows.append(
            dict(
                type="Meg",
                start=0.0,
                duration=10.0,
                timeline=tl,
                filepath="x.fif",
                frequency=100.0,
                subject=f"s{s}",
            )
        )
        rows.append(
            dict(
                type="Sentence",
                start=0.0,
                duration=1.4,
                timeline=tl,
                text="the cat sat",
                subject=f"s{s}",
            )
        )
        rows.append(
            dict(
                type="Sentence", start=2.0, duration=1.0, timeline=tl, text="a dog", subject=f"s{s}"
            )
        )
        for w, t in [("the", 0.0), ("cat", 0.5), ("sat", 1.0), ("a", 2.0), ("dog", 2.5)]:
            rows.append(
                dict(type="Word", start=t, duration=0.3, timeline=tl, text=w, subject=f"s{s}")
            )
    return validate_events(pd.DataFrame(rows))


def test_query_pure(events):
    before = events.copy()
    out = Query(query="type == 'Word' and start > 0.7", keep_types=("Meg",))(events)
    pd.testing.assert_frame_equal(events, before)
    assert set(out["type"]) == {"Word", "Meg"}
    assert (out[out.type == "Word"].start > 0.7).all()
    with pytest.raises(ConfigError, match="Query.query: cannot evaluate"):
        Query(query="nonexistent_col > 1")(events)


def test_query_must_be_a_condition(events):
    # a number, a text or a scalar was cast to True/False: "start" kept every row with start != 0
    with pytest.raises(ConfigError) as err:
        Query(query="start")(events)
    assert str(err.value) == (
        "Query.query: the event query 'start' gives float64 values, not one True/False per "
        "event; write a condition, e.g. \"type == 'Word' and start > 10\""
    )
    flagged = events.assign(target=[True, None, False] * (len(events) // 3))
    with pytest.raises(ConfigError, match="^Query.query: the event query 'target' gives object"):
        Query(query="target")(flagged)  # None was taken as False, NaN as True
    with pytest.raises(ConfigError, match="^Query.query: the event query '1 == 1' gives bool"):
        Query(query="1 == 1")(events)  # was KeyError: np.True_
    assert len(Query(query="target == True")(flagged)) == len(events) // 3


def test_splits_by_group(events):
    before = events.copy()
    out = AssignSplits(by="subject", ratios=(0.5, 0.25, 0.25), seed=3)(events)
    pd.testing.assert_frame_equal(events, before)
    per_subject = out.groupby("subject", observed=True)["split"].nunique()
    assert (per_subject == 1).all()  # no group crosses splits
    counts = out.groupby("split", observed=True)["subject"].nunique().to_dict()
    # bounds: round(cumsum([0.5, 0.25, 0.25]) * 6) = [3, 4, 6] (round half to even)
    assert counts == {"train": 3, "val": 1, "test": 2}
    again = AssignSplits(by="subject", ratios=(0.5, 0.25, 0.25), seed=3)(events)
    assert (again["split"] == out["split"]).all()
    other = AssignSplits(by="subject", ratios=(0.5, 0.25, 0.25), seed=4)(events)
    assert set(other["split"].unique()) <= {"train", "val", "test"}
    with pytest.raises(ConfigError, match="AssignSplits.by: no column 'session'"):
        AssignSplits(by="session")(events)
    with pytest.raises(ConfigError, match="AssignSplits.ratios: 2 ratios for 3 names"):
        AssignSplits(ratios=(0.5, 0.5))


def test_splits_left_without_a_group_are_errors(events):
    # 3 subjects cut 0.8/0.1/0.1 gave train 2, val 1 and no test subject, silently
    three = events[events.subject.isin(["s0", "s1", "s2"])]
    with pytest.raises(ConfigError) as err:
        AssignSplits(by="subject")(three)
    assert str(err.value) == (
        "AssignSplits.ratios: split 'test' gets no group: 3 'subject' groups dealt with ratios "
        "(0.8, 0.1, 0.1) give 'train': 2, 'val': 1, 'test': 0; use fewer splits (names and "
        "ratios), ratios that give each split at least one group, or a finer grouping column"
    )
    with pytest.raises(ConfigError, match=r"^AssignSplits.ratios: splits 'val', 'test' get no"):
        AssignSplits(by="timeline")(events[events.timeline == "sub-0"])
    # a split given a zero ratio is empty on purpose
    out = AssignSplits(by="subject", ratios=(1.0, 0.0), names=("train", "test"))(three)
    assert set(out["split"]) == {"train"}


def _timelines(n: int) -> pd.DataFrame:
    return validate_events(
        pd.DataFrame(
            {"type": "Word", "start": np.arange(float(n)), "timeline": [f"t{i}" for i in range(n)]}
        ).assign(text="a")
    )


def test_splits_when_adding_groups():
    def moved(method: str) -> int:  # old groups whose split changes when one group is added
        split = AssignSplits(method=method)
        total = 0
        for n in range(30, 60):
            old = split(_timelines(n))["split"].astype(str).to_numpy()
            new = split(_timelines(n + 1))["split"].astype(str).to_numpy()[:n]
            total += int((old != new).sum())
        return total

    assert moved("rank") == 20  # the cut points move (documented): use "hash" to keep them
    assert moved("hash") == 0
    out = AssignSplits(method="hash")(_timelines(400))
    counts = out["split"].value_counts().to_dict()
    assert counts == {"train": 314, "val": 35, "test": 51}  # binomial spread around 320/40/40
    # the default keeps the keys of configs written before the field existed
    assert AssignSplits().key == AssignSplits(method="rank").key != AssignSplits(method="hash").key


def test_add_context(events):
    before = events.copy()
    out = AddContext()(events)
    pd.testing.assert_frame_equal(events, before)
    words = out[(out.type == "Word") & (out.timeline == "sub-0")]
    assert words["sentence"].tolist() == ["the cat sat"] * 3 + ["a dog"] * 2
    assert words["context"].tolist() == [
        "the",
        "the cat",
        "the cat sat",
        "the cat sat a",
        "the cat sat a dog",
    ]
    per_sentence = AddContext(scope="sentence", max_words=2)(events)
    w = per_sentence[(per_sentence.type == "Word") & (per_sentence.timeline == "sub-0")]
    assert w["context"].tolist() == ["the", "the cat", "cat sat", "a", "a dog"]


@pytest.mark.parametrize("missing", [None, np.nan, ""])
def test_add_context_words_without_a_sentence_share_one_scope(missing):
    table = pd.DataFrame(
        {
            "type": "Word",
            "start": np.arange(6.0),
            "duration": 0.3,
            "timeline": "r",
            "text": list("abcdef"),
            "sentence": ["S1", "S1", missing, missing, "S2", missing],
        }
    )
    expected = ["a", "a b", "c", "c d", "e", "f"]
    out = AddContext(scope="sentence")(validate_events(table))
    assert out["context"].tolist() == expected
    # a sentence column of NaN only (float64) reads the same
    floats = table.assign(sentence=np.nan)
    out = AddContext(scope="sentence")(validate_events(floats))
    assert out["context"].tolist() == ["a", "a b", "a b c", "a b c d", "a b c d e", "a b c d e f"]


def test_add_context_leaves_out_empty_and_blank_words(events):
    words = (events.type == "Word") & (events.timeline == "sub-0")
    holes = events.copy()
    holes["text"] = holes["text"].astype(object)
    rows = holes.index[words]
    holes.loc[rows[1], "text"] = ""  # "cat"
    holes.loc[rows[3], "text"] = "  "  # "a"
    out = AddContext()(holes)
    assert out.loc[rows, "context"].tolist() == ["the", "the", "the sat", "the sat", "the sat dog"]
    out = AddContext(max_words=2)(holes)
    assert out.loc[rows, "context"].tolist() == ["the", "the", "the sat", "the sat", "sat dog"]


def test_chunk_on_sample_grid(events):
    out = ChunkEvents(event_type="Meg", max_duration=3.333)(events)
    meg = out[(out.type == "Meg") & (out.timeline == "sub-0")]
    np.testing.assert_allclose(meg["start"], [0.0, 3.33, 6.66, 9.99])
    np.testing.assert_allclose(meg["duration"], [3.33, 3.33, 3.33, 0.01], atol=1e-9)
    np.testing.assert_allclose(meg["offset"], meg["start"])
    assert len(out) == len(events) + 6 * 3


def test_chunk_length_is_max_duration_on_the_grid(events):
    # 0.29 * 100 = 28.999999999999996 in floating point: the chunks were 28 samples (0.28 s)
    out = ChunkEvents(event_type="Meg", max_duration=0.29)(events)
    meg = out[(out.type == "Meg") & (out.timeline == "sub-0")]
    assert len(meg) == 35  # 34 chunks of 0.29 s and 0.14 s left of the 10 s recording
    np.testing.assert_allclose(meg["duration"].iloc[:34], 0.29)
    np.testing.assert_allclose(meg["duration"].iloc[34], 0.14, atol=1e-9)
    np.testing.assert_allclose(meg["start"].iloc[:3], [0.0, 0.29, 0.58])
    assert (meg["duration"] <= 0.29 + 1e-12).all()


def test_chain_and_keys(events):
    pipe = chain(AddContext(), Query(query="type == 'Word'"))
    out = pipe(events)
    assert set(out["type"]) == {"Word"} and "context" in out
    assert pipe.output_key("in1") != pipe.output_key("in2")
    assert pipe.output_key("in1") == chain(AddContext(), Query(query="type == 'Word'")).output_key(
        "in1"
    )
    again = from_dict(pipe.to_dict())
    assert again == pipe


def test_type_fields_naming_no_event_type_are_errors():
    from neuralset.events.table_utils import SelectRows

    table = validate_events(
        pd.DataFrame(
            {
                "type": ["Meg", "Word", "Word"],
                "start": [0.0, 1.0, 2.0],
                "duration": [10.0, 0.3, 0.3],
                "timeline": "r",
                "filepath": ["a.fif", None, None],
                "text": [None, "the", "cat"],
            }
        )
    )
    query = "type == 'Word' and text != 'the'"
    assert Query(query=query, keep_types=("Meg",))(table)["type"].tolist() == ["Meg", "Word"]
    # "MEG" kept nothing: the recordings were dropped, silently
    with pytest.raises(ConfigError) as err:
        Query(query=query, keep_types=("MEG",))(table)
    assert str(err.value).startswith(
        "Query.keep_types: unknown event type 'MEG'; did you mean 'Meg'"
    )
    with pytest.raises(ConfigError, match="^SelectRows.keep_types: unknown event type 'meg'"):
        SelectRows(indices=(2,), keep_types=("meg",))(table)
    # the same for every *_type field: each found no event, silently
    for transform, field in (
        (ChunkEvents(event_type="MEG", max_duration=1.0), "ChunkEvents.event_type"),
        (AddContext(event_type="word"), "AddContext.event_type"),
        (chain(AddContext(event_type="word")), "AddContext.event_type"),
    ):
        with pytest.raises(ConfigError, match=f"^{field}: unknown event type"):
            transform(table)
