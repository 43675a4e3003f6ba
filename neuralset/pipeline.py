"""A whole pipeline as one config: study, transforms, segmenter, extractors, executor, store.

The YAML form (see ``examples/synthetic.yaml``) names each polymorphic entry by ``kind``::

    study: {kind: synthetic, path: ./synthetic, n_subjects: 2}
    transforms:
      - {kind: query, query: "type in ['Meg', 'Word']"}
    segmenter: {kind: trigger, triggers: Word, offset: -0.2, duration: 0.8, require: [Meg]}
    extractors:
      meg: {kind: meg, frequency: 100.0, filter: [0.5, 40.0]}
    executor: {kind: inline}
    store: ./cache

Unknown keys and wrong types are errors naming their path
(``extractors.meg.filter[0]: expected float | None, got 'abc'``); dotted overrides
(``--executor.kind=slurm``) apply to the plain data before validation.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from types import UnionType
from typing import Any, Union, get_args, get_origin

import numpy as np
import pandas as pd

from .config import (
    Config,
    ConfigError,
    apply_overrides,
    config,
    from_dict,
    load_yaml,
    register,
)
from .events.transforms import Transform
from .execution.executors import Executor, InlineExecutor
from .extractors.base import Extractor
from .extractors.recording import RecordingExtractor
from .hashing import KEY_EXCLUDED, chain_keys
from .registry import resolve_kind
from .segments import Segmenter, Segments
from .store import Store
from .studies.base import Study
from .validation import require

__all__ = ["Pipeline", "absolute_paths", "load_pipeline", "files_line"]


@register("pipeline")
@config
class Pipeline(Config):
    """Study -> transforms -> segments, with extractors prepared by an executor into a store.

    Parameters
    ----------
    study
        Where the events come from.
    transforms
        Applied to the events in order (may be empty).
    segmenter
        How to cut segments (``None``: no segments; ``prepare`` still works).
    extractors
        Name -> extractor.
    executor
        How ``prepare`` runs (not part of any key).
    store
        Store folder (``None``: ``$NEURALSET_CACHE`` or ``~/.cache/neuralset``).
    """

    study: Study
    transforms: tuple[Transform, ...] = ()
    segmenter: Segmenter | None = None
    extractors: dict[str, Extractor] = dataclasses.field(default_factory=dict)
    executor: Executor = dataclasses.field(default_factory=InlineExecutor, metadata=KEY_EXCLUDED)
    store: Path | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)

    def _check(self) -> None:
        for name in self.extractors:
            require(
                name.isidentifier(),
                self,
                "extractors",
                f"name {name!r} must be a Python identifier; use e.g. {_identifier(name)!r}",
            )

    # -- YAML -------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> Pipeline:
        """Read a pipeline from YAML, applying dotted ``--a.b=value`` overrides first.

        Every relative path (``store``, ``study.path``, an extractor's ``mask``, the SLURM
        ``folder``, ... any field declared ``Path``) is resolved against the YAML file's folder,
        and a relative path given in an override against the current folder; all are normalised
        (absolute, no ``..``, symbolic links resolved), so the same folder written two ways
        (``scripts/../data``, ``data``) gives the same study key.
        """
        data = absolute_paths(load_yaml(path), cls, Path(path).resolve().parent)
        data = absolute_paths(apply_overrides(data, list(overrides)), cls, Path.cwd())
        data.pop("kind", None)
        return from_dict(data, cls)

    # -- running ----------------------------------------------------------------------------
    def open_store(self, *, read_only: bool = False) -> Store:
        """The :class:`~neuralset.store.Store` of this pipeline (``read_only``: writes nothing)."""
        return Store(self.store, read_only=read_only)

    def events(self, store: Store | None = None) -> pd.DataFrame:
        """The study's events after the transforms (study events cached in the store)."""
        events = self.study.events(store if store is not None else self.open_store())
        for transform in self.transforms:
            events = transform(events)
        return events

    def segments(self, events: pd.DataFrame | None = None) -> Segments:
        """The segments of the events (needs a segmenter)."""
        if self.segmenter is None:
            raise ConfigError(
                "Pipeline.segmenter: not set; add a `segmenter:` entry to make segments"
            )
        return self.segmenter(self.events() if events is None else events)

    def prepare(
        self, *, progress: bool = True, retry: bool = False, raise_on_error: bool = True
    ) -> dict[str, Any]:
        """Prepare every extractor with the pipeline's executor; name -> ``PrepareReport``.

        Goes through each ``extractor.prepare`` (extractors may check their inputs first).
        """
        from .execution import prepare_options

        store = self.open_store()
        events = self.events(store)
        with prepare_options(retry=retry, raise_on_error=raise_on_error):
            return {
                name: extractor.prepare(events, store, executor=self.executor, progress=progress)
                for name, extractor in self.extractors.items()
            }

    def inspect(self, *, max_keys: int = 10) -> str:
        """A report of what the pipeline would do, reading no signal and writing nothing.

        Events per type and timeline, the study's entity tables (anatomy, empty-room
        recordings, participants), number of segments, for each extractor the entities it links
        to (and the subjects lacking one), the cache keys of its items and whether they are
        stored, and the expected store size. The events come from
        the store when cached there, else from the study's metadata
        (:meth:`~neuralset.studies.base.Study.preview_events`: a synthetic study not yet
        written is described, not written); item keys need the data files (their size and
        time), so they are listed once the files exist.
        """
        store = self.open_store(read_only=True)
        events = self.study.preview_events(store)
        for transform in self.transforms:
            events = transform(events)
        lines = [f"store: {store.root}", f"study: {type(self.study).__name__} at {self.study.path}"]
        counts = pd.crosstab(events["timeline"].astype(str), events["type"].astype(str))
        lines += [
            f"events: {len(events)} in {counts.shape[0]} timelines",
            _indent(counts.to_string()),
        ]
        segments = None
        tables = self.study.entities()
        lines.append(
            "entities: "
            + ("; ".join(t.describe() for t in tables.values() if len(t)) or "none found")
        )
        if self.segmenter is not None:
            from .events.index import UnknownDurationError

            try:
                segments = self.segmenter(events)
                lines.append(f"segments: {len(segments)} ({type(self.segmenter).__name__})")
            except UnknownDurationError as err:
                lines.append(f"segments: not yet ({err})")
        lines.append(files_line(events if segments is None else segments))
        totals = [0.0, 0.0]
        for name, extractor in self.extractors.items():
            lines += _inspect_extractor(name, extractor, events, store, max_keys, totals)
        lines.append(
            f"expected store size: {_size(sum(totals))} "
            f"({_size(totals[0])} stored + ~{_size(totals[1])} to prepare)"
        )
        lines.append(
            f"executor: {type(self.executor).__name__} (kind {type(self.executor).kind or '?'})"
        )
        return "\n".join(lines)

    @property
    def pipeline_key(self) -> str:
        """Key of what the pipeline computes (executor and store excluded)."""
        return chain_keys("pipeline", self.key)


def _identifier(name: str) -> str:
    """``name`` made a Python identifier (for the fix of an error message)."""
    out = re.sub(r"\W", "_", name)
    return f"_{out}" if not out or out[0].isdigit() else out


def absolute_paths(value: Any, annotation: Any, base: Path) -> Any:
    """Plain config data with the relative paths of its ``Path`` fields made absolute.

    ``value`` is YAML data declared as ``annotation`` (a config class, ``Path``, ``X | None``,
    a tuple or a ``dict[str, X]`` of them); a polymorphic entry is read as the class its
    ``kind`` names. Paths are resolved against ``base`` (``~`` expanded, symbolic links
    resolved); anything that does not fit its annotation is left for :func:`from_dict` to report.
    """
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType):
        fits = [a for a in args if _fits(value, a)]
        return absolute_paths(value, fits[0], base) if fits else value
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        is_text = isinstance(value, str) and value != ""
        return str((base / Path(value).expanduser()).resolve()) if is_text else value
    if isinstance(annotation, type) and issubclass(annotation, Config) and isinstance(value, dict):
        cls: type[Config] = annotation
        if "kind" in value:
            try:
                cls = resolve_kind(str(value["kind"]))
            except ConfigError:
                return value
        hints = typing.get_type_hints(cls)
        return {k: absolute_paths(v, hints[k], base) if k in hints else v for k, v in value.items()}
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return [absolute_paths(v, args[0], base) for v in value]
        return [absolute_paths(v, a, base) for v, a in zip(value, args)] + value[len(args) :]
    if origin in (dict, Mapping) and len(args) == 2 and isinstance(value, dict):
        return {k: absolute_paths(v, args[1], base) for k, v in value.items()}
    return value


def _fits(value: Any, annotation: Any) -> bool:
    """Whether plain ``value`` has the shape of one option of a union (for :func:`absolute_paths`)."""
    origin = get_origin(annotation) or annotation
    if isinstance(value, str):
        return isinstance(origin, type) and issubclass(origin, PurePath)
    if isinstance(value, list):
        return origin is tuple
    if isinstance(value, dict):
        return origin in (dict, Mapping) or (
            isinstance(origin, type) and issubclass(origin, Config)
        )
    return False


def load_pipeline(path: str | Path, overrides: Sequence[str] = ()) -> Pipeline:
    """Shortcut for :meth:`Pipeline.from_yaml`.

    Parameters
    ----------
    path
        The pipeline's YAML file.
    overrides
        Dotted ``--a.b=value`` overrides applied to it first.
    """
    return Pipeline.from_yaml(path, overrides)


def _inspect_extractor(
    name: str,
    extractor: Extractor,
    events: pd.DataFrame,
    store: Store,
    max_keys: int,
    totals: list[float],
) -> list[str]:
    """The lines of one extractor in :meth:`Pipeline.inspect`; adds its bytes to ``totals``."""
    head = f"extractor {name}: {type(extractor).__name__} key {extractor.prepare_key}"
    try:
        items = extractor.items(events)
    except FileNotFoundError as err:  # a study not written yet: no file, no item key
        return [f"{head}, item keys unknown until the data files exist ({err})"]
    unique = list({i.key: i for i in items}.values())
    missing = set(store.missing(i.key for i in unique))
    stored_bytes = sum(
        int(store.info(i.key).get("nbytes", 0)) for i in unique if i.key not in missing
    )
    estimate, how = _estimate_missing(extractor, events, store, unique, missing, stored_bytes)
    totals[0] += stored_bytes
    totals[1] += estimate
    lines = [
        f"{head}, {len(unique)} items, {len(unique) - len(missing)} stored "
        f"({_size(stored_bytes)}), {len(missing)} missing (~{_size(estimate)}, {how})"
    ]
    for report in extractor.linked_entities(events):  # entities joined to its events
        lines.append(f"  {report.describe()}")
    for item in unique[:max_keys]:
        state = "missing" if item.key in missing else "stored "
        lines.append(f"  {state} {item.key}  {item.label}")
    if len(unique) > max_keys:
        lines.append(f"  ... {len(unique) - max_keys} more")
    return lines


def files_line(selection: pd.DataFrame | Segments) -> str:
    """``files: 412 recordings, 38 present, 1.9 TB to fetch for this selection`` (no network)."""
    from .studies.fetch.plan import format_bytes, needed_files, summary

    info = summary(needed_files(selection))
    line = (
        f"files: {info['recordings']:.0f} recordings, {info['recordings_present']:.0f} present, "
        f"{format_bytes(info['bytes_to_fetch'])} to fetch for this selection "
        f"({info['files_missing']:.0f} of {info['files']:.0f} files missing"
    )
    if info["sizes_unknown"]:
        line += f", {info['sizes_unknown']:.0f} of unknown size"
    return line + ("; `neuralset fetch CONFIG` gets them)" if info["files_missing"] else ")")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _size(nbytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def _estimate_missing(
    extractor: Extractor,
    events: pd.DataFrame,
    store: Store,
    items: list[Any],
    missing: set[str],
    stored_bytes: int,
) -> tuple[float, str]:
    """Bytes the missing items should take, and how that was estimated."""
    todo = [i for i in items if i.key in missing]
    if not todo:
        return 0.0, "nothing to do"
    stored = [i for i in items if i.key not in missing]
    if isinstance(extractor, RecordingExtractor):
        durations = events["duration"].to_numpy()
        dur = {i.key: float(durations[i.payload["row"]]) for i in items}
        if stored and stored_bytes:
            per_second = stored_bytes / max(sum(dur[i.key] for i in stored), 1e-9)
            return per_second * sum(dur[i.key] for i in todo), "from stored recordings"
        # from source files: size x (output rate / source rate), float32 output
        freq = events["frequency"].to_numpy() if "frequency" in events.columns else None
        total = 0.0
        for item in todo:
            size = float(Path(item.payload["path"]).stat().st_size)
            src = float(freq[item.payload["row"]]) if freq is not None else 0.0
            if extractor.frequency and src > 0 and np.isfinite(src):
                size *= extractor.frequency / src
            total += size
        return total, "from source file sizes"
    if stored and stored_bytes:
        return stored_bytes / len(stored) * len(todo), "from stored items"
    return 0.0, "unknown until one item is stored"
