"""Extractors whose values come from the events table: pulses, numeric fields and labels."""

from .labels import LabelEncoder
from .table_values import EventField, Pulse

__all__ = ["EventField", "LabelEncoder", "Pulse"]
