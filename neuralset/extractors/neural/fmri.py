"""fMRI extractor: 4D NIfTI, GIfTI or CIFTI-2 runs cleaned and projected with nilearn.

Each ``Fmri`` event points at a 4D NIfTI run, a ``.func.gii`` surface time series or a CIFTI-2
``.dtseries.nii``. Preparing a run does, in this order, all through nilearn (and nibabel):

1. spatial smoothing (``fwhm``, :func:`nilearn.image.smooth_img` semantics);
2. a projection to features: voxels inside a brain mask (``"mask"``, :class:`NiftiMasker`; a
   mask file, nilearn's bundled MNI152 brain / grey / white-matter mask resampled to the run,
   or one computed by ``mask_strategy``), the mean of each region of a labels atlas
   (``"atlas"``, :class:`NiftiLabelsMasker`), the components of a probabilistic atlas
   (``"maps"``, :class:`NiftiMapsMasker`) - atlases given as files or by nilearn fetcher name -
   or the vertices of a mesh (``"surface"``, :func:`vol_to_surf`, left hemisphere then right;
   fsaverage5 bundled, other fsaverages or mesh files); CIFTI runs keep the grayordinates of
   chosen structures, or their means per parcel of a ``.dlabel.nii``
   (:mod:`~neuralset.extractors.neural.fmri_project`);
3. signal cleaning with :func:`nilearn.signal.clean` (detrend, confound regression from a BIDS
   confounds TSV, high-pass by cosine drift regressors or a Butterworth filter, low-pass,
   standardisation);
4. temporal resampling to ``frequency`` by linear interpolation, vectorised over features (volume
   ``k`` is taken at ``k * TR`` seconds from the start of the file).

The result is stored time-major, ``(time, features)``, with the *space* of its features (the
mask, the atlas and its region names, the mesh, the CIFTI grayordinates):
:meth:`FmriExtractor.space` returns it and :meth:`FmriExtractor.inverse_transform` maps values
(an encoding model's weights or scores) back to a NIfTI, surface or CIFTI image. The
``hemodynamic_delay`` is applied when reading: a segment ``[start, start + duration)`` reads the
fMRI window ``[start + delay, start + delay + duration)``, so one prepared run serves any delay.
Runs with different numbers of features (native-space masks) are an error naming them, or are
zero-padded to the widest (``feature_mismatch="pad"``, :meth:`FmriExtractor.feature_mask`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...hashing import KEY_EXCLUDED, KEY_UNLESS_DEFAULT, chain_keys, structural_key
from ...memo import Slot, frozen_memo
from ...segments import Segments
from ...store import Store
from ...validation import at_least, existing_path, positive, require, unique
from ..base import (
    Computed,
    ExtractorNotPreparedError,
    Item,
    OutOfBounds,
    Output,
    events_label,
    source_identity,
)
from ..recording import RecordingExtractor
from ..recording_spans import covering_recording, nearest_sample
from .fmri_mismatch import mismatch_message, padding_mask, read_padded
from .fmri_signals import (
    check_confounds,
    check_mask,
    confounds_path,
    load_confounds,
    resample_linear,
)
from .fmri_spaces import (
    FmriSpace,
    ResolvedAtlas,
    check_atlas_fields,
    read_region_names,
    resolve_atlas,
    space_meta,
    stored_space,
)
from .fmri_surface import (
    check_mesh_fields,
    fsaverage5_meshes,
    load_gifti,
    project_surface,
    surface_meshes,
)

__all__ = [
    "FmriExtractor",
    "resample_linear",
    "confounds_path",
    "load_confounds",
    "project_surface",
    "fsaverage5_meshes",
    "load_gifti",
]

_IF_SET = dict(KEY_UNLESS_DEFAULT)


#: The extractor reading the delayed windows of a :class:`FmriExtractor` (see its ``read``).
_UNDELAYED: Slot[FmriExtractor] = Slot("undelayed extractor")
#: Features per run (``{row: width}``), per extractor ``prepare_key`` and store root.
_WIDTHS: Slot[dict[int, int]] = Slot("fMRI feature count per run")


@register("fmri")
@config
class FmriExtractor(RecordingExtractor):
    """Cleaned, projected fMRI time series of ``Fmri`` events (delegates to nilearn).

    Parameters
    ----------
    projection
        ``"mask"``: voxels inside ``mask`` / ``template_mask`` (or a mask computed with
        ``mask_strategy``); ``"atlas"``: mean signal per region of a labels image;
        ``"maps"``: signal per component of a probabilistic atlas (4D image);
        ``"surface"``: projection on a mesh (left then right hemisphere).
    mask
        Brain mask image (NIfTI); with ``"atlas"``/``"maps"`` it restricts the voxels used;
        with ``"surface"``, vertices with no sample inside it are NaN (as
        :func:`~nilearn.surface.vol_to_surf` gives them). Without a mask, a vertex with no
        sample in the run (outside its field of view) is an error naming the file.
    template_mask
        nilearn's bundled MNI152 ``"brain"``, ``"gm"`` (grey matter) or ``"wm"`` (white matter)
        mask resampled to each run's grid (nearest neighbour); instead of ``mask``.
    mask_strategy
        How a missing mask is computed (nilearn's ``NiftiMasker(mask_strategy=...)``); the
        default resamples the MNI152 brain template to the run.
    atlas
        Labels image (``"atlas"``: integer regions, 0 = background), probabilistic maps
        (``"maps"``), or for CIFTI runs a ``.dlabel.nii`` parcellation (``"atlas"``).
    atlas_name, atlas_params
        An atlas by nilearn fetcher (``"schaefer_2018"``, ``"harvard_oxford"``, ``"difumo"``)
        and its parameters (``{"n_rois": 100, "resolution_mm": 2}``), read from nilearn's data
        folder (``nilearn_data``); fetched when online, a clear error naming the files offline.
    nilearn_data
        nilearn's data folder (default ``$NILEARN_DATA`` or ``~/nilearn_data``); not keyed.
    region_names
        Lookup table of an ``atlas`` file's region names (``index``/``name`` TSV, or one name
        per line); stored with each run (:attr:`FmriSpace.region_names`).
    mesh, mesh_pial, mesh_white
        The surface: ``"fsaverage5"`` (bundled) or another fsaverage from nilearn's data
        folder; or mesh files (left, right), the pial one and optionally the white one.
    surface_kind, surface_radius, surface_interpolation
        Sampling of :func:`nilearn.surface.vol_to_surf` (between the pial and white surfaces).
    cifti_structures
        For CIFTI runs: the brain structures kept (``"CORTEX_LEFT"``, ...; all when empty).
    fwhm
        Spatial smoothing full width at half maximum in mm (``None``: none).
    detrend
        Remove a linear trend per feature.
    standardize
        ``"zscore_sample"``, ``"psc"`` (percent signal change) or ``None``.
    high_pass, low_pass
        Cut-off frequencies in Hz (``None``: no filter).
    drift
        How ``high_pass`` is applied: ``"cosine"`` drift regressors (fast, the default) or a
        ``"butterworth"`` filter (about 20x slower on whole-brain data). ``low_pass`` needs
        ``"butterworth"``.
    confounds
        Columns of the run's confounds TSV regressed out (fMRIPrep: ``*_desc-confounds_timeseries.tsv``
        next to the run, or a ``confounds`` column of the event). NaN values (first row of
        derivatives) are set to 0.
    hemodynamic_delay
        Seconds added to each segment's start when reading (e.g. 5 s: the BOLD response lags the
        stimulus). A read-time setting: changing it does not prepare again.
    feature_mismatch
        Runs with different numbers of features: ``"error"`` (``prepare`` and reads name them)
        or ``"pad"`` (zero-padded to the widest run of the events; a read-time setting).
    frequency
        Output frequency in Hz (``None``: the run's 1 / TR).
    """

    default_event_type: ClassVar[str] = "Fmri"
    #: 2: NaN voxels of a given mask read as 0, as nilearn's NiftiMasker reads them
    _version: ClassVar[int] = 2
    read_fields: ClassVar[tuple[str, ...]] = (
        "output",
        "aggregation",
        "hemodynamic_delay",
        "feature_mismatch",
    )

    projection: Literal["mask", "atlas", "surface", "maps"] = "mask"
    mask: Path | None = None
    template_mask: Literal["brain", "gm", "wm"] | None = dataclasses.field(
        default=None, metadata=_IF_SET
    )
    mask_strategy: Literal["whole-brain-template", "background", "epi"] = "whole-brain-template"
    atlas: Path | None = None
    atlas_name: str | None = dataclasses.field(default=None, metadata=_IF_SET)
    atlas_params: dict[str, int | float | str | bool] = dataclasses.field(
        default_factory=dict, metadata=_IF_SET
    )
    nilearn_data: Path | None = dataclasses.field(default=None, metadata=KEY_EXCLUDED)
    region_names: Path | None = dataclasses.field(default=None, metadata=_IF_SET)
    mesh: Literal["fsaverage3", "fsaverage4", "fsaverage5", "fsaverage6", "fsaverage7"] = (
        dataclasses.field(default="fsaverage5", metadata=_IF_SET)
    )
    mesh_pial: tuple[Path, Path] | None = dataclasses.field(default=None, metadata=_IF_SET)
    mesh_white: tuple[Path, Path] | None = dataclasses.field(default=None, metadata=_IF_SET)
    surface_kind: Literal["auto", "line", "ball", "depth"] = "auto"
    surface_radius: float = 3.0
    surface_interpolation: Literal["linear", "nearest"] = "linear"
    cifti_structures: tuple[str, ...] = dataclasses.field(default=(), metadata=_IF_SET)
    fwhm: float | None = None
    detrend: bool = False
    standardize: Literal["zscore_sample", "psc"] | None = None
    high_pass: float | None = None
    low_pass: float | None = None
    drift: Literal["cosine", "butterworth"] = "cosine"
    confounds: tuple[str, ...] = ()
    hemodynamic_delay: float = 0.0
    feature_mismatch: Literal["error", "pad"] = dataclasses.field(default="error", metadata=_IF_SET)

    def _check(self) -> None:
        at_least(self, "fwhm", 0, "mm", what="smoothing width", optional=True)
        positive(self, "surface_radius", "mm")
        positive(self, "high_pass", "Hz", optional=True)
        positive(self, "low_pass", "Hz", optional=True)
        require(
            self.high_pass is None or self.low_pass is None or self.low_pass > self.high_pass,
            self,
            "low_pass",
            f"must be above high_pass ({self.high_pass} Hz), got {self.low_pass}",
        )
        require(
            self.low_pass is None or self.drift != "cosine",
            self,
            "low_pass",
            f"nilearn implements low-pass only with a Butterworth filter, got {self.low_pass} "
            "with drift='cosine'; set drift='butterworth' or low_pass=None",
        )
        require(
            self.mask is None or self.template_mask is None,
            self,
            "template_mask",
            f"give either a mask file or a template mask, not both (got mask={self.mask})",
        )
        check_atlas_fields(self)
        check_mesh_fields(self)
        for field in ("atlas", "mask", "region_names"):
            existing_path(self, field, "file")
        for field in ("mesh_pial", "mesh_white"):
            for path in getattr(self, field) or ():
                existing_path(self, field, "file", value=path)
        unique(self, "confounds")

    # -- spaces -------------------------------------------------------------------------
    def resolved_atlas(self) -> ResolvedAtlas:
        """The atlas image and region names (a file, or a nilearn atlas in its data folder)."""
        if self.atlas_name is not None:
            return resolve_atlas(self.atlas_name, dict(self.atlas_params), self.nilearn_data)
        names = read_region_names(self.region_names) if self.region_names else {}
        kind: Literal["labels", "maps"] = "maps" if self.projection == "maps" else "labels"
        return ResolvedAtlas(image=str(self.atlas), kind=kind, names=names)

    def meshes(self) -> dict[str, tuple[Any, Any]]:
        """The surface meshes (pial, white or None) per hemisphere, in memory."""
        return surface_meshes(self.mesh, self.mesh_pial, self.mesh_white, self.nilearn_data)

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Before any work: each run not yet stored checked against its event from its header
        (:func:`~neuralset.studies.headers.check_fmri_run`), against the settings
        (:func:`~neuralset.extractors.neural.fmri_project.check_run_files`) and its confounds
        file (columns, one row per volume), the mask file non-empty, named atlases and meshes
        available."""
        from ...studies.headers import check_fmri_run
        from .fmri_project import check_run_files

        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        if missing and self.mask is not None:
            check_mask(self.mask)
        for item in items:
            if item.key in missing:
                p = item.payload
                label = events_label(events, p["row"])
                run = Path(p["path"])
                n_volumes, tr = check_fmri_run(
                    run, p["frequency"], p["offset"], p["duration"], label
                )
                self._check_band(tr, run)
                check_run_files(self, run, n_volumes)
                if "confounds_path" in p:
                    check_confounds(Path(p["confounds_path"]), self.confounds, n_volumes, run)
        if self.atlas_name is not None:
            self.resolved_atlas()
        if self.projection == "surface" and (self.mesh != "fsaverage5" or self.mesh_pial):
            self.meshes()

    def _check_band(self, tr: float, run: Path) -> None:
        """``high_pass`` and ``low_pass`` below the run's Nyquist frequency (nilearn only warns,
        then keeps the signal unfiltered)."""
        nyquist = 0.5 / tr
        for name in ("high_pass", "low_pass"):
            value = getattr(self, name)
            if value is not None and value >= nyquist:
                raise ConfigError(
                    f"FmriExtractor.{name}: {value:g} Hz is at or above the Nyquist frequency "
                    f"({nyquist:g} Hz) of {run}, TR {tr:g} s; set it below {nyquist:g} Hz, "
                    "or None"
                )

    # -- prepare ----------------------------------------------------------------------
    def items(self, events: pd.DataFrame) -> list[Item]:
        base = super().items(events)
        extra_files = [p for p in (self.mask, self.atlas) if p is not None]
        extra_ident: list[Any] = [source_identity(p) for p in extra_files]
        for path in (self.region_names, *(self.mesh_pial or ()), *(self.mesh_white or ())):
            if path is not None:
                extra_ident.append(source_identity(path))
        freq = events["frequency"].to_numpy() if "frequency" in events.columns else None
        conf_col = events["confounds"].to_numpy() if "confounds" in events.columns else None
        out = []
        for item in base:
            payload = dict(item.payload)
            row = payload["row"]
            payload["frequency"] = (
                float(freq[row]) if freq is not None and pd.notna(freq[row]) else 0.0
            )
            ident: list[Any] = [payload["frequency"], *extra_ident]
            if self.confounds:
                given = conf_col[row] if conf_col is not None else None
                cpath = confounds_path(Path(payload["path"]), given, events, row)
                payload["confounds_path"] = str(cpath)
                ident.append(source_identity(cpath))
            key = chain_keys(item.key, structural_key(tuple(ident)))
            out.append(Item(key=key, label=item.label, payload=payload))
        return out

    def compute(self, item: Item) -> Computed:
        data, sfreq, meta, arrays = self._compute_run(item.payload)
        data = np.ascontiguousarray(data, dtype=np.float32)
        return Computed(arrays={"data": data, **arrays}, meta={"sfreq": float(sfreq), **meta})

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        data, sfreq, meta, _ = self._compute_run(payload)
        return data, sfreq, meta

    def _compute_run(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any], dict[str, np.ndarray]]:
        from .fmri_project import project_run

        path = Path(payload["path"])
        cfile = payload.get("confounds_path")
        conf = load_confounds(Path(cfile), self.confounds) if cfile else None
        event_freq = float(payload.get("frequency") or 0.0)
        features, tr, space, arrays = project_run(self, path, event_freq, conf)
        sfreq_in = 1.0 / tr
        sfreq = float(self.frequency) if self.frequency is not None else sfreq_in
        data = resample_linear(features, sfreq_in, sfreq, offset=float(payload.get("offset", 0.0)))
        meta: dict[str, Any] = {
            "projection": self.projection,
            "tr": tr,
            "n_volumes": int(features.shape[0]),
            "n_features": int(features.shape[1]),
            "space": space_meta(space),
        }
        if space.kind == "atlas":
            meta["regions"] = list(space.regions)
        if space.kind == "surface":
            meta["mesh"] = self.mesh if self.mesh_pial is None else "files"
        return data, sfreq, meta, arrays

    def _clean_args(self, tr: float) -> dict[str, Any]:
        """Keyword arguments of :func:`nilearn.signal.clean` (and of the maskers) for this config."""
        use_filter = self.high_pass is not None or self.low_pass is not None
        return {
            "detrend": self.detrend,
            "standardize": self.standardize,
            "high_pass": self.high_pass,
            "low_pass": self.low_pass,
            "t_r": tr,
            "filter": self.drift if use_filter else False,
        }

    def _clean(
        self, data: np.ndarray, tr: float, conf: np.ndarray | None, path: Path
    ) -> np.ndarray:
        """:func:`nilearn.signal.clean` with this extractor's settings (no-op when none set)."""
        if not (
            self.detrend or self.standardize or self.high_pass or self.low_pass or self.confounds
        ):
            return data
        from nilearn import signal

        if conf is not None and conf.shape[0] != data.shape[0]:
            raise ValueError(
                f"confounds of {path}: {conf.shape[0]} rows but the run has {data.shape[0]} volumes"
            )
        cleaned = signal.clean(data, confounds=conf, **self._clean_args(tr))
        return np.asarray(cleaned, dtype=np.float32)

    def fit(self, events: pd.DataFrame, store: Store) -> None:
        """After ``prepare``: runs with different feature counts are an error (unless ``"pad"``)."""
        if self.feature_mismatch == "error":
            widths = self._widths(events, store)
            if len(set(widths.values())) > 1:
                raise ValueError(mismatch_message(events, widths))

    # -- spaces of stored runs ----------------------------------------------------------
    def _run_items(self, events: pd.DataFrame) -> dict[int, Item]:
        rows = np.flatnonzero((events["type"] == self.resolved_event_type).to_numpy())
        return {int(r): self.items(events.iloc[[int(r)]])[0] for r in rows}

    def _widths(self, events: pd.DataFrame, store: Store) -> dict[int, int]:
        """Number of features of each stored run (event row -> count)."""
        items = self._run_items(events)
        missing = set(store.missing([i.key for i in items.values()]))
        present = [r for r, i in sorted(items.items()) if i.key not in missing]
        return {r: int(store.meta(items[r].key)["n_features"]) for r in present}

    def space(self, events: pd.DataFrame, store: Store, row: int | None = None) -> FmriSpace:
        """The stored space of the run of event ``row`` (default: the first ``Fmri`` event)."""
        items = self._run_items(events)
        if not items:
            raise ValueError(f"FmriExtractor.space: no {self.resolved_event_type} event")
        row = min(items) if row is None else int(row)
        if row not in items:
            raise ValueError(
                f"FmriExtractor.space: row {row} is not a {self.resolved_event_type} event"
            )
        key = items[row].key
        if not store.has(key):
            raise ExtractorNotPreparedError(
                f"FmriExtractor has no stored run for event row {row}; call prepare first"
            )
        return stored_space(store.meta(key)["space"], store.get_arrays(key), self)

    def inverse_transform(
        self, values: np.ndarray, events: pd.DataFrame, store: Store, row: int | None = None
    ) -> Any:
        """Feature values (``(n,)`` or ``(maps, n)``) back to an image of the run's space.

        See :meth:`FmriSpace.inverse_transform`; values padded by ``feature_mismatch="pad"``
        are cut to the run's own features.
        """
        space = self.space(events, store, row)
        values = np.asarray(values)
        if self.feature_mismatch == "pad" and values.shape[-1] > space.n_features:
            values = values[..., : space.n_features]
        return space.inverse_transform(values)

    # -- read -------------------------------------------------------------------------
    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        runs = self._runs_of(segments)
        self.recording_keys(segments, np.unique(runs[runs >= 0]))  # a replaced run: new version
        widths = segments.index.memo.get_or_set(
            _WIDTHS,
            lambda: self._widths(segments.events, store),
            self.prepare_key,
            str(store.root),
            self.keys_version(segments),
        )
        if len(set(widths.values())) <= 1:
            return self._read_aligned(segments, store, out_of_bounds)
        if self.feature_mismatch == "error":
            raise ValueError(mismatch_message(segments.events, widths))
        return read_padded(self, segments, store, out_of_bounds, widths)

    def sample_index(self, seconds: np.ndarray, sfreq: np.ndarray | float) -> np.ndarray:
        """Volume nearest to each time; halfway between two volumes, the later one (numpy's
        round-half-to-even would read onsets 1, 3, 5, 7 s at TR 2 s at volumes 0, 2, 2, 4)."""
        return nearest_sample(seconds, sfreq)

    def _runs_of(self, segments: Segments) -> np.ndarray:
        start = segments.start + self.hemodynamic_delay
        return covering_recording(segments, self.resolved_event_type, start)

    def feature_mask(self, segments: Segments, store: Store) -> np.ndarray:
        """``(batch, features)``: which features of each segment's read are real (not padding)."""
        return padding_mask(self._widths(segments.events, store), self._runs_of(segments))

    def _read_aligned(self, segments: Segments, store: Store, out_of_bounds: OutOfBounds) -> Output:
        """The read of runs sharing one feature count, with the hemodynamic delay."""
        delay = self.hemodynamic_delay
        if delay == 0:
            return super().read(segments, store, out_of_bounds=out_of_bounds)
        base = frozen_memo(self).get_or_set(_UNDELAYED, self._undelayed)
        if self.output == "static" and self.aggregation == "trigger":
            trig = segments.events["start"].to_numpy()[np.maximum(segments.trigger, 0)]
            start = np.where(segments.trigger >= 0, trig, segments.start) + delay
            duration = np.full(len(segments), 1e-9)  # rounds to 0 samples: reads one sample
        else:
            start, duration = segments.start + delay, segments.duration
        shifted = segments.with_windows(start, duration)  # shares the event index and its memo
        return RecordingExtractor.read(base, shifted, store, out_of_bounds=out_of_bounds)

    def _undelayed(self) -> FmriExtractor:
        """The same extractor without the delay (same item keys), reading shifted windows.

        At the trigger, the sample at onset + delay is the mean over a one-sample window there.
        """
        if self.output == "static" and self.aggregation == "trigger":
            return dataclasses.replace(self, hemodynamic_delay=0.0, aggregation="mean")
        return dataclasses.replace(self, hemodynamic_delay=0.0)
