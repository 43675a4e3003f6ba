"""Head models, source spaces and forward solutions for source imaging (MNE calls only).

What MNE's wheel ships of the ``fsaverage`` template (``mne/data/fsaverage/``, see
:data:`TEMPLATE_FILES`): the inner-skull surface (``fsaverage-inner_skull-bem.fif``, 10242
vertices), the head<->MRI transform (``fsaverage-trans.fif``), the fiducials and the scalp
surface. No source space, no cortical surface and no outer skull or scalp BEM layer: so the
template head model is a **one-layer (inner skull) BEM, valid for MEG only**, and source spaces
are **volume grids** inside the inner skull (or inside a sphere).

* :func:`template_bem` - the template inner skull, downsampled to an icosahedron grade with
  ``mne.make_bem_model`` (the surface is written to a temporary FreeSurfer-like folder) and
  solved with ``mne.make_bem_solution``; cached per process. Grade 3 (642 vertices) solves in
  seconds; the full surface takes minutes.
* :func:`read_bem` - a subject's BEM file: a solution, or surfaces then solved.
* :func:`sphere_model` - ``mne.make_sphere_model("auto", "auto", info)``: a sphere fitted to the
  digitised head points of a recording (MEG or EEG), in head coordinates.
* :func:`volume_source_space` - ``mne.setup_volume_source_space`` inside a head model, on a
  ``spacing`` mm grid; with an atlas (an MGZ volume), on the grid of that atlas so that parcels
  can be extracted.
* :func:`forward_solution` - ``mne.make_forward_solution``, cached per process by the sensor
  geometry, transform and head model, so several inverse methods on one recording share it.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ....hashing import structural_key

__all__ = [
    "TEMPLATE_FILES",
    "HeadModelError",
    "template_path",
    "template_bem",
    "read_bem",
    "sphere_model",
    "volume_source_space",
    "forward_solution",
]

#: The fsaverage files of MNE's wheel (``mne/data/fsaverage/``), by role.
TEMPLATE_FILES: dict[str, str] = {
    "inner_skull": "fsaverage-inner_skull-bem.fif",
    "trans": "fsaverage-trans.fif",
    "fiducials": "fsaverage-fiducials.fif",
    "head": "fsaverage-head.fif",
}


class HeadModelError(ValueError):
    """A head model cannot be built from what a recording or its anatomy provides."""


def template_path(role: str) -> Path:
    """Path of a template file of :data:`TEMPLATE_FILES` inside MNE's wheel."""
    import mne

    return Path(mne.__file__).parent / "data" / "fsaverage" / TEMPLATE_FILES[role]


@functools.lru_cache(maxsize=4)
def template_bem(ico: int = 3) -> Any:
    """One-layer BEM solution of the fsaverage inner skull at icosahedron grade ``ico``."""
    import mne

    surface = mne.read_bem_surfaces(template_path("inner_skull"), verbose="error")[0]
    with tempfile.TemporaryDirectory(prefix="neuralset-fsaverage-") as tmp:
        folder = Path(tmp) / "fsaverage" / "bem"
        folder.mkdir(parents=True)
        # FreeSurfer surfaces are in mm
        mne.write_surface(folder / "inner_skull.surf", surface["rr"] * 1000.0, surface["tris"])
        model = mne.make_bem_model(
            "fsaverage", ico=ico, conductivity=(0.3,), subjects_dir=tmp, verbose="error"
        )
    return mne.make_bem_solution(model, verbose="error")


def read_bem(path: str | Path) -> Any:
    """A subject's BEM: a BEM solution file, or BEM surfaces (solved here)."""
    import mne

    try:
        return mne.read_bem_solution(path, verbose="error")
    except Exception:  # not a solution: surfaces
        pass
    try:
        surfaces = mne.read_bem_surfaces(path, verbose="error")
    except Exception as err:
        raise HeadModelError(f"{path}: neither a BEM solution nor BEM surfaces ({err})") from None
    return mne.make_bem_solution(surfaces, verbose="error")


def sphere_model(info: Any, where: str) -> Any:
    """A sphere fitted to the digitised head points of ``info`` (head coordinates)."""
    import mne

    kinds = {int(d["kind"]) for d in info.get("dig") or ()}
    # FIFFV_POINT_EEG = 3, FIFFV_POINT_EXTRA = 4: the points a sphere is fitted to
    if not kinds & {3, 4}:
        raise HeadModelError(
            f"{where} has no digitised head points (EEG positions or head-shape points) to fit "
            "a sphere to; set a montage or digitisation on the recording, or use "
            "head_model='bem' with the subject's head<->MRI transform"
        )
    return mne.make_sphere_model("auto", "auto", info, verbose="error")


def volume_source_space(head: Any, spacing: float, atlas: str | Path | None = None) -> Any:
    """A volume grid of ``spacing`` mm inside ``head`` (a BEM solution or a sphere model).

    With ``atlas`` (an MGZ parcellation in the MRI space of the BEM), the grid is tied to the
    atlas volume so that ``mne.extract_label_time_course`` can read parcels from it.
    """
    import mne

    kwargs: dict[str, Any] = {"pos": float(spacing), "verbose": "error"}
    if getattr(head, "get", lambda _k: None)("is_sphere"):
        kwargs["sphere"] = head
    else:
        kwargs["bem"] = head
    if atlas is not None:
        kwargs.update(mri=str(atlas), add_interpolator=False)
    return mne.setup_volume_source_space(**kwargs)


def _mri_grid(space: dict[str, Any]) -> Any:
    """The MRI grid a volume source space is tied to (None when none)."""
    vox = space.get("vox_mri_t")
    if vox is None:
        return None
    shape = [space.get(f"mri_{k}") for k in ("width", "height", "depth")]
    return (np.asarray(vox["trans"]), shape, str(space.get("mri_volume_name")))


_FORWARDS: dict[str, Any] = {}
_MAX_FORWARDS = 8


def forward_solution(
    info: Any, trans: Any, src: Any, head: Any, *, head_id: Any, meg: bool, eeg: bool
) -> Any:
    """``mne.make_forward_solution(info, trans, src, head)``, cached per process.

    The cache key is the sensor geometry of ``info`` (names, positions, coil types, device to
    head transform), the transform, the source space (positions, kind, MRI grid) and
    ``head_id`` (an identity of the head model given by the caller).
    """
    import mne

    chs = info["chs"]
    trans_array = None if trans is None else np.asarray(trans["trans"])
    dev_head = info.get("dev_head_t")
    key = structural_key(
        (
            [c["ch_name"] for c in chs],
            np.array([c["loc"] for c in chs]),
            [int(c["coil_type"]) for c in chs],
            None if dev_head is None else np.asarray(dev_head["trans"]),
            trans_array,
            np.concatenate([s["rr"][s["vertno"]] for s in src]),
            src.kind,
            [_mri_grid(s) for s in src],
            head_id,
            meg,
            eeg,
        )
    )
    hit = _FORWARDS.get(key)
    if hit is not None:
        return hit
    fwd = mne.make_forward_solution(info, trans, src, head, meg=meg, eeg=eeg, verbose="error")
    if len(_FORWARDS) >= _MAX_FORWARDS:
        _FORWARDS.pop(next(iter(_FORWARDS)))
    _FORWARDS[key] = fwd
    return fwd
