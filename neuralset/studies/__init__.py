"""Studies: datasets described as timelines of events."""

from .base import Study

__all__ = ["Study"]
