"""fMRI extractor: 4D NIfTI (or GIfTI surface) runs cleaned and projected with nilearn.

Each ``Fmri`` event points at a 4D NIfTI run (or a ``.func.gii`` surface time series). Preparing
a run does, in this order, all through nilearn:

1. spatial smoothing (``fwhm``, :func:`nilearn.image.smooth_img` semantics);
2. a projection to features: voxels inside a brain mask (``"mask"``, :class:`NiftiMasker`), the
   mean of each region of a labels atlas (``"atlas"``, :class:`NiftiLabelsMasker`), or the
   vertices of nilearn's bundled fsaverage5 mesh (``"surface"``, :func:`vol_to_surf`, left
   hemisphere then right);
3. signal cleaning with :func:`nilearn.signal.clean` (detrend, confound regression from a BIDS
   confounds TSV, high-pass by cosine drift regressors or a Butterworth filter, low-pass,
   standardisation);
4. temporal resampling to ``frequency`` by linear interpolation, vectorised over features (volume
   ``k`` is taken at ``k * TR`` seconds from the start of the file).

The result is stored time-major, ``(time, features)`` float32. The ``hemodynamic_delay`` is applied
when reading: a segment ``[start, start + duration)`` reads the fMRI window
``[start + delay, start + delay + duration)``, so one prepared run serves any delay.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import config, register
from ...hashing import chain_keys, structural_key
from ...segments import Segments
from ...store import Store
from ...validation import at_least, existing_path, positive, require, unique
from ..base import Item, OutOfBounds, Output, events_label, source_identity
from ..recording import RecordingExtractor

__all__ = ["FmriExtractor", "resample_linear", "confounds_path", "load_confounds"]


@register("fmri")
@config
class FmriExtractor(RecordingExtractor):
    """Cleaned, projected fMRI time series of ``Fmri`` events (delegates to nilearn).

    Parameters
    ----------
    projection
        ``"mask"``: voxels inside ``mask`` (or a mask computed with ``mask_strategy``);
        ``"atlas"``: mean signal per region of the labels image ``atlas``;
        ``"surface"``: projection on nilearn's bundled fsaverage5 mesh (10242 vertices per
        hemisphere, left then right).
    mask
        Brain mask image (NIfTI); with ``"atlas"`` it restricts the voxels averaged.
    mask_strategy
        How a missing ``mask`` is computed (nilearn's ``NiftiMasker(mask_strategy=...)``); the
        default resamples the MNI152 brain mask to the run, which gives every run on the same grid
        the same voxels.
    atlas
        Labels image (integer regions, 0 = background) for ``projection="atlas"``.
    surface_kind, surface_radius, surface_interpolation
        Sampling of :func:`nilearn.surface.vol_to_surf` (between the pial and white surfaces).
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
    frequency
        Output frequency in Hz (``None``: the run's 1 / TR).
    """

    default_event_type: ClassVar[str] = "Fmri"
    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation", "hemodynamic_delay")

    projection: Literal["mask", "atlas", "surface"] = "mask"
    mask: Path | None = None
    mask_strategy: Literal["whole-brain-template", "background", "epi"] = "whole-brain-template"
    atlas: Path | None = None
    surface_kind: Literal["auto", "line", "ball", "depth"] = "auto"
    surface_radius: float = 3.0
    surface_interpolation: Literal["linear", "nearest"] = "linear"
    fwhm: float | None = None
    detrend: bool = False
    standardize: Literal["zscore_sample", "psc"] | None = None
    high_pass: float | None = None
    low_pass: float | None = None
    drift: Literal["cosine", "butterworth"] = "cosine"
    confounds: tuple[str, ...] = ()
    hemodynamic_delay: float = 0.0

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
            self.projection != "atlas" or self.atlas is not None,
            self,
            "atlas",
            "projection='atlas' needs a labels image path in atlas, got None",
        )
        require(
            self.projection == "atlas" or self.atlas is None,
            self,
            "atlas",
            f"only used with projection='atlas', got atlas={self.atlas} with projection="
            f"{self.projection!r}; set projection='atlas' or atlas=None",
        )
        existing_path(self, "atlas", "file")
        existing_path(self, "mask", "file")
        unique(self, "confounds")

    # -- prepare ----------------------------------------------------------------------
    def items(self, events: pd.DataFrame) -> list[Item]:
        base = super().items(events)
        extra_files = [p for p in (self.mask, self.atlas) if p is not None]
        extra_ident = [source_identity(p) for p in extra_files]
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

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Check each run not yet stored against its event, from its header only (raises
        :func:`~neuralset.studies.headers.check_fmri_run`'s errors before any work)."""
        from ...studies.headers import check_fmri_run

        items = self.items(events)
        missing = set(store.missing([i.key for i in items]))
        for item in items:
            if item.key in missing:
                p = item.payload
                label = events_label(events, p["row"])
                check_fmri_run(Path(p["path"]), p["frequency"], p["offset"], p["duration"], label)

    def compute_recording(
        self, payload: dict[str, Any]
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        path = Path(payload["path"])
        cfile = payload.get("confounds_path")
        conf = load_confounds(Path(cfile), self.confounds) if cfile else None
        features, tr, meta = self._project(path, float(payload.get("frequency") or 0.0), conf)
        sfreq_in = 1.0 / tr
        sfreq = float(self.frequency) if self.frequency is not None else sfreq_in
        data = resample_linear(features, sfreq_in, sfreq, offset=float(payload.get("offset", 0.0)))
        meta.update(tr=tr, n_volumes=int(features.shape[0]), n_features=int(features.shape[1]))
        return data, sfreq, meta

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

    def _project(
        self, path: Path, event_freq: float, conf: np.ndarray | None
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """Smooth, project and clean a run: ``(volumes, features)`` float32, TR in s, meta.

        The maskers clean in the same pass (exactly as a nilearn user would call them); surface
        data is cleaned with :func:`nilearn.signal.clean` after the projection.
        """
        name = path.name.lower()
        if name.endswith(".gii"):
            data, tr, meta = self._project_gifti(path, event_freq)
            return self._clean(data, tr, conf, path), tr, meta
        import nibabel as nib

        from ...studies.headers import nifti_tr

        img = nib.load(str(path))
        if len(img.shape) != 4:
            raise ValueError(f"{path}: expected a 4D fMRI image, got shape {img.shape}")
        tr = 1.0 / event_freq if event_freq > 0 else nifti_tr(img.header)[0]
        if not tr > 0:
            raise ValueError(
                f"{path}: no repetition time (event frequency is 0 and the header TR is {tr})"
            )
        if conf is not None and conf.shape[0] != img.shape[3]:
            raise ValueError(
                f"confounds of {path}: {conf.shape[0]} rows but the run has {img.shape[3]} volumes"
            )
        clean = self._clean_args(tr)
        masker_clean = {k: v for k, v in clean.items() if k != "filter"}
        clean_args = {"filter": clean["filter"]}
        if self.projection == "surface":
            data = project_surface(
                img,
                fwhm=self.fwhm,
                kind=self.surface_kind,
                radius=self.surface_radius,
                interpolation=self.surface_interpolation,
                mask=self.mask,
            )
            return (
                self._clean(data, tr, conf, path),
                tr,
                {"projection": "surface", "mesh": "fsaverage5"},
            )
        if self.projection == "atlas":
            from nilearn.maskers import NiftiLabelsMasker

            labels_masker = NiftiLabelsMasker(
                labels_img=str(self.atlas),
                mask_img=str(self.mask) if self.mask is not None else None,
                smoothing_fwhm=self.fwhm,
                reports=False,
                clean_args=clean_args,
                **masker_clean,
            )
            data = labels_masker.fit_transform(img, confounds=conf)
            regions = [int(v) for k, v in labels_masker.region_ids_.items() if k != "background"]
            return (
                np.asarray(data, dtype=np.float32),
                tr,
                {"projection": "atlas", "regions": regions},
            )
        from nilearn.maskers import NiftiMasker

        masker = NiftiMasker(
            mask_img=str(self.mask) if self.mask is not None else None,
            mask_strategy=self.mask_strategy,
            smoothing_fwhm=self.fwhm,
            reports=False,
            clean_args=clean_args,
            **masker_clean,
        )
        data = masker.fit_transform(img, confounds=conf)
        return np.asarray(data, dtype=np.float32), tr, {"projection": "mask"}

    def _project_gifti(
        self, path: Path, event_freq: float
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        if self.projection != "surface":
            raise ValueError(
                f"{path}: GIfTI data is already on a surface; use projection='surface' "
                f"(got {self.projection!r})"
            )
        if self.fwhm:
            raise ValueError(
                f"{path}: fwhm smoothing is not available for GIfTI surface data; set fwhm=None"
            )
        paths = [path]
        if "hemi-L" in path.name:
            right = path.with_name(path.name.replace("hemi-L", "hemi-R"))
            if right.exists():
                paths.append(right)
        arrays = [load_gifti(p) for p in paths]
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError(f"{paths}: hemispheres have different numbers of volumes")
        if event_freq <= 0:
            raise ValueError(f"{path}: GIfTI runs need the event frequency (1 / RepetitionTime)")
        return np.concatenate(arrays, axis=1), 1.0 / event_freq, {"projection": "surface"}

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

    # -- read -------------------------------------------------------------------------
    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        delay = self.hemodynamic_delay
        if delay == 0:
            return super().read(segments, store, out_of_bounds=out_of_bounds)
        base = self.__dict__.get("_undelayed")
        if base is None:  # the same extractor reading unshifted windows (same item keys)
            base = dataclasses.replace(self, hemodynamic_delay=0.0)
            object.__setattr__(self, "_undelayed", base)
        if self.output == "static" and self.aggregation == "trigger":
            # the sample at trigger onset + delay is the mean over a one-sample window there
            trig = segments.events["start"].to_numpy()[np.maximum(segments.trigger, 0)]
            start = np.where(segments.trigger >= 0, trig, segments.start) + delay
            duration = np.full(len(segments), 1e-9)  # rounds to 0 samples: reads one sample
            base = dataclasses.replace(base, aggregation="mean")
        else:
            start, duration = segments.start + delay, segments.duration
        shifted = Segments(
            events=segments.events,
            start=np.asarray(start, dtype=np.float64),
            duration=np.asarray(duration, dtype=np.float64),
            timeline=segments.timeline,
            trigger=segments.trigger,
        )
        if "index" in segments.__dict__:
            shifted.__dict__["index"] = segments.__dict__["index"]
        shifted.__dict__["_item_keys"] = segments.__dict__.setdefault("_item_keys", {})
        return base.read(shifted, store, out_of_bounds=out_of_bounds)


def project_surface(
    img: Any,
    *,
    fwhm: float | None = None,
    kind: str = "auto",
    radius: float = 3.0,
    interpolation: str = "linear",
    mask: Path | None = None,
) -> np.ndarray:
    """Smooth a 4D image and project it on fsaverage5 (pial, white as inner mesh): ``(time, 20484)``."""
    from nilearn import image, surface

    if fwhm:
        img = image.smooth_img(img, fwhm)
    meshes = fsaverage5_meshes()
    parts = []
    for hemi in ("left", "right"):
        pial, white = meshes[hemi]
        texture = surface.vol_to_surf(
            img,
            pial,
            radius=radius,
            interpolation=interpolation,
            kind=kind,
            mask_img=str(mask) if mask is not None else None,
            inner_mesh=white,
        )
        parts.append(np.asarray(texture, dtype=np.float32).T)
    return np.concatenate(parts, axis=1)


@functools.cache
def fsaverage5_meshes() -> dict[str, tuple[Any, Any]]:
    """Pial and white meshes of nilearn's bundled fsaverage5 per hemisphere, loaded once in memory.

    (nilearn's file-backed meshes re-read their GIfTI files at every access: ~0.3 s per run.)
    """
    from nilearn import datasets, surface

    fsavg = datasets.load_fsaverage("fsaverage5")
    out = {}
    for hemi in ("left", "right"):
        pair = []
        for name in ("pial", "white_matter"):
            mesh = fsavg[name].parts[hemi]
            pair.append(surface.InMemoryMesh(np.asarray(mesh.coordinates), np.asarray(mesh.faces)))
        out[hemi] = (pair[0], pair[1])
    return out


def load_gifti(path: Path) -> np.ndarray:
    """A GIfTI functional file as ``(time, vertices)`` float32."""
    import nibabel as nib

    gii = nib.load(str(path))
    arrays = [np.asarray(d.data, dtype=np.float32) for d in gii.darrays]  # type: ignore[attr-defined]
    if not arrays:
        raise ValueError(f"{path}: GIfTI file has no data arrays")
    if len(arrays) == 1 and arrays[0].ndim == 2:
        return arrays[0].T if arrays[0].shape[0] > arrays[0].shape[1] else arrays[0]
    return np.stack(arrays, axis=0)


def resample_linear(
    data: np.ndarray, sfreq_in: float, sfreq_out: float, *, offset: float = 0.0
) -> np.ndarray:
    """Linear interpolation of ``(time, features)`` samples to a new rate, vectorised over features.

    Input sample ``k`` is at ``k / sfreq_in`` s; output sample ``j`` at ``offset + j / sfreq_out``.
    The output covers the input's span ``n / sfreq_in - offset`` (values past the last input
    sample hold it).

    Examples
    --------
    >>> resample_linear(np.arange(3.0)[:, None], 1.0, 2.0)[:, 0].tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    """
    data = np.asarray(data)
    if data.dtype.kind != "f":
        data = data.astype(np.float32)
    n = data.shape[0]
    if sfreq_in == sfreq_out and offset == 0:
        return data
    span = n / sfreq_in - offset
    n_out = max(int(np.floor(span * sfreq_out + 1e-6)), 0)
    pos = (offset + np.arange(n_out) / sfreq_out) * sfreq_in
    i0 = np.clip(np.floor(pos + 1e-9).astype(np.int64), 0, max(n - 1, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    w = np.clip(pos - i0, 0.0, 1.0).astype(data.dtype)[:, None]
    out = np.empty((n_out, *data.shape[1:]), dtype=data.dtype)
    flat, flat_out = data.reshape(n, -1), out.reshape(n_out, -1)
    step = max(1, (1 << 22) // max(n_out, 1))  # blocks of ~4M values bound the temporaries
    for a in range(0, flat.shape[1], step):
        block = flat[:, a : a + step]
        lo = block[i0]
        lo += (block[i1] - lo) * w  # exactly the input value where w == 0
        flat_out[:, a : a + step] = lo
    return out


def confounds_path(run: Path, given: Any, events: pd.DataFrame, row: int) -> Path:
    """The confounds TSV of a run: the event's ``confounds`` column, or fMRIPrep's naming."""
    if isinstance(given, str) and given:
        path = Path(given)
        root = events["study_root"].to_numpy()[row] if "study_root" in events.columns else None
        if not path.is_absolute() and isinstance(root, str):
            path = Path(root) / path
        if not path.is_file():
            raise FileNotFoundError(
                f"confounds file {path} (confounds column of event {row}) not found"
            )
        return path
    stem = re.split(r"_(space|res|den|desc|hemi)-|_bold", run.name)[0]
    candidates = [
        run.with_name(f"{stem}_desc-confounds_timeseries.tsv"),
        run.with_name(f"{stem}_desc-confounds_regressors.tsv"),
    ]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"FmriExtractor.confounds is set but no confounds file was found for {run}: looked for "
        f"{candidates[0].name}; add a 'confounds' column to the Fmri events or set confounds=()"
    )


def load_confounds(path: Path, columns: Sequence[str]) -> np.ndarray:
    """Selected columns of a confounds TSV as ``(volumes, columns)`` float (NaN -> 0)."""
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: no confounds column(s) {missing}; available: {', '.join(map(str, table.columns[:20]))}"
        )
    return np.nan_to_num(table[list(columns)].to_numpy(dtype=np.float64), nan=0.0)
