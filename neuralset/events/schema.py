"""Event types: one frozen, typed dataclass per type declares the fields of that type.

The dataclasses are *schemas*. A collection of events is a pandas DataFrame (see
:mod:`neuralset.events.table`); an event object is only built on request with
:func:`event_from_row`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import numpy as np

from ..fieldwise import Fieldwise

__all__ = [
    "Event",
    "DataEvent",
    "Meg",
    "Eeg",
    "Ieeg",
    "Emg",
    "Ecg",
    "Fnirs",
    "Fmri",
    "Spikes",
    "Audio",
    "Video",
    "Image",
    "TextEvent",
    "Word",
    "Sentence",
    "Text",
    "Phoneme",
    "Keystroke",
    "CategoricalEvent",
    "Stimulus",
    "Action",
    "SleepStage",
    "Artifact",
    "Seizure",
    "EyeState",
    "register_event_type",
    "event_types",
    "event_type",
    "required_fields",
    "event_from_row",
]

_EVENT_TYPES: dict[str, type[Event]] = {}


def register_event_type(cls: type[Event]) -> type[Event]:
    """Register an event type under its class name (used as the ``type`` column value).

    Parameters
    ----------
    cls
        A frozen, keyword-only dataclass deriving from :class:`Event` (or one of its types).

    Examples
    --------
    >>> import dataclasses
    >>> @register_event_type
    ... @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Button(CategoricalEvent):
    ...     hand: str
    >>> "Button" in event_types()
    True
    """
    _EVENT_TYPES[cls.__name__] = cls
    _REQUIRED.pop(cls.__name__, None)
    return cls


def event_types() -> dict[str, type[Event]]:
    """All registered event types by name."""
    return dict(_EVENT_TYPES)


def event_type(name: str) -> type[Event]:
    """The event class registered as ``name`` (error names the closest known types)."""
    try:
        return _EVENT_TYPES[name]
    except KeyError:
        import difflib

        same = [t for t in _EVENT_TYPES if t.lower() == str(name).lower()]
        close = same or difflib.get_close_matches(str(name), list(_EVENT_TYPES), n=3, cutoff=0.4)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
        raise ValueError(
            f"unknown event type {name!r}{hint} Known types: {', '.join(sorted(_EVENT_TYPES))}. "
            "Declare new types with neuralset.events.register_event_type."
        ) from None


_REQUIRED: dict[str, tuple[str, ...]] = {}


def required_fields(name: str) -> tuple[str, ...]:
    """Fields without a default for the event type ``name``."""
    if name not in _REQUIRED:
        cls = event_type(name)
        _REQUIRED[name] = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
    return _REQUIRED[name]


def event_from_row(row: typing.Mapping[str, Any]) -> Event:
    """Build the typed event object of one table row (only the fields its type declares)."""
    cls = event_type(str(row["type"]))
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for name in names:
        if name in row:
            value = row[name]
            if isinstance(value, np.generic):  # numpy scalars from the table: plain Python
                value = value.item()
            if value is not None and not (isinstance(value, float) and value != value):
                values[name] = value
    values.pop("type", None)
    return cls(**values)


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Event(Fieldwise):
    """Base of every event: something that happens on a timeline.

    Attributes
    ----------
    start
        Onset in seconds on the timeline.
    duration
        Duration in seconds (>= 0; > 0 for recordings, see ``is_recording``).
    timeline
        Identifier of a continuous recording session (e.g. ``"sub-01_run-1"``).
    """

    #: Whether the event stands for a whole recording file, whose length its ``duration`` must
    #: give (validation refuses 0; see :func:`neuralset.studies.headers.fill_durations`).
    is_recording: ClassVar[bool] = False

    start: float
    timeline: str
    duration: float = 0.0

    @property
    def type(self) -> str:
        """The event type name (the class name)."""
        return type(self).__name__

    @property
    def stop(self) -> float:
        return self.start + self.duration

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["type"] = self.type
        return out


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class DataEvent(Event):
    """An event backed by a file (a recording or a stimulus).

    Attributes
    ----------
    filepath
        Path of the file (absolute, or relative to the study's data root).
    frequency
        Sampling frequency in Hz of the data in the file (0 when not applicable).
    offset
        Time in seconds within the file that corresponds to ``start`` on the timeline.
    """

    filepath: str
    frequency: float = 0.0
    offset: float = 0.0


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Meg(DataEvent):
    """A MEG recording."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Eeg(DataEvent):
    """An EEG recording."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Ieeg(DataEvent):
    """An intracranial EEG recording (sEEG or ECoG)."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Emg(DataEvent):
    """An EMG recording."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Ecg(DataEvent):
    """An electrocardiogram recording (ECG channels, possibly in a MEG/EEG file)."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Fnirs(DataEvent):
    """An fNIRS recording."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Fmri(DataEvent):
    """An fMRI run (4D NIfTI or GIfTI); ``space`` names its template space."""

    is_recording: ClassVar[bool] = True

    space: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Spikes(DataEvent):
    """Spike times of sorted units (NWB or arrays)."""

    is_recording: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Audio(DataEvent):
    """A sound file played to the participant."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Video(DataEvent):
    """A video shown to the participant."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Image(DataEvent):
    """An image shown to the participant."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class TextEvent(Event):
    """An event carrying text."""

    text: str
    language: str = ""
    context: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Word(TextEvent):
    """A word read or heard; ``sentence`` is the sentence it belongs to."""

    sentence: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Sentence(TextEvent):
    """A sentence."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Text(TextEvent):
    """A longer text (a story, a paragraph)."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Phoneme(TextEvent):
    """A phoneme."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Keystroke(TextEvent):
    """A key pressed by the participant."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class CategoricalEvent(Event):
    """An event with a category."""

    code: int = 0
    description: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Stimulus(CategoricalEvent):
    """A generic stimulus / trigger with a ``code`` and a ``description``."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Action(CategoricalEvent):
    """A motor action of the participant."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class SleepStage(CategoricalEvent):
    """A scored sleep stage (``description`` such as ``"N2"``)."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Artifact(CategoricalEvent):
    """An annotated artifact span."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Seizure(CategoricalEvent):
    """An annotated seizure."""


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class EyeState(CategoricalEvent):
    """Eyes open/closed state."""


for _cls in (
    Meg,
    Eeg,
    Ieeg,
    Emg,
    Ecg,
    Fnirs,
    Fmri,
    Spikes,
    Audio,
    Video,
    Image,
    Word,
    Sentence,
    Text,
    Phoneme,
    Keystroke,
    Stimulus,
    Action,
    SleepStage,
    Artifact,
    Seizure,
    EyeState,
):
    register_event_type(_cls)
