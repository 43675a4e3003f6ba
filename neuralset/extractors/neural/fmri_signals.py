"""Time-axis helpers of the fMRI extractor: resampling and confound files.

* :func:`resample_linear` - linear interpolation of ``(time, features)`` to a new rate,
  vectorised over features;
* :func:`confounds_path`, :func:`load_confounds` - a run's confounds TSV (fMRIPrep naming or
  the event's ``confounds`` column) and the selected columns;
* :func:`check_confounds`, :func:`check_mask`, :func:`check_mask_in_view` - the checks of a
  ``prepare``'s preflight: the confounds match the run's volumes, the mask file selects voxels
  inside the run's field of view.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "resample_linear",
    "confounds_path",
    "load_confounds",
    "check_confounds",
    "check_mask",
    "check_mask_in_view",
    "check_cleaning",
]


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
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise ValueError(
            f"{path}: confounds column(s) {text} are not numeric (e.g. "
            f"{table[text[0]].iloc[0]!r}); choose numeric columns in FmriExtractor.confounds"
        )
    return np.nan_to_num(table[list(columns)].to_numpy(dtype=np.float64), nan=0.0)


def check_confounds(path: Path, columns: Sequence[str], n_volumes: int, run: Path) -> None:
    """The confounds TSV has the ``columns``, numeric, and one row per volume of ``run``."""
    rows = load_confounds(path, columns).shape[0]
    if rows != n_volumes:
        raise ValueError(
            f"confounds file {path}: {rows} rows but the run {run} has {n_volumes} volumes; "
            "give the confounds of this run (one row per volume), or set confounds=()"
        )


def check_mask(path: Path) -> None:
    """The mask file is a 3D image selecting at least one voxel."""
    import nibabel as nib

    img: Any = nib.load(str(path))
    shape = tuple(img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise ValueError(f"FmriExtractor.mask: {path} is not a 3D mask (shape {img.shape})")
    if not np.any(np.asarray(img.dataobj)):
        raise ValueError(
            f"FmriExtractor.mask: {path} selects no voxel (all zeros); give a mask whose "
            "brain voxels are non-zero"
        )


def check_mask_in_view(path: Path, run: Path) -> None:
    """Every voxel of the mask ``path`` lies inside the field of view of the NIfTI ``run``
    (headers and the mask only). :class:`nilearn.maskers.NiftiMasker` resamples the run onto
    the mask's grid: mask voxels outside the run would read 0."""
    import nibabel as nib

    mask: Any = nib.load(str(path))
    img: Any = nib.load(str(run))
    ijk = np.argwhere(np.asarray(mask.dataobj).reshape(mask.shape[:3]) != 0)
    world = ijk @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    inv = np.linalg.inv(img.affine)
    vox = world @ inv[:3, :3].T + inv[:3, 3]
    size = np.asarray(img.shape[:3])
    outside = int((((vox < -0.5 - 1e-3) | (vox > size - 0.5 + 1e-3)).any(axis=1)).sum())
    if outside:
        raise ValueError(
            f"FmriExtractor.mask: {outside} of {len(ijk)} voxels of {path} lie outside the "
            f"field of view of {run} (nilearn's masker would read them as 0); give a mask in "
            "the run's space, e.g. nilearn.image.resample_to_img(mask, run, "
            "interpolation='nearest'), or template_mask='brain'"
        )


def check_cleaning(ex: Any, n_volumes: int, run: Path) -> None:
    """The cleaning of ``ex`` (an ``FmriExtractor``) has the 2 volumes it needs in ``run``:
    on one volume nilearn skips detrending and standardising (the values stay raw, with a
    warning) and its filters fail."""
    fields = ("detrend", "standardize", "high_pass", "low_pass", "confounds")
    asked = [f for f in fields if getattr(ex, f)]
    if n_volumes < 2 and asked:
        raise ValueError(
            f"{run} holds {n_volumes} volume; cleaning it ({', '.join(asked)}) needs at least 2 "
            "volumes (nilearn leaves a single volume as it is); turn these FmriExtractor "
            "settings off, or give the whole run"
        )
