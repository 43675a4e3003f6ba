import dataclasses

import numpy as np
import pandas as pd
import pytest

from neuralset.events import (
    CategoricalEvent,
    EventsError,
    Word,
    from_events,
    register_event_type,
    row,
    validate_events,
)


def _words(n=3):
    return pd.DataFrame(
        {
            "type": "Word",
            "start": np.arange(n) * 0.5,
            "duration": 0.2,
            "timeline": "t1",
            "text": list("abc")[:n],
        }
    )


def test_canonical_dtypes_and_input_untouched():
    df = _words()
    before = df.copy()
    out = validate_events(df)
    pd.testing.assert_frame_equal(df, before)
    assert isinstance(out["type"].dtype, pd.CategoricalDtype)
    assert isinstance(out["timeline"].dtype, pd.CategoricalDtype)
    assert out["start"].dtype == np.float64 and out["duration"].dtype == np.float64
    assert isinstance(out.index, pd.RangeIndex)


def test_duration_defaults_to_zero():
    out = validate_events(_words().drop(columns="duration"))
    assert (out["duration"] == 0).all()


def test_unknown_type_names_closest():
    with pytest.raises(ValueError, match=r"unknown event type 'Wrod'; did you mean 'Word'\?"):
        validate_events(_words().assign(type="Wrod"))
    with pytest.raises(ValueError) as err:  # no close name: the sentence still ends
        validate_events(_words().assign(type="Xq"))
    assert str(err.value).startswith("unknown event type 'Xq'. Known types: Action, Artifact, ")


def test_missing_required_field():
    with pytest.raises(EventsError, match=r"events of type 'Word' need the field 'text'"):
        validate_events(_words().drop(columns="text"))
    df = _words()
    df.loc[1, "text"] = None
    with pytest.raises(
        EventsError, match=r"Word events need a non-null 'text': missing at rows 1$"
    ):
        validate_events(df)


def test_bad_times():
    df = _words()
    df.loc[2, "start"] = np.nan
    with pytest.raises(EventsError, match="start is NaN at rows 2"):
        validate_events(df)
    df = _words()
    df.loc[0, "duration"] = -1
    with pytest.raises(EventsError, match="duration is negative or NaN at rows 0"):
        validate_events(df)
    with pytest.raises(EventsError, match="lacks the column"):
        validate_events(pd.DataFrame({"start": [0.0]}))
    for col, value in (("start", np.inf), ("duration", np.inf), ("start", -np.inf)):
        df = _words()
        df.loc[1, col] = value  # "inf" read from a file, or a duration of n / 0 Hz
        with pytest.raises(EventsError) as err:
            validate_events(df)
        assert str(err.value) == (
            f"{col} is infinite at rows 1; {col}s are finite seconds (a frequency of 0 in a "
            "division?)"
        )


def test_recordings_need_a_duration():
    """Issue 8, case 2: a recording left at duration 0 would give no window; refused."""
    recs = pd.DataFrame(
        {"type": ["Meg", "Fmri", "Fmri"], "start": 0.0, "timeline": ["a", "a", "b"],
         "filepath": ["a.fif", "a.nii", "b.nii"], "duration": [300.0, 0.0, 0.0]}
    )  # fmt: skip
    with pytest.raises(EventsError) as info:
        validate_events(pd.concat([recs, _words()], ignore_index=True))
    assert str(info.value) == (
        "Fmri events need the duration of their recording (> 0 s): 0 at rows 1, 2 (a.nii); "
        "set it, or read it from the files' headers with neuralset.studies.fill_durations(events)"
    )
    ok = recs.assign(duration=[300.0, 400.0, 400.0])
    assert validate_events(ok)["duration"].tolist() == [300.0, 400.0, 400.0]
    # stimuli and instantaneous events may last 0 s
    image = pd.DataFrame(
        {"type": ["Image"], "start": [1.0], "timeline": ["a"], "filepath": ["i.png"]}
    )
    assert validate_events(image)["duration"].tolist() == [0.0]


def test_objects_on_request_and_custom_types():
    @register_event_type
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Button(CategoricalEvent):
        hand: str

    events = from_events(
        [Word(start=1.0, timeline="a", text="hi"), Button(start=2.0, timeline="a", hand="left")]
    )
    assert row(events, 0) == Word(start=1.0, timeline="a", text="hi", duration=0.0)
    assert row(events, 1).hand == "left"
    with pytest.raises(EventsError, match="need a non-null 'hand'"):
        validate_events(
            pd.DataFrame(
                {
                    "type": ["Button", "Word"],
                    "start": [0.0, 1.0],
                    "timeline": "a",
                    "text": [None, "x"],
                    "hand": ["l", None],
                }
            ).assign(hand=[None, None])
        )
