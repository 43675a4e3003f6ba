"""Extractors whose values come from the events table: pulses, fields, labels and targets."""

from .detection import DetectionTarget
from .labels import LabelEncoder
from .table_values import EventField, Pulse
from .vocabulary import UncoveredEventsWarning, VocabularyExtractor
from .window_label import WindowLabel

__all__ = [
    "DetectionTarget",
    "EventField",
    "LabelEncoder",
    "Pulse",
    "UncoveredEventsWarning",
    "VocabularyExtractor",
    "WindowLabel",
]
