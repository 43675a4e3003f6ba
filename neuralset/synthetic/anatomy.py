"""Synthetic anatomy: per-subject transform, parcellation, digitisation and empty-room recording.

The ``anatomy`` modality of :class:`~neuralset.synthetic.study.SyntheticStudy` (the
``"anatomy"`` entry of :data:`~neuralset.synthetic.study.SYNTHETIC_WRITERS`). Every subject's
head is MNE's ``fsaverage`` template (the files of MNE's wheel); what differs per subject is
the head<->MRI transform: the template's ``fsaverage-trans.fif`` moved by a few millimetres
(seeded per subject), as a coregistration of that subject would give. Files, in the BIDS-like
layout :mod:`neuralset.studies.anatomy` discovers:

* ``sub-XX/anat/sub-XX_trans.fif`` - the head->MRI transform (:func:`subject_trans`);
* ``sub-XX/anat/sub-XX_dseg.mgz`` and ``sub-XX_dseg.tsv`` - a coarse 8-parcel volume atlas
  (hemisphere x anterior/posterior x superior/inferior of the template inner skull's centre)
  on a 4 mm grid in the template's MRI space, and its ``index``/``name`` table;
* ``sub-XX/meg/sub-XX_task-noise_meg.fif`` (with the ``meg`` modality) - a 10 s empty-room
  recording: the same sensors, noise and line only.

With the ``anatomy`` modality the MEG files carry a sensor geometry and a digitisation
(:func:`add_meg_geometry`): Neuromag-like triplets (one magnetometer, two planar gradiometers)
on a 12.5 cm helmet over the head, device coordinates equal to head coordinates, and the
fiducials plus 60 head-shape points of the template scalp in the template's head frame (the
same for every subject: a subject differs by its transform only). EEG files carry
their 10-20 montage with or without it. The anatomy modality writes no events.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..extractors.neural.mne.head_models import template_path
from .study import GRAD_AMPLITUDE, LINE_RATIO, MEG_AMPLITUDE, NOISE_RATIO, SyntheticStudy

__all__ = [
    "write_anatomy",
    "subject_trans",
    "add_meg_geometry",
    "PARCELS",
    "HELMET_RADIUS",
    "EMPTY_ROOM_DURATION",
]

HELMET_RADIUS = 0.125  # m
HELMET_CENTER = (0.0, 0.0, 0.04)  # m, head coordinates
TRANS_JITTER = 0.003  # m: standard deviation of each subject's shift from the template
EMPTY_ROOM_DURATION = 10.0  # s
N_HEAD_POINTS = 60
ATLAS_SHAPE = 48
ATLAS_VOXEL = 4.0  # mm
#: parcel index -> name of the synthetic atlas
PARCELS: dict[int, str] = {
    1 + hemi + 2 * front + 4 * top: f"{('left', 'right')[hemi]}-"
    f"{('posterior', 'anterior')[front]}-{('inferior', 'superior')[top]}"
    for top in (0, 1)
    for front in (0, 1)
    for hemi in (0, 1)
}


# -- the transform and the digitisation ------------------------------------------------
def subject_trans(study: SyntheticStudy, subject: int) -> Any:
    """The head->MRI transform of ``subject``: the template's, shifted by a seeded few mm."""
    import mne

    template = mne.read_trans(template_path("trans"), verbose="error")
    shift = study.rng(subject, "anatomy-trans").normal(0.0, TRANS_JITTER, size=3)
    matrix = np.array(template["trans"], dtype=np.float64)
    matrix[:3, 3] += shift
    return mne.transforms.Transform("head", "mri", matrix)


def _template_points() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fiducials and head-shape points of the template scalp, in head coordinates.

    The head frame is the template's (its fiducials on the axes): every subject's digitisation
    is the same, only the transform to the MRI differs.
    """
    import mne

    to_head = mne.transforms.invert_transform(
        mne.read_trans(template_path("trans"), verbose="error")
    )
    fiducials, _ = mne.io.read_fiducials(template_path("fiducials"), verbose="error")
    names = {1: "lpa", 2: "nasion", 3: "rpa"}
    fid = {names[int(f["ident"])]: mne.transforms.apply_trans(to_head, f["r"]) for f in fiducials}
    scalp = mne.read_bem_surfaces(template_path("head"), verbose="error")[0]["rr"]
    upper = scalp[scalp[:, 2] > -0.02]  # above the ears (MRI coordinates)
    picks = np.linspace(0, len(upper) - 1, N_HEAD_POINTS).astype(int)
    return fid, mne.transforms.apply_trans(to_head, upper[picks])


def _helmet(n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and outward normals of ``n_sites`` sensor sites on the helmet cap."""
    i = np.arange(n_sites) + 0.5
    polar = np.arccos(1.0 - i / n_sites)  # from the top down to the equator of the cap
    azimuth = math.pi * (1.0 + math.sqrt(5.0)) * i
    normals = np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1
    )
    return np.asarray(HELMET_CENTER) + HELMET_RADIUS * normals, normals


def add_meg_geometry(raw: Any, study: SyntheticStudy, subject: int) -> None:
    """Give the MEG channels of ``raw`` positions, coils and the subject's digitisation."""
    import mne
    from mne.io.constants import FIFF

    meg = [i for i, ch in enumerate(raw.info["chs"]) if ch["kind"] == FIFF.FIFFV_MEG_CH]
    positions, normals = _helmet(math.ceil(len(meg) / 3))
    with raw.info._unlock():
        for n, pick in enumerate(meg):
            site, role = divmod(n, 3)
            ez = normals[site]
            ex = np.cross([0.0, 0.0, 1.0], ez)
            ex = ex / np.linalg.norm(ex) if np.linalg.norm(ex) > 1e-9 else np.array([1.0, 0, 0])
            ey = np.cross(ez, ex)
            if role == 2:  # the second gradiometer of a site measures along the other axis
                ex, ey = ey, -ex
            ch = raw.info["chs"][pick]
            ch["loc"][:] = np.concatenate([positions[site], ex, ey, ez])
            ch["coord_frame"] = FIFF.FIFFV_COORD_DEVICE
            mag = ch["unit"] == FIFF.FIFF_UNIT_T
            ch["coil_type"] = FIFF.FIFFV_COIL_VV_MAG_T3 if mag else FIFF.FIFFV_COIL_VV_PLANAR_T1
        raw.info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
    fid, points = _template_points()
    montage = mne.channels.make_dig_montage(**fid, hsp=points, coord_frame="head")
    raw.set_montage(montage, verbose="error")


# -- files -----------------------------------------------------------------------------
def _write_trans(study: SyntheticStudy, subject: int, target: Path) -> None:
    import mne

    if target.exists():
        return
    tmp = target.with_name(f".tmp-{target.stem}-trans.fif")
    mne.write_trans(tmp, subject_trans(study, subject), overwrite=True, verbose="error")
    tmp.replace(target)


def _write_atlas(target: Path, table: Path) -> None:
    """The 8-parcel atlas (MGZ, FreeSurfer LIA grid centred on the origin) and its dseg.tsv."""
    import mne
    import nibabel as nib

    if not table.exists():
        lines = ["index\tname", *(f"{k}\t{v}" for k, v in PARCELS.items())]
        tmp_table = table.with_name(f".tmp-{table.name}")
        tmp_table.write_text("\n".join(lines) + "\n")
        tmp_table.replace(table)
    if target.exists():
        return
    half = ATLAS_SHAPE * ATLAS_VOXEL / 2
    vox2ras = np.array(
        [
            [-ATLAS_VOXEL, 0, 0, half],
            [0, 0, ATLAS_VOXEL, -half],
            [0, -ATLAS_VOXEL, 0, half],
            [0, 0, 0, 1],
        ]
    )
    ijk = np.indices((ATLAS_SHAPE,) * 3).reshape(3, -1).T
    ras = (ijk @ vox2ras[:3, :3].T + vox2ras[:3, 3]) / 1000.0  # m, MRI surface RAS
    skull = mne.read_bem_surfaces(template_path("inner_skull"), verbose="error")[0]["rr"]
    centre = skull.mean(axis=0)
    values = (
        1
        + (ras[:, 0] > 0).astype(np.int32)
        + 2 * (ras[:, 1] > centre[1]).astype(np.int32)
        + 4 * (ras[:, 2] > centre[2]).astype(np.int32)
    )
    image = nib.MGHImage(values.reshape((ATLAS_SHAPE,) * 3).astype(np.int32), vox2ras)
    tmp = target.with_name(f".tmp-{target.name}")
    nib.save(image, str(tmp))
    tmp.replace(target)


def _write_empty_room(study: SyntheticStudy, subject: int, target: Path) -> None:
    import mne

    from .meeg import atomic_save_raw

    if target.exists():
        return
    sfreq = float(study.meg_sfreq)
    n_times = int(round(EMPTY_ROOM_DURATION * sfreq))
    types = ["mag" if i % 3 == 0 else "grad" for i in range(study.meg_channels)]
    names = [f"MEG {i + 1:03d}" for i in range(study.meg_channels)]
    amplitudes = np.array([MEG_AMPLITUDE if t == "mag" else GRAD_AMPLITUDE for t in types])
    rng = study.rng(subject, "empty-room")
    data = rng.standard_normal((len(names), n_times)) * (NOISE_RATIO * amplitudes)[:, None]
    line = np.sin(2 * np.pi * 50.0 * np.arange(n_times) / sfreq + rng.uniform(0, 2 * np.pi))
    data += (LINE_RATIO * amplitudes)[:, None] * line[None, :]
    info = mne.create_info(names, sfreq, types)
    info["line_freq"] = 50.0
    raw = mne.io.RawArray(data, info, verbose="error")
    add_meg_geometry(raw, study, subject)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_raw(raw, target)


def write_anatomy(
    study: SyntheticStudy, subject: int, folder: Path, rng: np.random.Generator, words: pd.DataFrame
) -> pd.DataFrame:
    """Write the subject's anatomy files if missing (see the module docstring); no events."""
    anat = folder / "anat"
    anat.mkdir(parents=True, exist_ok=True)
    _write_trans(study, subject, anat / f"{folder.name}_trans.fif")
    _write_atlas(anat / f"{folder.name}_dseg.mgz", anat / f"{folder.name}_dseg.tsv")
    if "meg" in study.modalities:
        _write_empty_room(study, subject, folder / "meg" / f"{folder.name}_task-noise_meg.fif")
    return pd.DataFrame(columns=["type", "start", "duration", "timeline"])
