"""fMRI feature spaces: bundled template masks, atlases (files or nilearn names) and the way back.

* :func:`template_mask` - nilearn's bundled MNI152 brain, grey-matter or white-matter mask
  (``load_mni152_brain_mask`` / ``_gm_mask`` / ``_wm_mask``, no download) resampled to a run's
  grid with nearest-neighbour interpolation.
* :func:`resolve_atlas` - an atlas given by nilearn fetcher name (``"schaefer_2018"``,
  ``"harvard_oxford"``, ``"difumo"``) and parameters: the files in nilearn's data folder, fetched
  when online; offline and missing, :class:`AtlasNotAvailableError` names the files to provide.
* :func:`read_region_names` - region names of an atlas file from a lookup table.
* :class:`FmriSpace` - what a stored fMRI output's features are (voxels of a mask, regions of an
  atlas, vertices of a mesh, grayordinates of a CIFTI file), recorded with every stored run, and
  :meth:`FmriSpace.inverse_transform` - feature values back to a NIfTI image (nilearn maskers'
  ``inverse_transform``), a surface image or a CIFTI-2 dense scalar image.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ...validation import require

if TYPE_CHECKING:
    from .fmri import FmriExtractor

__all__ = [
    "check_atlas_fields",
    "TEMPLATE_MASKS",
    "NAMED_ATLASES",
    "AtlasNotAvailableError",
    "ResolvedAtlas",
    "FmriSpace",
    "template_mask",
    "resolve_atlas",
    "read_region_names",
    "space_meta",
    "stored_space",
]

#: template mask name -> nilearn loader (bundled with nilearn, no download)
TEMPLATE_MASKS: dict[str, str] = {
    "brain": "load_mni152_brain_mask",
    "gm": "load_mni152_gm_mask",
    "wm": "load_mni152_wm_mask",
}


class AtlasNotAvailableError(FileNotFoundError):
    """A named atlas (or mesh) is not in nilearn's data folder and cannot be downloaded."""


def template_mask(kind: str, target: Any) -> Any:
    """nilearn's bundled MNI152 ``kind`` mask (``brain``, ``gm``, ``wm``) on ``target``'s grid.

    ``resample_to_img(load_mni152_<kind>_mask(), target, interpolation="nearest")``.
    """
    from nilearn import datasets, image

    mask = getattr(datasets, TEMPLATE_MASKS[kind])()
    return image.resample_to_img(
        mask, image.index_img(target, 0) if len(target.shape) == 4 else target,
        interpolation="nearest", force_resample=True, copy_header=True,
    )  # fmt: skip


# -- named atlases ------------------------------------------------------------------------
def _schaefer_files(p: dict[str, Any]) -> list[str]:
    stem = f"Schaefer2018_{p['n_rois']}Parcels_{p['yeo_networks']}Networks_order"
    return [f"{stem}_FSLMNI152_{p['resolution_mm']}mm.nii.gz", f"{stem}.txt"]


def _harvard_oxford_files(p: dict[str, Any]) -> list[str]:
    name = str(p.get("atlas_name", ""))
    if p.get("symmetric_split"):
        name = name.replace("cort-max", "cortl-max")
    xml = (
        "HarvardOxford-Subcortical.xml"
        if name.startswith("sub-")
        else "HarvardOxford-Cortical-Lateralized.xml"
        if name.startswith("cortl")
        else "HarvardOxford-Cortical.xml"
    )
    return [f"data/atlases/HarvardOxford/HarvardOxford-{name}.nii.gz", f"data/atlases/{xml}"]


def _difumo_files(p: dict[str, Any]) -> list[str]:
    dim, res = p["dimension"], p["resolution_mm"]
    return [f"{dim}/{res}mm/maps.nii.gz", f"{dim}/labels_{dim}_dictionary.csv", "README.md"]


#: name -> (nilearn fetcher, its dataset folder, the files it reads from the parameters)
NAMED_ATLASES: dict[str, tuple[str, str, Callable[[dict[str, Any]], list[str]]]] = {
    "schaefer_2018": ("fetch_atlas_schaefer_2018", "schaefer_2018", _schaefer_files),
    "harvard_oxford": ("fetch_atlas_harvard_oxford", "fsl", _harvard_oxford_files),
    "difumo": ("fetch_atlas_difumo", "difumo_atlases", _difumo_files),
}


@dataclasses.dataclass(frozen=True)
class ResolvedAtlas:
    """An atlas image (path or image) with its kind and region names.

    ``names`` maps a label value to its name (labels atlases) or a map index to its name
    (probabilistic maps).
    """

    image: Any
    kind: Literal["labels", "maps"]
    names: dict[int, str]


def nilearn_data_dir(data_dir: Path | None) -> Path:
    """nilearn's data folder (``data_dir``, else ``$NILEARN_DATA``, else ``~/nilearn_data``)."""
    from nilearn.datasets import get_data_dirs

    return Path(get_data_dirs(str(data_dir) if data_dir is not None else None)[0])


def effective_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed with the fetcher's defaults (what names its files)."""
    from nilearn import datasets

    fetcher = getattr(datasets, NAMED_ATLASES[name][0])
    out = {
        k: p.default
        for k, p in inspect.signature(fetcher).parameters.items()
        if p.default is not inspect.Parameter.empty
        and k not in ("data_dir", "base_url", "resume", "verbose")
    }
    out.update(params)
    return out


def expected_atlas_files(name: str, params: dict[str, Any], data_dir: Path | None) -> list[Path]:
    """Where nilearn's fetcher looks for the atlas ``name``'s files."""
    _, dataset, files = NAMED_ATLASES[name]
    folder = nilearn_data_dir(data_dir) / dataset
    return [folder / f for f in files(effective_params(name, params))]


@functools.lru_cache(maxsize=16)
def _fetch(name: str, params: tuple[tuple[str, Any], ...], data_dir: str | None) -> Any:
    from nilearn import datasets

    fetcher = getattr(datasets, NAMED_ATLASES[name][0])
    return fetcher(**dict(params), data_dir=data_dir, verbose=0)


def resolve_atlas(name: str, params: dict[str, Any], data_dir: Path | None = None) -> ResolvedAtlas:
    """The atlas ``name`` through its nilearn fetcher (no download when its files are there).

    Raises
    ------
    AtlasNotAvailableError
        Its files are missing and cannot be downloaded; the message names them.
    """
    expected = expected_atlas_files(name, params, data_dir)
    try:
        atlas = _fetch(name, tuple(sorted(params.items())), str(data_dir) if data_dir else None)
    except Exception as err:  # nilearn raises requests/urllib errors of many kinds offline
        listed = "\n  ".join(str(p) for p in expected)
        raise AtlasNotAvailableError(
            f"atlas {name!r} ({effective_params(name, params)}) is not in nilearn's data folder "
            f"{nilearn_data_dir(data_dir)} and could not be downloaded ({type(err).__name__}). "
            f"Provide these files:\n  {listed}\n(nilearn.datasets.{NAMED_ATLASES[name][0]} writes "
            "them there on a machine with internet access; copy the folder), or give the image "
            "itself as FmriExtractor.atlas=<file>"
        ) from err
    kind: Literal["labels", "maps"] = (
        "maps" if getattr(atlas, "atlas_type", "") == "probabilistic" else "labels"
    )
    return ResolvedAtlas(image=atlas.maps, kind=kind, names=_fetched_names(atlas, kind))


def _fetched_names(atlas: Any, kind: str) -> dict[int, str]:
    import pandas as pd

    lut = getattr(atlas, "lut", None)
    if kind == "labels" and isinstance(lut, pd.DataFrame) and {"index", "name"} <= set(lut):
        return {int(i): str(n) for i, n in zip(lut["index"], lut["name"])}
    labels = atlas.labels
    if isinstance(labels, pd.DataFrame):
        column = next((c for c in labels.columns if "name" in str(c).lower()), labels.columns[-1])
        labels = labels[column].tolist()
    return {i: str(n) for i, n in enumerate(labels)}


def read_region_names(path: Path) -> dict[int, str]:
    """Region names from a lookup table: label value (or map index) -> name.

    A ``.tsv``/``.csv`` with ``index`` and ``name`` columns (BIDS ``dseg.tsv``, nilearn's
    lookup tables), or a text file with one name per line for the values 1, 2, ... (labels) in
    order.
    """
    import pandas as pd

    if path.suffix.lower() in (".tsv", ".csv"):
        table = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        if not {"index", "name"} <= set(table.columns):
            raise ValueError(
                f"{path}: a region lookup table needs 'index' and 'name' columns, got "
                f"{', '.join(map(str, table.columns))}"
            )
        return {int(i): str(n) for i, n in zip(table["index"], table["name"])}
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return {i + 1: name for i, name in enumerate(lines)}


# -- the way back -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FmriSpace:
    """What the features of a stored fMRI output are, and how to map values back to the brain.

    Attributes
    ----------
    kind
        ``"mask"`` (voxels), ``"atlas"`` (regions of a labels image), ``"maps"`` (components of
        a probabilistic atlas), ``"surface"`` (mesh vertices, left then right), ``"cifti"``
        (grayordinates, or parcels of a ``.dlabel.nii``).
    n_features
        Number of features of the run.
    mask, affine
        The voxels (boolean 3D array) and the grid's affine (``"mask"``).
    image
        The labels or maps image, a path or a nibabel image (``"atlas"``, ``"maps"``).
    regions, region_names
        Label value (atlas), map index (maps) or parcel key (CIFTI), and name of each feature.
    meshes
        ``{"left": mesh, "right": mesh}`` (``"surface"``; nilearn meshes or GIfTI paths).
    source, rows
        The CIFTI file the run came from and the grayordinates kept (``"cifti"``).
    labels
        The parcel key of each grayordinate (``"cifti"`` from a ``.dlabel.nii``), else None.
    """

    kind: Literal["mask", "atlas", "maps", "surface", "cifti"]
    n_features: int
    mask: np.ndarray | None = None
    affine: np.ndarray | None = None
    image: Any = None
    regions: tuple[int, ...] = ()
    region_names: tuple[str, ...] = ()
    meshes: dict[str, Any] | None = None
    source: str = ""
    rows: np.ndarray | None = None
    labels: np.ndarray | None = None

    def inverse_transform(self, values: np.ndarray) -> Any:
        """Feature values back in the source space.

        ``values`` is ``(n_features,)`` (one map) or ``(n_maps, n_features)``. Returns a 3D/4D
        ``Nifti1Image`` (``"mask"``, ``"atlas"``, ``"maps"``: nilearn's ``NiftiMasker``,
        ``NiftiLabelsMasker``, ``NiftiMapsMasker`` ``inverse_transform``), a nilearn
        ``SurfaceImage`` (``"surface"``; ``.data.to_filename`` writes GIfTI files) or a CIFTI-2
        dense scalar ``Cifti2Image`` (``"cifti"``).
        """
        values = np.asarray(values, dtype=np.float32)
        if values.shape[-1] != self.n_features:
            raise ValueError(
                f"FmriSpace.inverse_transform: values have {values.shape[-1]} features, the "
                f"{self.kind} space of this run has {self.n_features}"
            )
        if self.kind in ("mask", "atlas", "maps"):
            return self._volume(values)
        if self.kind == "surface":
            return self._surface(values)
        return self._cifti(values)

    def _volume(self, values: np.ndarray) -> Any:
        import nibabel as nib
        from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiMasker

        masker: Any
        if self.kind == "mask":
            assert self.mask is not None and self.affine is not None
            mask_img = nib.Nifti1Image(self.mask.astype(np.int8), self.affine)
            masker = NiftiMasker(mask_img=mask_img, reports=False).fit()
        elif self.kind == "atlas":
            masker = NiftiLabelsMasker(labels_img=self.image, reports=False).fit()
            fitted = [int(v) for k, v in masker.region_ids_.items() if k != "background"]
            if fitted != list(self.regions):  # regions missing from the run: put them back
                full = np.zeros(values.shape[:-1] + (len(fitted),), np.float32)
                full[..., [fitted.index(r) for r in self.regions]] = values
                values = full
        else:
            masker = NiftiMapsMasker(maps_img=self.image, reports=False).fit()
        return masker.inverse_transform(values)

    def _surface(self, values: np.ndarray) -> Any:
        from nilearn.surface import PolyMesh, SurfaceImage

        assert self.meshes is not None
        mesh = PolyMesh(left=self.meshes["left"], right=self.meshes["right"])
        n_left = mesh.parts["left"].n_vertices
        data = {"left": values[..., :n_left].T, "right": values[..., n_left:].T}
        return SurfaceImage(mesh=mesh, data=data)

    def _cifti(self, values: np.ndarray) -> Any:
        import nibabel as nib

        header = nib.load(self.source).header
        axis = header.get_axis(1)
        maps = np.atleast_2d(values)
        if self.labels is not None:  # parcels: each grayordinate takes its parcel's value
            lookup = {r: i for i, r in enumerate(self.regions)}
            idx = np.array([lookup.get(int(v), -1) for v in self.labels])
            dense = np.where(idx >= 0, maps[:, np.maximum(idx, 0)], 0.0)
            bm = axis
        else:
            assert self.rows is not None
            dense, bm = maps, axis[self.rows]
        scalars = nib.cifti2.ScalarAxis([f"map {i}" for i in range(len(maps))])
        return nib.Cifti2Image(dense.astype(np.float32), header=(scalars, bm))


def space_meta(space: FmriSpace) -> dict[str, Any]:
    """The JSON-able part of a space, stored in the run's metadata (arrays go apart)."""
    image = space.image if isinstance(space.image, str | Path | type(None)) else None
    meshes = None
    if space.meshes is not None:
        meshes = {k: str(v) if isinstance(v, str | Path) else None for k, v in space.meshes.items()}
    return {
        "kind": space.kind,
        "n_features": space.n_features,
        "affine": None if space.affine is None else np.asarray(space.affine).tolist(),
        "image": None if image is None else str(image),
        "regions": list(space.regions),
        "region_names": list(space.region_names),
        "meshes": meshes,
        "source": space.source,
    }


def stored_space(meta: dict[str, Any], arrays: dict[str, np.ndarray], ex: Any) -> FmriSpace:
    """The :class:`FmriSpace` recorded with a stored run (``meta["space"]`` and its arrays).

    What the metadata cannot hold (a named atlas's image, in-memory meshes) comes from the
    extractor ``ex`` again (:meth:`resolved_atlas`, :meth:`meshes`).
    """
    n, names = int(meta["n_features"]), tuple(meta["region_names"])
    kind = meta["kind"]
    if kind == "mask":
        mask, affine = np.asarray(arrays["mask"]), np.asarray(meta["affine"])
        return FmriSpace("mask", n, mask=mask, affine=affine)
    regions = tuple(int(r) for r in meta["regions"])
    if kind in ("atlas", "maps"):
        image = meta["image"] or ex.resolved_atlas().image
        return FmriSpace(kind, n, image=image, regions=regions, region_names=names)
    if kind == "surface":
        meshes = ex.meshes()
        return FmriSpace("surface", n, meshes={h: meshes[h][0] for h in ("left", "right")})
    rows = np.asarray(arrays["cifti_rows"]) if "cifti_rows" in arrays else None
    labels = np.asarray(arrays["cifti_labels"]) if "cifti_labels" in arrays else None
    return FmriSpace(
        "cifti", n, regions=regions, region_names=names, source=meta["source"], rows=rows,
        labels=labels,
    )  # fmt: skip


def check_atlas_fields(ex: FmriExtractor) -> None:
    """The atlas fields of an fMRI extractor (run by its ``_check``): a file or a named atlas, as the projection needs."""
    uses_atlas = ex.projection in ("atlas", "maps")
    require(
        not uses_atlas or (ex.atlas is None) != (ex.atlas_name is None),
        ex,
        "atlas",
        f"projection={ex.projection!r} needs a labels image path in atlas or a nilearn "
        f"atlas name in atlas_name (one of them), got atlas={ex.atlas}, "
        f"atlas_name={ex.atlas_name!r}",
    )
    for field in ("atlas", "atlas_name"):
        require(
            uses_atlas or getattr(ex, field) is None,
            ex,
            field,
            f"only used with projection='atlas' or 'maps', got {field}="
            f"{getattr(ex, field)} with projection={ex.projection!r}; set projection or "
            f"{field}=None",
        )
    require(
        not ex.atlas_params or ex.atlas_name is not None,
        ex,
        "atlas_params",
        f"only used with atlas_name, got {ex.atlas_params}",
    )
    require(
        ex.region_names is None or ex.atlas is not None,
        ex,
        "region_names",
        f"names the regions of an atlas file, got no atlas file ({ex.region_names})",
    )
    if ex.atlas_name is None:
        return
    require(
        ex.atlas_name in NAMED_ATLASES,
        ex,
        "atlas_name",
        f"unknown atlas {ex.atlas_name!r}; known: {', '.join(NAMED_ATLASES)} (or give the "
        "image file as atlas=...)",
    )
    probabilistic = ex.atlas_name == "difumo" or (
        ex.atlas_name == "harvard_oxford" and "prob" in str(ex.atlas_params.get("atlas_name", ""))
    )
    wanted = "maps" if probabilistic else "atlas"
    require(
        ex.projection == wanted,
        ex,
        "projection",
        f"atlas {ex.atlas_name!r} {'is probabilistic' if probabilistic else 'has labels'}; "
        f"use projection={wanted!r}",
    )
