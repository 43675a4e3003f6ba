"""fMRI on cortical surfaces: meshes (bundled fsaverage5, other fsaverages, files), projection
of volumes with :func:`nilearn.surface.vol_to_surf`, and GIfTI time series.

Meshes come from, in this order: the files given (``mesh_pial`` and optionally ``mesh_white``,
left then right hemisphere, GIfTI or FreeSurfer surfaces, read with
:func:`nilearn.surface.load_surf_mesh`); nilearn's bundled ``fsaverage5``; or ``fsaverage3``,
``fsaverage4``, ``fsaverage6``, ``fsaverage7`` from nilearn's data folder
(``<nilearn_data>/<fsaverageN>/{pial,white_matter}_{left,right}.gii.gz``, as
:func:`nilearn.datasets.fetch_surf_fsaverage` writes them), fetched when online; offline and
missing, :class:`~neuralset.extractors.neural.fmri_spaces.AtlasNotAvailableError` names the
files.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...validation import require
from .fmri_spaces import AtlasNotAvailableError, nilearn_data_dir

if TYPE_CHECKING:
    from .fmri import FmriExtractor

__all__ = [
    "check_mesh_fields",
    "MESHES",
    "surface_meshes",
    "fsaverage5_meshes",
    "project_surface",
    "load_gifti",
    "gifti_pair",
    "check_gifti_vertices",
    "mesh_label",
]

#: mesh names: fsaverage5 is bundled with nilearn; the others are read from its data folder
MESHES = ("fsaverage3", "fsaverage4", "fsaverage5", "fsaverage6", "fsaverage7")

Meshes = dict[str, tuple[Any, Any]]


def surface_meshes(
    mesh: str,
    pial: tuple[Path, Path] | None = None,
    white: tuple[Path, Path] | None = None,
    data_dir: Path | None = None,
) -> Meshes:
    """``{"left": (pial, white or None), "right": ...}`` in-memory meshes (see module docstring)."""
    if pial is not None:
        return _file_meshes(pial, white)
    if mesh == "fsaverage5":
        return fsaverage5_meshes()
    return _fsaverage_meshes(mesh, str(data_dir) if data_dir is not None else None)


@functools.lru_cache(maxsize=8)
def _file_meshes(pial: tuple[Path, Path], white: tuple[Path, Path] | None) -> Meshes:
    out = {}
    for i, hemi in enumerate(("left", "right")):
        out[hemi] = (_load_mesh(pial[i]), _load_mesh(white[i]) if white is not None else None)
    _check_file_meshes(out, pial, white)
    return out


def _check_file_meshes(
    meshes: Meshes, pial: tuple[Path, Path], white: tuple[Path, Path] | None
) -> None:
    """The left pial mesh lies left of the right one (RAS: smaller x), and each white mesh has
    its pial mesh's vertices."""
    x = [float(np.asarray(meshes[h][0].coordinates)[:, 0].mean()) for h in ("left", "right")]
    if x[0] > x[1]:
        raise ValueError(
            f"FmriExtractor.mesh_pial: the left mesh {pial[0]} lies right of the right mesh "
            f"{pial[1]} (mean x {x[0]:.1f} against {x[1]:.1f} mm); give the left hemisphere "
            "first, then the right"
        )
    for i, hemi in enumerate(("left", "right")):
        inner = meshes[hemi][1]
        n_pial = np.asarray(meshes[hemi][0].coordinates).shape[0]
        if white is not None and np.asarray(inner.coordinates).shape[0] != n_pial:
            raise ValueError(
                f"FmriExtractor.mesh_white: {white[i]} has "
                f"{np.asarray(inner.coordinates).shape[0]} vertices but its pial mesh "
                f"{pial[i]} has {n_pial}; give the white mesh of the same surface"
            )


def _load_mesh(path: Path) -> Any:
    from nilearn import surface

    mesh = surface.load_surf_mesh(str(path))
    return surface.InMemoryMesh(np.asarray(mesh.coordinates), np.asarray(mesh.faces))


def fsaverage_files(mesh: str, data_dir: str | None) -> dict[str, Path]:
    """Where nilearn keeps the pial and white meshes of ``mesh`` (not fsaverage5)."""
    folder = nilearn_data_dir(Path(data_dir) if data_dir else None) / (
        "fsaverage" if mesh == "fsaverage7" else mesh
    )
    return {
        f"{part}_{hemi}": folder / f"{part}_{hemi}.gii.gz"
        for part in ("pial", "white")
        for hemi in ("left", "right")
    }


@functools.lru_cache(maxsize=4)
def _fsaverage_meshes(mesh: str, data_dir: str | None) -> Meshes:
    files = fsaverage_files(mesh, data_dir)
    if not all(p.is_file() for p in files.values()):
        try:
            from nilearn import datasets

            datasets.fetch_surf_fsaverage(mesh, data_dir=data_dir)
        except Exception as err:  # nilearn raises requests/urllib errors of many kinds
            listed = "\n  ".join(str(p) for p in files.values())
            raise AtlasNotAvailableError(
                f"mesh {mesh!r} is not in nilearn's data folder and could not be downloaded "
                f"({type(err).__name__}). Provide these files:\n  {listed}\n(nilearn.datasets."
                f"fetch_surf_fsaverage({mesh!r}) writes them there on a machine with internet "
                "access), or give mesh files with FmriExtractor.mesh_pial / mesh_white"
            ) from err
    return {
        hemi: (_load_mesh(files[f"pial_{hemi}"]), _load_mesh(files[f"white_{hemi}"]))
        for hemi in ("left", "right")
    }


@functools.cache
def fsaverage5_meshes() -> Meshes:
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


def project_surface(
    img: Any,
    *,
    fwhm: float | None = None,
    kind: str = "auto",
    radius: float = 3.0,
    interpolation: str = "linear",
    mask: Any = None,
    meshes: Meshes | None = None,
) -> np.ndarray:
    """Smooth a 4D image and project it on a mesh (pial, white as inner mesh): ``(time, vertices)``.

    Left hemisphere then right; ``meshes`` defaults to fsaverage5 (20484 vertices). ``mask`` is
    a mask file or an in-memory image (a template mask resampled to the run).
    """
    from nilearn import image, surface

    if fwhm:
        img = image.smooth_img(img, fwhm)
    meshes = meshes or fsaverage5_meshes()
    parts = []
    for hemi in ("left", "right"):
        pial, white = meshes[hemi]
        texture = surface.vol_to_surf(
            img,
            pial,
            radius=radius,
            interpolation=interpolation,
            kind=kind,
            mask_img=str(mask) if isinstance(mask, str | Path) else mask,
            inner_mesh=white,
        )
        parts.append(np.asarray(texture, dtype=np.float32).T)
    return np.concatenate(parts, axis=1)


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


def mesh_label(ex: FmriExtractor) -> str:
    """The surface's name in messages: the fsaverage name, or the pial mesh files."""
    if ex.mesh_pial is None:
        return ex.mesh
    return f"{ex.mesh_pial[0].name}, {ex.mesh_pial[1].name}"


def gifti_pair(path: Path) -> list[Path]:
    """The files of a GIfTI run: ``path``, then its ``hemi-R`` pair when ``path`` is ``hemi-L``."""
    paths = [path]
    if "hemi-L" in path.name:
        right = path.with_name(path.name.replace("hemi-L", "hemi-R"))
        if right.exists():
            paths.append(right)
    return paths


def check_gifti_vertices(path: Path, meshes: Meshes, mesh_name: str) -> None:
    """A GIfTI run (``path`` and its ``hemi-R`` pair) has the vertices of ``meshes``, left then
    right (from the headers; the event points at the ``hemi-L`` file).

    Raises
    ------
    ValueError
        A ``hemi-R`` file given alone, hemispheres of different lengths, or vertex counts that
        differ from the mesh's.
    """
    import nibabel as nib

    from ...studies.headers import gifti_dims

    if "hemi-R" in path.name:
        raise ValueError(
            f"{path}: a right-hemisphere GIfTI file; point the Fmri event at its hemi-L file "
            "(the hemi-R file next to it is read with it, left then right)"
        )
    paths = gifti_pair(path)
    dims = [gifti_dims(nib.load(str(p))) for p in paths]
    if len({d[0] for d in dims}) > 1:
        raise ValueError(
            f"{path}: its hemispheres have {dims[0][0]} and {dims[1][0]} volumes "
            f"({paths[1].name}); give the two hemispheres of one run"
        )
    found = [d[1] for d in dims]
    wanted = [int(np.asarray(meshes[h][0].coordinates).shape[0]) for h in ("left", "right")]
    if found != wanted:
        raise ValueError(
            f"{path}: the GIfTI run has {' + '.join(map(str, found))} vertices "
            f"({', '.join(p.name for p in paths)}) but the mesh {mesh_name} has "
            f"{wanted[0]} + {wanted[1]} (left + right); give both hemispheres (hemi-L and "
            "hemi-R files side by side) and the mesh the run was sampled on (mesh or mesh_pial)"
        )


def check_mesh_fields(ex: FmriExtractor) -> None:
    """The mesh fields of an fMRI extractor (run by its ``_check``): meshes go with ``projection='surface'``."""
    custom = ex.mesh != "fsaverage5" or ex.mesh_pial is not None
    require(
        not custom or ex.projection == "surface",
        ex,
        "mesh",
        f"meshes are used with projection='surface' (got {ex.projection!r})",
    )
    require(
        ex.mesh_white is None or ex.mesh_pial is not None,
        ex,
        "mesh_white",
        "give the pial meshes too (mesh_pial)",
    )
    require(
        ex.mesh_pial is None or ex.mesh == "fsaverage5",
        ex,
        "mesh_pial",
        f"mesh files replace the named mesh; leave mesh='fsaverage5' (got {ex.mesh!r})",
    )
    assert ex.mesh in MESHES
