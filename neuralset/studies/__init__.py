"""Studies: datasets described as timelines of events."""

from .base import Study
from .headers import fill_durations

__all__ = ["Study", "fill_durations"]
