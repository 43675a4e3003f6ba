"""Synthetic fMRI runs: 4D NIfTI in MNI space with a known BOLD response to the words.

The writer :func:`write_fmri` has the signature of the synthetic study's pluggable writers,
``fn(study, subject, folder, rng, words) -> events``. It writes, if missing, one run
``sub-XX_space-MNI152NLin2009cAsym_desc-synthetic_bold.nii`` (uncompressed: ``.nii.gz`` is ~15x
slower to write) through a temporary name and :func:`os.replace`, and returns its ``Fmri`` event.

Known structure, for tests:

* grid: nilearn's bundled MNI152 template resampled to :data:`VOXEL_MM` mm voxels (26 x 30 x 25
  at 8 mm), its affine and TR :data:`TR` s in the header; ``n_volumes = floor(duration / TR)``;
  volume ``k`` is at ``k * TR`` s on the timeline (the event starts at 0);
* signal: :data:`BASELINE` inside the brain (template > 0), 0 outside, plus seeded Gaussian noise
  of standard deviation :data:`NOISE_STD`;
* response: in each sphere of :data:`RESPONSE_REGIONS` (centre in MNI mm, radius
  :data:`REGION_RADIUS` mm, restricted to the brain) the word boxcar (each word lasts its own
  ``duration``) convolved with the SPM canonical double-gamma HRF (:func:`canonical_hrf`, peak 1 s
  ~5 s after onset), scaled by the region's amplitude (:func:`bold_response` gives the series,
  :func:`region_masks` the voxels).

:func:`write_parcellation` writes a labels atlas on the same grid (the response regions, then
boxes tiling the rest of the brain) and its region-name table, for encoding-model demos.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import must_write

__all__ = [
    "write_fmri",
    "write_parcellation",
    "canonical_hrf",
    "bold_response",
    "region_masks",
    "template_grid",
    "TR",
    "VOXEL_MM",
    "RESPONSE_REGIONS",
    "SPACE",
]

TR = 2.0  # s
VOXEL_MM = 8
BASELINE = 100.0
NOISE_STD = 1.0
REGION_RADIUS = 12.0  # mm
SPACE = "MNI152NLin2009cAsym"
#: region name -> (MNI centre x, y, z in mm, amplitude of the response)
RESPONSE_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left_superior_temporal": (-56.0, -24.0, 4.0, 5.0),
    "occipital": (0.0, -88.0, 4.0, 3.0),
}
_HRF_DT = 0.05  # s, resolution of the convolution


def canonical_hrf(dt: float = _HRF_DT, length: float = 32.0) -> np.ndarray:
    """SPM canonical double-gamma HRF sampled every ``dt`` s (peak normalised to 1)."""
    t = np.arange(0.0, length, dt)
    h = t**5 * np.exp(-t) / math.gamma(6) - t**15 * np.exp(-t) / (6 * math.gamma(16))
    return h / h.max()


def bold_response(words: pd.DataFrame, n_volumes: int, tr: float = TR) -> np.ndarray:
    """Word boxcar convolved with :func:`canonical_hrf`, sampled at ``k * tr`` (``k < n_volumes``)."""
    w = words[words["type"].astype(str) == "Word"] if "type" in words.columns else words
    n_fine = int(math.ceil(n_volumes * tr / _HRF_DT)) + 1
    box = np.zeros(n_fine)
    for start, duration in zip(w["start"].to_numpy(float), w["duration"].to_numpy(float)):
        a = int(round(start / _HRF_DT))
        b = max(a + 1, int(round((start + duration) / _HRF_DT)))
        box[a:b] = 1.0
    fine = np.convolve(box, canonical_hrf())[:n_fine] * _HRF_DT
    idx = np.round(np.arange(n_volumes) * tr / _HRF_DT).astype(np.int64)
    return fine[idx]


def template_grid(resolution: int = VOXEL_MM) -> tuple[np.ndarray, np.ndarray]:
    """Brain mask (template > 0) and affine of nilearn's bundled MNI152 template at ``resolution`` mm."""
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=resolution)
    return np.asarray(template.get_fdata() > 0), np.asarray(template.affine)


def region_masks(brain: np.ndarray, affine: np.ndarray) -> dict[str, np.ndarray]:
    """Voxels (boolean, brain shape) of each :data:`RESPONSE_REGIONS` sphere, inside the brain."""
    ijk = np.indices(brain.shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).T.reshape(brain.shape + (3,))
    out = {}
    for name, (x, y, z, _) in RESPONSE_REGIONS.items():
        dist = np.linalg.norm(xyz - np.array([x, y, z]), axis=-1)
        out[name] = (dist <= REGION_RADIUS) & brain
    return out


def write_fmri(
    study: Any, subject: int, folder: Path, rng: np.random.Generator, words: pd.DataFrame
) -> pd.DataFrame:
    """Write the subject's synthetic BOLD run if missing; return its ``Fmri`` event."""
    n_volumes = int(math.floor(float(study.duration) / TR + 1e-9))
    target = folder / f"{folder.name}_space-{SPACE}_desc-synthetic_bold.nii"
    if must_write(target):
        import nibabel as nib

        brain, affine = template_grid()
        data = rng.standard_normal(brain.shape + (n_volumes,), dtype=np.float32) * NOISE_STD
        data += np.where(brain, BASELINE, 0.0).astype(np.float32)[..., None]
        response = bold_response(words, n_volumes).astype(np.float32)
        masks = region_masks(brain, affine)
        for name, (_, _, _, amplitude) in RESPONSE_REGIONS.items():
            data[masks[name]] += amplitude * response[None, :]
        img = nib.Nifti1Image(data, affine)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((VOXEL_MM, VOXEL_MM, VOXEL_MM, TR))
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        try:
            nib.save(img, tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return pd.DataFrame(
        {
            "type": ["Fmri"],
            "start": [0.0],
            "duration": [n_volumes * TR],
            "timeline": [study.timelines()[subject]],
            "filepath": [target.relative_to(study.path).as_posix()],
            "frequency": [1.0 / TR],
            "offset": [0.0],
            "space": [SPACE],
        }
    )


def write_parcellation(folder: Path, boxes: tuple[int, int, int] = (3, 3, 2)) -> tuple[Path, Path]:
    """A labels atlas on the synthetic grid and its ``index``/``name`` table; returns both paths.

    Labels 1, 2, ... are the :data:`RESPONSE_REGIONS` spheres (in that order, named after
    them); the other brain voxels are split into ``boxes`` (x, y, z) equal boxes of the grid,
    the non-empty ones numbered next and named ``box_i_j_k``. Files are
    ``synthetic_parcellation.nii`` and ``synthetic_parcellation.tsv`` in ``folder`` (written
    atomically, and only when their content changes: their mtime enters extractors' keys).
    """
    import nibabel as nib

    brain, affine = template_grid()
    labels = np.zeros(brain.shape, dtype=np.int16)
    names = []
    for name, mask in region_masks(brain, affine).items():
        names.append(name)
        labels[mask & (labels == 0)] = len(names)
    ijk = np.indices(brain.shape)
    cell = [np.minimum(ijk[a] * boxes[a] // brain.shape[a], boxes[a] - 1) for a in range(3)]
    rest = brain & (labels == 0)
    for i in range(boxes[0]):
        for j in range(boxes[1]):
            for k in range(boxes[2]):
                inside = rest & (cell[0] == i) & (cell[1] == j) & (cell[2] == k)
                if inside.any():
                    names.append(f"box_{i}_{j}_{k}")
                    labels[inside] = len(names)
    folder.mkdir(parents=True, exist_ok=True)
    image, table = folder / "synthetic_parcellation.nii", folder / "synthetic_parcellation.tsv"
    names_tsv = pd.DataFrame({"index": np.arange(1, len(names) + 1), "name": names}).to_csv(
        sep="\t", index=False
    )
    # unchanged files are left alone: their modification time is part of extractors' keys
    _write_if_changed(image, nib.Nifti1Image(labels, affine).to_bytes())
    _write_if_changed(table, names_tsv.encode())
    return image, table


def _write_if_changed(path: Path, content: bytes) -> None:
    if path.exists() and path.read_bytes() == content:
        return
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_bytes(content)
    os.replace(tmp, path)
