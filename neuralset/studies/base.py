"""Studies: frozen configs that describe the timelines of a dataset and return its events."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ..config import Config, config
from ..entities import EntityTable
from ..events import validate_events
from ..hashing import chain_keys
from ..store import Store, provenance
from ..validation import existing_path

if TYPE_CHECKING:
    from ..segments import Segments

__all__ = ["Study"]


@config
class Study(Config):
    """Base of all studies.

    A study lists its timelines (:meth:`timelines`) and builds the events of one timeline
    (:meth:`timeline_events`) without reading any signal. :meth:`events` concatenates and validates
    them, adds a ``study_root`` column (file paths of data events are relative to it when possible,
    which lets a store prepared on one machine be reused where the data root differs), and caches
    the table in the store under the study's structural key (which includes ``path``).

    Studies of files that may not be on disk yet (``tracks_files``: BIDS, recordings, MOABB) add
    two columns to their data events, refreshed on every call (never taken from the cache):
    ``file_present`` (the content is on disk) and ``file_size`` (bytes; from the file, or the
    git-annex key of a file not fetched yet; NaN when unknown). A table holding a duration that
    only the file can give (``duration_source == "unknown"``, see
    :mod:`neuralset.studies.bids_metadata`) is not cached: once the files are fetched, the next
    call reads the durations from their headers.

    Parameters
    ----------
    path
        Root folder of the dataset.
    """

    #: whether :meth:`events` adds ``file_present`` / ``file_size`` to the data events
    tracks_files: ClassVar[bool] = False

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

    def all_timeline_events(self) -> pd.DataFrame:
        """The events of every timeline in one table (not yet validated).

        The default concatenates :meth:`timeline_events`; studies with many timelines override
        it to build the columns in one pass.
        """
        frames = [self.timeline_events(tl) for tl in self.timelines()]
        if not frames:
            raise ValueError(f"{type(self).__name__} at {self.path} has no timelines")
        return pd.concat(frames, ignore_index=True)

    def build(self) -> None:
        """Create whatever files the study needs (no-op for studies of existing data)."""

    def content_key(self) -> str:
        """Identity of the files the events are read from, when the config does not fix them.

        Folded into the key of the cached events (empty: the config's key is enough). Studies
        that read events from file headers return e.g. a digest of paths, sizes and mtimes, so a
        changed file is never served from a stale cache.
        """
        return ""

    def entities(self) -> dict[str, EntityTable]:
        """Tables of the entities that live on no timeline (anatomy, empty-room recordings).

        Keyed by ``subject`` and ``session``, the columns the events carry; found from file
        names under ``path`` (see :mod:`neuralset.studies.anatomy`; nothing is built or
        opened). Extractors that use them join them to their own event rows only.
        """
        from .anatomy import study_entities

        if not self.path.exists():
            return {}
        return study_entities(self.path)

    def events(self, store: Store | None = None) -> pd.DataFrame:
        """The validated events of all timelines (cached in ``store`` when given).

        Builds the study first (:meth:`build`: a study that writes its own files writes them).
        A table with durations not known yet (files not fetched) is not cached.
        """
        from .file_state import remembered_states

        key = self.events_key
        if store is not None and store.has(key):
            return self._with_file_columns(store.get_value(key))
        self.build()
        with remembered_states():  # the file columns reuse the states the discovery saw
            events = self._collect_events()
            if store is not None and not _has_unknowns(events):
                store.put_value(
                    key, events, label=f"events of {type(self).__name__}", prov=provenance(self)
                )
            return self._with_file_columns(events)

    def preview_events(self, store: Store | None = None) -> pd.DataFrame:
        """The events, writing nothing: neither the study's files nor a store entry.

        The table cached in ``store`` when there is one, else the table built from the metadata
        (a study that writes its own files returns the events of the files it would write).
        Used by ``neuralset inspect``.
        """
        from .file_state import remembered_states

        if store is not None and store.has(self.events_key):
            return self._with_file_columns(store.get_value(self.events_key))
        with remembered_states():
            return self._with_file_columns(self._collect_events())

    @property
    def events_key(self) -> str:
        """Store key of the events table (the study's structural key, ``path`` included, and
        the :meth:`content_key` of studies whose events come from file headers)."""
        content = self.content_key()
        if content:
            return chain_keys("study-events", self.key, content)
        return chain_keys("study-events", self.key)

    def _collect_events(self) -> pd.DataFrame:
        table = self.all_timeline_events()
        root = str(self.path.resolve())
        if len(table):  # one category: no string per row (the same table as from the strings)
            codes = np.zeros(len(table), dtype=np.int8)
            table["study_root"] = pd.Categorical.from_codes(codes, categories=pd.Index([root]))
        else:
            table["study_root"] = root
        events = validate_events(table)
        events["study_root"] = events["study_root"].astype("category")
        return events.drop(columns=["file_present", "file_size"], errors="ignore")

    def _with_file_columns(self, events: pd.DataFrame) -> pd.DataFrame:
        if not type(self).tracks_files:
            return events
        from .file_state import file_columns

        return file_columns(events)

    # -- files: what a selection needs, fetching it, exporting the study ---------------------
    def fetch(
        self,
        selection: pd.DataFrame | Segments | None = None,
        *,
        source: str | None = None,
        progress: bool = True,
        jobs: int = 1,
    ) -> Any:
        """Fetch the files that ``selection`` needs (all events of the study when None).

        The recordings of the selected data events (with their companion files: FIF splits,
        BrainVision ``.eeg``/``.vmrk``...), their sidecars and the stimuli the events reference;
        for :class:`~neuralset.segments.Segments`, only the data events the segments overlap.
        See :func:`neuralset.studies.fetch.fetch`; returns its :class:`FetchReport`.

        Parameters
        ----------
        selection
            An events table or :class:`~neuralset.segments.Segments` (default: all events).
        source
            ``"annex"`` (git-annex / DataLad: ``git annex get``), an ``http(s)://`` URL prefix
            the dataset's relative paths are appended to (OpenNeuro's S3 bucket, any web
            server), or ``None``: the study's ``source`` field, else git-annex when ``path`` is
            in a git-annex repository.
        progress
            Show a progress bar in bytes.
        jobs
            Parallel downloads (git-annex ``--jobs``; HTTP threads).
        """
        from .fetch import fetch

        events = self.events() if selection is None else selection
        return fetch(
            events,
            root=self.path,
            source=source if source is not None else str(getattr(self, "source", "") or ""),
            progress=progress,
            jobs=jobs,
        )

    def to_bids(
        self, root: str | Path, *, store: Store | None = None, overwrite: bool = False
    ) -> Path:
        """Write the study as a BIDS dataset at ``root`` (see :mod:`neuralset.studies.bids_export`)."""
        from .bids_export import to_bids

        return to_bids(self.events(store), root, overwrite=overwrite)


def _has_unknowns(events: pd.DataFrame) -> bool:
    return "duration_source" in events.columns and bool(
        (events["duration_source"] == "unknown").any()
    )
