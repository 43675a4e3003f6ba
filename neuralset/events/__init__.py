"""Event schemas, table validation and transforms."""

from .index import EventIndex
from .schema import *  # noqa: F403
from .schema import __all__ as _schema_all
from .table import EventsError, from_events, row, validate_events
from .transforms import AddContext, AssignSplits, Chain, ChunkEvents, Query, Transform, chain

__all__ = [
    *_schema_all,
    "EventIndex",
    "EventsError",
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
]
