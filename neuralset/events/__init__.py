"""Event schemas, table validation and transforms."""

from .index import EventIndex
from .repetitions import AlignRepetitions, StimulusTime
from .schema import *  # noqa: F403
from .schema import __all__ as _schema_all
from .selectors import event_mask
from .split_chunks import SplitChunks
from .splits import KFoldSplits, LeakageError, SklearnSplits
from .stimulus_splits import StimulusSplits
from .table import EventsError, from_events, row, validate_events
from .table_utils import AddColumn, SelectRows
from .text_alignment import AlignmentError, AlignTranscript, SentencesFromWords, align_words
from .transcripts import TranscriptError, TranscriptWords, read_transcript
from .transforms import AddContext, AssignSplits, Chain, ChunkEvents, Query, Transform, chain
from .video_audio import AudioFromVideo

__all__ = [
    *_schema_all,
    "EventIndex",
    "EventsError",
    "event_mask",
    "from_events",
    "row",
    "validate_events",
    "AddContext",
    "AssignSplits",
    "Chain",
    "ChunkEvents",
    "Query",
    "Transform",
    "chain",
    "KFoldSplits",
    "SklearnSplits",
    "StimulusSplits",
    "SplitChunks",
    "LeakageError",
    "SentencesFromWords",
    "AlignTranscript",
    "AlignmentError",
    "align_words",
    "TranscriptWords",
    "TranscriptError",
    "read_transcript",
    "AlignRepetitions",
    "StimulusTime",
    "AddColumn",
    "SelectRows",
    "AudioFromVideo",
]
