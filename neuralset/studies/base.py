"""Studies: frozen configs that describe the timelines of a dataset and return its events."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import Config, config
from ..events import validate_events
from ..hashing import chain_keys
from ..store import Store, provenance
from ..validation import existing_path

__all__ = ["Study"]


@config
class Study(Config):
    """Base of all studies.

    A study lists its timelines (:meth:`timelines`) and builds the events of one timeline
    (:meth:`timeline_events`) without reading any signal. :meth:`events` concatenates and validates
    them, adds a ``study_root`` column (file paths of data events are relative to it when possible,
    which lets a store prepared on one machine be reused where the data root differs), and caches
    the table in the store under the study's structural key (which includes ``path``).

    Parameters
    ----------
    path
        Root folder of the dataset.
    """

    path: Path

    def _check(self) -> None:
        if not self.creates_files():
            existing_path(self, "path", "folder", fix="point it at the dataset root")

    def creates_files(self) -> bool:
        """Whether the study writes its own files into ``path`` (e.g. synthetic data)."""
        return False

    def timelines(self) -> list[str]:
        """Identifiers of the timelines (recording sessions) of the study."""
        raise NotImplementedError

    def timeline_events(self, timeline: str) -> pd.DataFrame:
        """The events of one timeline (not yet validated)."""
        raise NotImplementedError

    def build(self) -> None:
        """Create whatever files the study needs (no-op for studies of existing data)."""

    def events(self, store: Store | None = None) -> pd.DataFrame:
        """The validated events of all timelines (cached in ``store`` when given).

        Builds the study first (:meth:`build`: a study that writes its own files writes them).
        """
        key = self.events_key
        if store is not None and store.has(key):
            return store.get_value(key)
        self.build()
        events = self._collect_events()
        if store is not None:
            store.put_value(
                key, events, label=f"events of {type(self).__name__}", prov=provenance(self)
            )
        return events

    def preview_events(self, store: Store | None = None) -> pd.DataFrame:
        """The events, writing nothing: neither the study's files nor a store entry.

        The table cached in ``store`` when there is one, else the table built from the metadata
        (a study that writes its own files returns the events of the files it would write).
        Used by ``neuralset inspect``.
        """
        if store is not None and store.has(self.events_key):
            return store.get_value(self.events_key)  # type: ignore[no-any-return]
        return self._collect_events()

    @property
    def events_key(self) -> str:
        """Store key of the events table (the study's structural key, ``path`` included)."""
        return chain_keys("study-events", self.key)

    def _collect_events(self) -> pd.DataFrame:
        frames = [self.timeline_events(tl) for tl in self.timelines()]
        if not frames:
            raise ValueError(f"{type(self).__name__} at {self.path} has no timelines")
        table = pd.concat(frames, ignore_index=True)
        table["study_root"] = str(self.path.resolve())
        events = validate_events(table)
        events["study_root"] = events["study_root"].astype("category")
        return events
