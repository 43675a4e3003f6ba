"""Source-space M/EEG: :class:`MegSourceExtractor` and :class:`EegSourceExtractor`.

Each recording event becomes one stored, time-major series of source (or parcel) amplitudes.
``prepare`` runs, per recording, the MNE pipeline of
:class:`~neuralset.extractors.neural.mne.base.MneExtractor` (channels, filters, crop,
resampling) and then the MNE calls of a minimum-norm inverse:

1. noise covariance: ``mne.compute_raw_covariance`` over a declared baseline span of the
   recording, or over the subject's empty-room recording (the ``empty_room`` entity, filtered
   and resampled like the recording) - :class:`NoiseCovariance`;
2. head model: a sphere fitted to the recording's digitisation (``head_model="sphere"``), or a
   one-layer BEM (``head_model="bem"``): the subject's ``anat/*_bem.fif`` when there is one,
   else the ``fsaverage`` inner skull of MNE's wheel, placed with the subject's head<->MRI
   transform (the ``trans`` of the ``anatomy`` entity);
3. a volume source space on a ``spacing`` mm grid inside the head model (MNE's wheel has no
   cortical surface), tied to the subject's atlas (``atlas``, ``atlas_labels``) with
   ``parcels=True``;
4. ``mne.make_forward_solution``, ``mne.minimum_norm.make_inverse_operator`` (MNE defaults:
   free orientations, depth weighting 0.8), ``mne.minimum_norm.apply_inverse_raw`` with
   ``lambda2 = 1 / snr**2`` and ``method`` (``pick_ori=None``: the norm of the three
   orientations per source);
5. with ``parcels=True``: ``mne.extract_label_time_course(stc, (atlas, labels), src,
   mode=parcel_mode, mri_resolution=False)`` (each source belongs to the parcel of the atlas
   voxel it lies in).

Output: ``(time, sources)`` or ``(time, parcels)``, then ``scaling`` and ``clamp`` as for
sensor data. Source names (``meta["ch_names"]``) are ``"vox<vertex>"`` on the volume grid
(``meta["positions"]``: their coordinates, m, MRI frame) or the parcel names.

Cross-session link: the anatomy and the empty-room recording are entities keyed by subject and
session (:mod:`neuralset.entities`, discovered by :mod:`neuralset.studies.anatomy` under the
events' ``study_root``); each item key folds in the identity of exactly the entity files it
reads, so a changed transform recomputes the subjects whose transform changed, and only them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ....config import Config, ConfigError, config, register
from ....entities import EntityError, EntityTable, LinkReport, link_values
from ....hashing import chain_keys, file_identity, structural_key
from ....store import Store
from ....validation import in_range, positive, require
from ...base import Item
from .base import MneExtractor
from .head_models import (
    HeadModelError,
    forward_solution,
    read_bem,
    sphere_model,
    template_bem,
    volume_source_space,
)
from .headers import check_span

__all__ = [
    "NoiseCovariance",
    "SourceExtractor",
    "MegSourceExtractor",
    "EegSourceExtractor",
    "LINK",
]

#: Event columns that link a recording to its subject's entities.
LINK: tuple[str, ...] = ("subject", "session")


@register("noise_covariance")
@config
class NoiseCovariance(Config):
    """Where the noise covariance of the inverse comes from.

    Parameters
    ----------
    source
        ``"baseline"``: a span of the recording itself; ``"empty_room"``: the subject's
        empty-room recording (MEG; the ``empty_room`` entity of the study).
    span
        ``(start, stop)`` in seconds: from the recording's start (after its ``offset``) for a
        baseline (required: a stretch without stimuli, e.g. before the first one); of the
        empty-room recording (``None``: all of it).
    method
        ``mne.compute_raw_covariance`` method: ``"empirical"`` or ``"shrunk"``.
    """

    source: Literal["baseline", "empty_room"] = "baseline"
    span: tuple[float, float] | None = None
    method: Literal["empirical", "shrunk"] = "empirical"

    def _check(self) -> None:
        require(
            self.source != "baseline" or self.span is not None,
            self,
            "span",
            "declare the baseline span (start, stop) in seconds from the recording start, "
            "e.g. (0.0, 0.9) before the first stimulus; or use source='empty_room'",
        )
        require(
            self.span is None or 0 <= self.span[0] < self.span[1],
            self,
            "span",
            f"expected 0 <= start < stop seconds, got {self.span}",
        )


@config
class SourceExtractor(MneExtractor):
    """Base of the source-space extractors (see the module docstring for the steps).

    Parameters
    ----------
    noise_cov
        Where the noise covariance comes from (required: a declared baseline span or the
        empty-room recording).
    method
        Inverse method: ``"MNE"``, ``"dSPM"``, ``"sLORETA"`` or ``"eLORETA"``.
    snr
        Assumed signal-to-noise ratio: ``lambda2 = 1 / snr**2``.
    head_model
        ``"sphere"`` (fitted to the digitisation, no anatomy needed) or ``"bem"`` (the
        subject's BEM or the fsaverage inner skull, with the subject's head<->MRI transform).
    spacing
        Grid step of the volume source space in mm.
    parcels
        Output one time course per parcel of the subject's atlas (``head_model="bem"``).
    parcel_mode
        How sources are combined in a parcel (``extract_label_time_course`` mode).
    bem_ico
        Icosahedron grade the template inner skull is downsampled to (3: 642 vertices).
    """

    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation", "baseline", "channels")

    noise_cov: NoiseCovariance
    method: Literal["MNE", "dSPM", "sLORETA", "eLORETA"] = "dSPM"
    snr: float = 3.0
    head_model: Literal["sphere", "bem"] = "sphere"
    spacing: float = 10.0
    parcels: bool = False
    parcel_mode: Literal["mean", "max"] = "mean"
    bem_ico: int = 3

    def _check(self) -> None:
        positive(self, "snr")
        in_range(self, "spacing", 2.0, 50.0, "mm")
        require(
            not self.parcels or self.head_model == "bem",
            self,
            "parcels",
            "parcels come from the subject's atlas in MRI space; use head_model='bem' (or "
            "parcels=False for one time course per source)",
        )
        in_range(self, "bem_ico", 2, 5)

    # -- entities ------------------------------------------------------------------------
    def entity_columns(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Entity table -> (columns read, columns required) for this configuration."""
        out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        if self.head_model == "bem":
            atlas = ("atlas", "atlas_labels") if self.parcels else ()
            # EEG needs the subject's own (3-layer) BEM; MEG falls back to the template
            bem = ("bem",) if self.meg_eeg()[1] else ()
            out["anatomy"] = (("trans", "bem", *atlas), ("trans", *bem, *atlas))
        if self.noise_cov.source == "empty_room":
            out["empty_room"] = (("empty_room",), ("empty_room",))
        return out

    def entity_tables(self, events: pd.DataFrame, rows: np.ndarray) -> dict[str, EntityTable]:
        """The entity tables this extractor reads, discovered under the rows' study root."""
        from ....studies.anatomy import study_entities

        wanted = self.entity_columns()
        if not wanted or not len(rows):
            return {}
        if "study_root" not in events.columns:
            raise EntityError(
                f"{type(self).__name__}: the events have no 'study_root' column, so the "
                f"{', '.join(wanted)} entities cannot be found; use the events of a Study"
            )
        roots = {str(r) for r in events["study_root"].to_numpy()[rows]}
        if len(roots) > 1:
            raise EntityError(
                f"{type(self).__name__}: recordings from {len(roots)} study roots; prepare the "
                "events of each study separately"
            )
        tables = study_entities(roots.pop())
        return {name: tables[name] for name in wanted}

    def _recording_rows(self, events: pd.DataFrame) -> np.ndarray:
        return np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())

    def items(self, events: pd.DataFrame) -> list[Item]:
        base = super().items(events)
        if not base or not self.entity_columns():
            return base
        rows = np.array([item.payload["row"] for item in base], dtype=np.int64)
        tables = self.entity_tables(events, rows)
        keys = link_values(events, rows, LINK)
        out = []
        for item, key in zip(base, keys):
            identity: list[Any] = []
            files: dict[str, str | None] = {}
            for name, (columns, _) in self.entity_columns().items():
                table = tables[name]
                identity.append(table.identity(key, columns, content_hash=self.content_hash))
                for col in columns:
                    path = table.path(key, col)
                    files[col] = None if path is None else str(path)
            payload = {**item.payload, "entities": files, "link": list(key)}
            new_key = chain_keys(item.key, structural_key(tuple(identity)))
            out.append(Item(key=new_key, label=item.label, payload=payload))
        return out

    def linked_entities(self, events: pd.DataFrame) -> list[LinkReport]:
        """How this extractor's recordings link to the entities it reads (for ``inspect``)."""
        rows = self._recording_rows(events)
        tables = self.entity_tables(events, rows)
        return [
            tables[name].coverage(events, rows, required)
            for name, (_, required) in self.entity_columns().items()
        ]

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """The MNE checks, then: every recording's subject has the entity files needed, and
        ``noise_cov.span`` lies inside the recordings it covers.

        Raises
        ------
        EntityError
            Naming the subjects that lack a file and how to fix it.
        ConfigError
            ``noise_cov.span`` runs past the end of a recording (a baseline) or of its
            empty-room recording, naming both.
        """
        super().preflight(events, store)
        for report in self.linked_entities(events):
            if report.lacking:
                raise EntityError(
                    f"{type(self).__name__}: {report.describe()}; add the files to the study "
                    f"(see neuralset.studies.anatomy for where they go), "
                    + (
                        "use head_model='sphere', "
                        if report.table.name == "anatomy"
                        else "use noise_cov=NoiseCovariance(source='baseline', span=...), "
                    )
                    + "or leave these subjects' events out"
                )
        self.check_noise_spans(events, store)

    def check_noise_spans(self, events: pd.DataFrame, store: Store) -> None:
        """Preflight: ``noise_cov.span`` lies inside each recording not yet stored (a baseline,
        at the output rate) or inside its empty-room recording."""
        span = self.noise_cov.span
        if span is None:
            return
        items = self.items(events)
        name = type(self).__name__
        missing = set(store.missing([i.key for i in items]))
        for item in (i for i in items if i.key in missing):
            label = item.payload["label"]
            if self.noise_cov.source == "baseline":
                head = self.header(Path(item.payload["path"]))
                count = check_span(head, item.payload, label)[1]
                rate = self.frequency or head.sfreq
                end, where = (round(count * rate / head.sfreq) - 1) / rate, label
            else:
                path = item.payload.get("entities", {}).get("empty_room")
                if not path:
                    continue  # reported by the entity check
                head = self.header(Path(path))
                end = (head.n_times - 1) / head.sfreq
                where = f"the empty-room recording {path} of {label}"
            if span[1] > end + 1e-9:
                raise ConfigError(
                    f"{name}.noise_cov.span: {span} runs past the end of {where} ({end:.3f} s); "
                    "declare a span inside the recording"
                    + (
                        ", or span=None for all of it"
                        if self.noise_cov.source != "baseline"
                        else ""
                    )
                )

    # -- compute -------------------------------------------------------------------------
    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        import mne

        raw, source_sfreq = self.processed_raw(payload)
        label = payload.get("label", payload["path"])
        files = payload.get("entities", {})
        cov = self.noise_covariance(raw, files, label)
        inv, src = self.inverse_operator(raw.info, cov, files, label)
        stc = mne.minimum_norm.apply_inverse_raw(
            raw, inv, 1.0 / self.snr**2, self.method, verbose="error"
        )
        if self.parcels:
            atlas, labels = self._atlas(files, label)
            series = mne.extract_label_time_course(
                stc, (atlas, labels), src, mode=self.parcel_mode, mri_resolution=False,
                verbose="error",
            )  # fmt: skip
            names = list(labels)
        else:
            series = stc.data
            names = [f"vox{v}" for v in stc.vertices[0]]
        data = np.asarray(series, dtype=np.float64).T
        meta: dict[str, Any] = {
            "ch_names": names,
            "ch_types": ["source"] * len(names),
            "bads": [],
            "sensor_names": list(raw.ch_names),
            "source_sfreq": source_sfreq,
            "method": self.method,
        }
        if not self.parcels:
            meta["positions"] = src[0]["rr"][stc.vertices[0]].tolist()
        stats = self.scaling_stats(data)
        if stats is not None:
            data = (data - stats[0]) / stats[1]
            meta["scaling"] = {"center": stats[0].tolist(), "scale": stats[1].tolist()}
        if self.clamp is not None:
            np.clip(data, -self.clamp, self.clamp, out=data)
        return np.ascontiguousarray(data, dtype=np.float32), float(raw.info["sfreq"]), meta

    def noise_covariance(self, raw: Any, files: dict[str, str | None], label: str) -> Any:
        """Step 1: the noise covariance, from the baseline span or the empty-room recording."""
        import mne

        spec = self.noise_cov
        if spec.source == "baseline":
            assert spec.span is not None
            if spec.span[1] > raw.times[-1] + 1e-9:
                raise ValueError(
                    f"{type(self).__name__}.noise_cov.span: {spec.span} runs past the end of "
                    f"{label} ({raw.times[-1]:.3f} s); declare a span inside the recording"
                )
            return mne.compute_raw_covariance(
                raw, tmin=spec.span[0], tmax=spec.span[1], method=spec.method, verbose="error"
            )
        path = files.get("empty_room")
        if not path:
            raise EntityError(f"{type(self).__name__}: no empty-room recording for {label}")
        empty = self.empty_room_raw(Path(path), list(raw.ch_names), label)
        tmin, tmax = spec.span if spec.span is not None else (0.0, None)
        return mne.compute_raw_covariance(
            empty, tmin=tmin, tmax=tmax, method=spec.method, verbose="error"
        )

    def empty_room_raw(self, path: Path, names: list[str], label: str) -> Any:
        """The empty-room recording with the recording's channels, filters and rate."""
        raw = self.read_raw(path)
        absent = [n for n in names if n not in raw.ch_names]
        if absent:
            raise ValueError(
                f"{type(self).__name__}: the empty-room recording {path} lacks channels "
                f"{', '.join(absent[:5])} of {label}"
            )
        raw.pick(names)
        raw.load_data(verbose="error")
        raw = self.preprocess(raw)
        design = self.filter_raw(raw, str(path))
        if design is not None:
            from .causal import decimate_raw

            return decimate_raw(raw, design.decimation)
        if self.frequency is not None and abs(self.frequency - raw.info["sfreq"]) > 1e-9:
            raw.resample(self.frequency, verbose="error")
        return raw

    def head(self, info: Any, files: dict[str, str | None], label: str) -> tuple[Any, Any, Any]:
        """Step 2: ``(head model, head<->MRI transform or None, identity of the head model)``."""
        import mne

        if self.head_model == "sphere":
            model = sphere_model(info, label)
            return (
                model,
                None,
                ("sphere", np.asarray(model["r0"]), [layer["rad"] for layer in model["layers"]]),
            )
        trans_path = files.get("trans")
        if not trans_path:
            raise EntityError(f"{type(self).__name__}: no head<->MRI transform for {label}")
        trans = mne.read_trans(trans_path, verbose="error")
        bem_path = files.get("bem")
        if bem_path:
            return read_bem(bem_path), trans, ("bem", file_identity(bem_path))
        if self.meg_eeg()[1]:
            raise HeadModelError(
                f"{type(self).__name__}: EEG needs a 3-layer BEM, and MNE's wheel has only the "
                f"fsaverage inner skull; add the subject's anat/*_bem.fif for {label} or use "
                "head_model='sphere'"
            )
        return (
            template_bem(self.bem_ico),
            trans,
            ("fsaverage-inner-skull", self.bem_ico, mne.__version__),
        )

    def inverse_operator(
        self, info: Any, cov: Any, files: dict[str, str | None], label: str
    ) -> tuple[Any, Any]:
        """Steps 2-4: the inverse operator and its source space."""
        import mne

        model, trans, head_id = self.head(info, files, label)
        atlas = self._atlas(files, label)[0] if self.parcels else None
        src = volume_source_space(model, self.spacing, atlas)
        meg, eeg = self.meg_eeg()
        fwd = forward_solution(info, trans, src, model, head_id=head_id, meg=meg, eeg=eeg)
        inv = mne.minimum_norm.make_inverse_operator(info, fwd, cov, verbose="error")
        return inv, fwd["src"]

    def meg_eeg(self) -> tuple[bool, bool]:
        """Whether the forward model covers MEG and EEG sensors."""
        picks = self._pick_types()
        return bool(picks & {"mag", "grad"}), "eeg" in picks

    def _atlas(self, files: dict[str, str | None], label: str) -> tuple[str, dict[str, int]]:
        from ....studies.anatomy import read_atlas_labels

        atlas, table = files.get("atlas"), files.get("atlas_labels")
        if not atlas or not table:
            raise EntityError(
                f"{type(self).__name__}: no atlas (anat/*_dseg.mgz and *_dseg.tsv) for {label}"
            )
        return atlas, read_atlas_labels(table)


@register("meg_source")
@config
class MegSourceExtractor(SourceExtractor):
    """MEG in source space (``Meg`` events); picks ``("mag", "grad")`` by default.

    Examples
    --------
    >>> meg = MegSourceExtractor(  # doctest: +SKIP
    ...     noise_cov=NoiseCovariance(source="empty_room"), method="dSPM", head_model="bem")
    >>> meg.prepare(events, store)  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Meg"
    default_picks: ClassVar[tuple[str, ...]] = ("mag", "grad")


@register("eeg_source")
@config
class EegSourceExtractor(SourceExtractor):
    """EEG in source space (``Eeg`` events); picks ``("eeg",)``, average reference projector.

    The average reference is added as a projector (``set_eeg_reference("average",
    projection=True)``), which MNE's inverse requires for EEG. A BEM head model needs the
    subject's 3-layer ``anat/*_bem.fif`` (MNE's wheel has no template scalp or skull layers).
    """

    default_event_type: ClassVar[str] = "Eeg"
    default_picks: ClassVar[tuple[str, ...]] = ("eeg",)

    def _check(self) -> None:
        require(
            self.noise_cov.source != "empty_room",
            self,
            "noise_cov",
            "empty-room recordings are MEG only; use "
            "NoiseCovariance(source='baseline', span=(start, stop))",
        )

    def preprocess(self, raw: Any) -> Any:
        raw.set_eeg_reference("average", projection=True, verbose="error")
        return raw
