"""CIFTI-2 dense time series (``.dtseries.nii``) read with nibabel, with ROI selection by label.

A dense time series holds, per volume, one value per *grayordinate*: the vertices of the
cortical surfaces and the voxels of subcortical structures, each labelled by its brain
structure (``CIFTI_STRUCTURE_CORTEX_LEFT``, ``CIFTI_STRUCTURE_THALAMUS_RIGHT``, ...; its
``BrainModelAxis``). :func:`read_cifti` keeps the grayordinates of the structures asked for (by
full name or without the ``CIFTI_STRUCTURE_`` prefix); :func:`cifti_parcels` averages them per
parcel of a ``.dlabel.nii`` parcellation on the same grayordinates (label 0, the unlabelled
"???" key, is left out), with the parcel names of its label table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "is_cifti",
    "brain_models",
    "kept_rows",
    "read_cifti",
    "parcel_labels",
    "cifti_parcels",
    "structure_names",
]

_PREFIX = "CIFTI_STRUCTURE_"


def is_cifti(path: Path) -> bool:
    """Whether ``path`` names a CIFTI-2 dense time series."""
    return Path(path).name.lower().endswith(".dtseries.nii")


def structure_names(names: Sequence[str]) -> list[str]:
    """Full CIFTI structure names (``CORTEX_LEFT`` -> ``CIFTI_STRUCTURE_CORTEX_LEFT``)."""
    return [n if n.startswith(_PREFIX) else _PREFIX + n.upper() for n in names]


def brain_models(path: Path) -> tuple[Any, Any, Any]:
    """``(image, series axis, brain model axis)`` of a CIFTI-2 dense time series (header only).

    Raises
    ------
    ValueError
        Not a dense time series (series x brain models).
    """
    import nibabel as nib

    img = nib.load(str(path))
    series, models = img.header.get_axis(0), img.header.get_axis(1)  # type: ignore[attr-defined]
    if not isinstance(series, nib.cifti2.SeriesAxis) or not isinstance(
        models, nib.cifti2.BrainModelAxis
    ):
        raise ValueError(
            f"{path}: expected a CIFTI-2 dense time series (series x brain models), got axes "
            f"{type(series).__name__} x {type(models).__name__}"
        )
    return img, series, models


def kept_rows(path: Path, models: Any, structures: Sequence[str] = ()) -> np.ndarray:
    """The grayordinates of ``structures`` (all when empty), in the file's order.

    Raises
    ------
    ValueError
        A structure absent from the file (the message lists those present).
    """
    if not structures:
        return np.arange(len(models))
    wanted = structure_names(structures)
    present = sorted(set(models.name))
    missing = [s for s in wanted if s not in present]
    if missing:
        raise ValueError(
            f"{path}: no grayordinates of {missing}; structures in the file: "
            f"{', '.join(p.removeprefix(_PREFIX) for p in present)}"
        )
    return np.flatnonzero(np.isin(models.name, wanted))


def read_cifti(
    path: Path, structures: Sequence[str] = ()
) -> tuple[np.ndarray, float | None, np.ndarray, Any]:
    """``(data (time, kept grayordinates) float32, TR in s or None, kept rows, brain model axis)``.

    Raises
    ------
    ValueError
        Not a dense time series, or a structure absent from the file (the message lists those
        present).
    """
    img, series, models = brain_models(path)
    rows = kept_rows(path, models, structures)
    data = np.asarray(img.dataobj, dtype=np.float32)[:, rows]
    tr = float(series.step) if series.unit == "SECOND" and series.step > 0 else None
    return data, tr, rows, models


def parcel_labels(dlabel: Path, models: Any, rows: np.ndarray) -> tuple[np.ndarray, dict, list]:
    """``(label per grayordinate of the whole file, label table, keys of the parcels with a
    kept grayordinate)`` of a ``.dlabel.nii`` on the grayordinates ``models``.

    Raises
    ------
    ValueError
        Not a dense label file, other grayordinates than the run's, or no parcel on the kept
        grayordinates.
    """
    import nibabel as nib

    img = nib.load(str(dlabel))
    label_axis, label_models = img.header.get_axis(0), img.header.get_axis(1)  # type: ignore[attr-defined]
    if not isinstance(label_axis, nib.cifti2.LabelAxis):
        raise ValueError(f"{dlabel}: expected a CIFTI-2 dense label file (.dlabel.nii)")
    if label_models != models:
        raise ValueError(
            f"{dlabel}: its grayordinates differ from the time series' (another mesh or volume "
            "space); use a parcellation defined on the same grayordinates"
        )
    labels = np.asarray(img.dataobj)[0].astype(np.int64)  # type: ignore[attr-defined]
    table = label_axis.label[0]
    kept = labels[rows]
    keys = [int(k) for k in sorted(table) if k != 0 and (kept == k).any()]
    if not keys:
        raise ValueError(
            f"{dlabel}: no parcel (label other than 0) on the grayordinates kept "
            f"({len(rows)}); keep structures that the parcellation labels (cifti_structures), "
            "or use projection='mask'"
        )
    return labels, table, keys


def cifti_parcels(
    data: np.ndarray, rows: np.ndarray, models: Any, dlabel: Path
) -> tuple[np.ndarray, list[int], list[str], np.ndarray]:
    """Mean of ``data`` (time, kept grayordinates) per parcel of ``dlabel``.

    Returns ``(parcel means (time, parcels), parcel keys, parcel names, label per grayordinate
    of the whole file)``; parcels with no kept grayordinate are left out.
    """
    labels, table, keys = parcel_labels(dlabel, models, rows)
    kept = labels[rows]
    means = np.stack([data[:, kept == k].mean(axis=1) for k in keys], axis=1)
    names = [str(table[k][0]) for k in keys]
    return means.astype(np.float32), keys, names, labels
