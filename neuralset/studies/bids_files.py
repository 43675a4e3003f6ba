"""BIDS file-level helpers of :mod:`neuralset.studies.bids`: names, entities, sidecars, TSV files.

Everything here works from file names and small text files (sidecar JSON, TSV); the only binary
read is a NIfTI/GIfTI header (to count volumes).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Callable, Iterable
from itertools import combinations, repeat
from pathlib import Path

import numpy as np

from .columns import stack_columns

__all__ = [
    "BidsError",
    "DATATYPES",
    "RUN_ENTITIES",
    "Recording",
    "parse_entities",
    "stack_columns",
    "parse_numbers",
    "datatype_folders",
    "sibling_name",
    "raw_sibling",
    "inherited_jsons",
    "inherited_tsv",
    "tsv_candidates",
    "read_tsv",
    "text_present",
    "not_fetched",
    "is_pointer_text",
    "plain_tsv",
    "tsv_columns",
    "nifti_volumes",
    "space_label",
    "relative_path",
    "stim_type",
    "STIM_TYPES",
]


class BidsError(ValueError):
    """The BIDS dataset is malformed; the message names the file and the fix."""


#: datatype -> (suffix, accepted extensions, event type)
DATATYPES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "meg": ("meg", (".fif", ".ds", ".con", ".sqd"), "Meg"),
    "eeg": ("eeg", (".vhdr", ".edf", ".bdf", ".set"), "Eeg"),
    "ieeg": ("ieeg", (".vhdr", ".edf", ".set", ".nwb", ".mefd"), "Ieeg"),
    "emg": ("emg", (".vhdr", ".edf", ".bdf"), "Emg"),
    "nirs": ("nirs", (".snirf",), "Fnirs"),
    "func": ("bold", (".nii", ".nii.gz", ".func.gii"), "Fmri"),
}
#: entities that identify a run (and so a timeline), in BIDS order
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "proc")
_STIM_TYPES = {
    **{e: "Image" for e in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")},
    **{e: "Audio" for e in (".wav", ".flac", ".mp3", ".ogg")},
    **{e: "Video" for e in (".mp4", ".avi", ".mov", ".mkv", ".webm")},
}
#: stimulus file extension -> event type
STIM_TYPES = _STIM_TYPES
_ENTITY = re.compile(r"([a-zA-Z]+)-([a-zA-Z0-9]+)")


def parse_entities(name: str) -> tuple[dict[str, str], str, str]:
    """Entities, suffix and extension of a BIDS file name.

    Examples
    --------
    >>> parse_entities("sub-01_task-read_run-2_eeg.vhdr")
    ({'sub': '01', 'task': 'read', 'run': '2'}, 'eeg', '.vhdr')
    """
    stem, ext = name, ""
    for multi in (".nii.gz", ".func.gii", ".tsv.gz", ".dtseries.nii"):
        if name.endswith(multi):
            stem, ext = name[: -len(multi)], multi
            break
    else:
        dot = name.find(".")
        if dot >= 0:
            stem, ext = name[:dot], name[dot:]
    parts = stem.split("_")
    entities: dict[str, str] = {}
    suffix = ""
    for part in parts:
        m = _ENTITY.fullmatch(part)
        if m:
            entities[m.group(1)] = m.group(2)
        else:
            suffix = part
    return entities, suffix, ext


@dataclasses.dataclass(frozen=True)
class Recording:
    """A recording file found by discovery: its datatype, entities and timeline name."""

    path: Path
    datatype: str
    entities: dict[str, str]
    timeline: str


def parse_numbers(cells: list[str], path: Path, column: str) -> np.ndarray:
    """A TSV column of seconds as float64 (``n/a`` and empty cells -> NaN)."""
    try:
        return np.array(cells, dtype=np.float64)  # the fast path: every cell is a number
    except ValueError:
        pass
    try:
        return np.array([np.nan if c in ("n/a", "") else float(c) for c in cells], dtype=np.float64)
    except ValueError as err:
        raise BidsError(
            f"{path}: column {column!r} must hold numbers (seconds) or n/a: {err}"
        ) from None


def datatype_folders(
    root: Path, datatypes: set[str], subjects: tuple[str, ...]
) -> list[tuple[Path, str]]:
    out = []
    try:
        subs = sorted(
            (e for e in os.scandir(root) if e.name.startswith("sub-") and e.is_dir()),
            key=lambda e: e.name,
        )
    except OSError as err:
        raise BidsError(f"cannot list {root}: {err}") from None
    for sub in subs:
        if subjects and sub.name[4:] not in subjects:
            continue
        children = list(os.scandir(sub.path))
        folders = [(Path(sub.path), children)] + [
            (Path(e.path), None) for e in children if e.is_dir() and e.name.startswith("ses-")
        ]
        for folder, entries in folders:
            names = _lower_names(folder, entries)
            for dt in sorted(datatypes):
                candidate = folder / dt
                if (names is None or dt in names) and candidate.is_dir():
                    out.append((candidate, dt))
    return out


def _lower_names(folder: Path, entries: list[os.DirEntry[str]] | None) -> set[str] | None:
    """Lower-cased names in ``folder`` (a name missing is no folder on any file system), or None
    when the folder cannot be listed."""
    if entries is None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return None
    return {e.name.lower() for e in entries}


def sibling_name(rec: Recording, suffix: str, ext: str) -> str:
    ents = rec.entities
    if suffix in ("events", "channels"):
        drop = {"space", "desc", "res", "den", "hemi", "split"}
        if suffix == "events":
            drop |= {"rec", "echo", "part"}
        ents = {k: v for k, v in ents.items() if k not in drop}
    else:
        ents = {k: v for k, v in ents.items() if k != "split"}
    return "_".join(f"{k}-{v}" for k, v in ents.items()) + f"_{suffix}{ext}"


def raw_sibling(root: Path, rec: Recording, suffix: str, ext: str) -> Path:
    """Where a raw-data file of ``rec``'s run lives (under the BIDS root, not a derivative)."""
    ents = rec.entities
    folder = root / f"sub-{ents['sub']}"
    if "ses" in ents:
        folder = folder / f"ses-{ents['ses']}"
    return folder / rec.datatype / sibling_name(rec, suffix, ext)


def inherited_tsv(
    start: Path,
    root: Path,
    own_name: str,
    candidates: Callable[[Path, str], list[tuple[dict[str, str], str]]],
) -> Path | None:
    """The TSV file that applies to a file named ``own_name`` in ``start`` by the BIDS
    inheritance principle, when there is none of that name (None when none applies).

    The nearest folder from ``start`` up to ``root`` holding a ``*_<suffix>.tsv`` whose entities
    are all ``own_name``'s wins (a ``sub-01_task-read_events.tsv`` for every run of the task, a
    top-level ``task-read_events.tsv`` for every subject); two applicable files in one folder
    with as many entities are an error (BIDS allows one). ``candidates(folder, suffix)`` gives
    the entities and names of a folder's ``*_<suffix>.tsv`` files (:func:`tsv_candidates`).
    """
    own, suffix, _ = parse_entities(own_name)
    folder = start
    while True:
        hits = [
            (len(ents), name)
            for ents, name in candidates(folder, suffix)
            if ents.items() <= own.items()
        ]
        if hits:
            hits.sort(reverse=True)
            if len(hits) > 1 and hits[1][0] == hits[0][0]:
                raise BidsError(
                    f"two {suffix}.tsv files in {folder} apply to {own_name} by BIDS "
                    f"inheritance: {hits[0][1]} and {hits[1][1]}; name the runs in one of them "
                    "(BIDS allows one per folder)"
                )
            return folder / hits[0][1]
        if folder == root or folder.parent == folder or root not in folder.parents:
            return None
        folder = folder.parent


def tsv_candidates(names: Iterable[str], suffix: str) -> list[tuple[dict[str, str], str]]:
    """The entities and names of the ``*_<suffix>.tsv`` files among ``names``."""
    out = []
    for name in names:
        if name.startswith(".") or not name.endswith(f"_{suffix}.tsv"):
            continue
        ents, suf, ext = parse_entities(name)
        if suf == suffix and ext == ".tsv":
            out.append((ents, name))
    return out


def inherited_jsons(
    folder: Path,
    entities: dict[str, str],
    suffix: str,
    cache: dict[Path, dict[str, _Sidecars]] | None = None,
) -> list[Path]:
    """JSON files of ``folder`` that apply to a file with ``entities`` (fewest entities first).

    ``cache`` (folder -> suffix -> parsed JSON names) saves listing a folder again for each
    recording.
    """
    listing = cache.get(folder) if cache is not None else None
    if listing is None:
        try:
            names = [n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]
        except OSError:
            names = []
        listing = {}
        for name in names:
            ents, suf, ext = parse_entities(name)
            if ext == ".json":
                listing.setdefault(suf, _Sidecars()).append((ents, folder / name))
        if cache is not None:
            cache[folder] = listing
    candidates = listing.get(suffix, _Sidecars())
    if len(candidates) > 2 ** len(entities):  # many sidecars (one per run): look up subsets
        return [p for _, p in sorted(candidates.subset_hits(entities))]
    hits = [
        (len(ents), path)
        for ents, path in candidates
        if all(entities.get(k) == v for k, v in ents.items())
    ]
    return [p for _, p in sorted(hits)]


class _Sidecars(list[tuple[dict[str, str], Path]]):
    """The JSON files of one suffix in a folder; indexed by their entities on first need."""

    by_entities: dict[frozenset[tuple[str, str]], list[Path]] | None = None

    def subset_hits(self, entities: dict[str, str]) -> list[tuple[int, Path]]:
        """The files whose entities are all ``entities``' (each subset of them looked up)."""
        if self.by_entities is None:
            self.by_entities = {}
            for ents, path in self:
                self.by_entities.setdefault(frozenset(ents.items()), []).append(path)
        items = list(entities.items())
        return [
            (size, path)
            for size in range(len(items) + 1)
            for subset in combinations(items, size)
            for path in self.by_entities.get(frozenset(subset), ())
        ]


def text_present(path: Path) -> bool:
    """Whether a text file of the dataset (sidecar, TSV) is at ``path``, ready to read.

    Raises
    ------
    BidsError
        When ``path`` is a git-annex link whose content is not fetched (``datalad install``
        leaves text files that a dataset annexed so): the message names it and the fetch.
    """
    if path.is_file():
        return True
    if os.path.islink(path):  # a link that does not resolve: annexed content not fetched
        raise BidsError(not_fetched(path))
    return False


def not_fetched(path: Path | str) -> str:
    """The error message for a dataset text file whose git-annex content is not fetched."""
    return (
        f"{path} is a git-annex file whose content is not fetched (the dataset annexed this "
        f"text file); fetch it with `datalad get {path}` (or `git annex get`), then read the "
        "dataset again"
    )


def is_pointer_text(text: str) -> bool:
    """Whether a text file's content is a git-annex pointer (unlocked or flattened link)."""
    from .file_state import pointer_key

    return pointer_key(text) is not None


def read_tsv(path: Path) -> dict[str, list[str]]:
    """A TSV file as columns of strings (header row first; cells kept verbatim).

    Read as the ``csv`` module reads it (quotes, line ends), which the common file (no quote,
    no lone carriage return) is read without. A git-annex link or pointer whose content is not
    fetched is a :class:`BidsError` naming the fetch.
    """
    plain = plain_tsv(path)
    if (
        plain is not None
        and len(plain[0]) == 1
        and len(plain[1]) == 0
        and is_pointer_text(plain[0][0])
    ):
        raise BidsError(not_fetched(path))
    if plain is None and os.path.islink(path) and not path.exists():
        raise BidsError(not_fetched(path))
    return _read_csv_tsv(path) if plain is None else tsv_columns(*plain)


def tsv_header(path: Path) -> list[str]:
    """The column names of a TSV file (its first line; ``[]`` when unreadable)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return fh.readline().rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError):
        return []


def plain_tsv(path: Path) -> tuple[list[str], list[str]] | None:
    """Header and rows (text lines) of a TSV file the ``csv`` module would split at tabs and
    line ends alone, each row with as many cells as the header.

    None when that is not so (a quote, a lone carriage return, a NUL, an over-long field, no
    header, unequal rows, an unreadable file): :func:`read_tsv` reads it with ``csv`` and words
    the errors.
    """
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    if '"' in text or "\x00" in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines or not lines[0] or max(map(len, lines)) > csv.field_size_limit():
        return None
    header = [h.strip() for h in lines[0].split("\t")]
    body = lines[1:]
    if "" in body:
        body = [line for line in body if line]  # csv gives no cell for an empty line
    if body and set(map(str.count, body, repeat("\t"))) != {len(header) - 1}:
        return None
    return header, body


def tsv_columns(header: list[str], rows: list[str]) -> dict[str, list[str]]:
    """The columns of :func:`plain_tsv` rows (of one file, or several with that header)."""
    if not rows:
        return {name: [] for name in header}
    width = len(header)
    cells = "\t".join(rows).split("\t")
    return {name: cells[j::width] for j, name in enumerate(header)}


def _read_csv_tsv(path: Path) -> dict[str, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise BidsError(f"unreadable TSV file {path}: {err}") from None
    if not rows:
        raise BidsError(f"unreadable TSV file {path}: empty (a header row is required)")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    width = len(header)
    if body and set(map(len, body)) != {width}:
        bad = [i + 2 for i, r in enumerate(body) if len(r) != width]
        raise BidsError(f"unreadable TSV file {path}: lines {bad[:5]} do not have {width} columns")
    if not body:
        return {name: [] for name in header}
    return {name: list(col) for name, col in zip(header, zip(*body))}


def nifti_volumes(path: Path) -> tuple[int, float]:
    """Number of volumes and header TR (s) of a 4D NIfTI / GIfTI run (header only)."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as err:
        raise BidsError(f"unreadable fMRI file {path}: {err}") from None
    if path.name.endswith(".gii"):
        from .headers import gifti_dims

        return gifti_dims(img)[0], 0.0
    shape = img.shape
    if len(shape) != 4:
        raise BidsError(f"{path}: expected a 4D BOLD image, got shape {shape}")
    from .headers import nifti_tr

    return int(shape[3]), nifti_tr(img.header)[0]  # in seconds, whatever the header's unit


def space_label(entities: dict[str, str]) -> str:
    """The space label of an fMRI run: ``space`` plus ``res``/``den`` when given (``T1w``, ``MNI_res-2``)."""
    out = entities.get("space", "")
    for key in ("res", "den"):
        if key in entities:
            out += f"_{key}-{entities[key]}"
    return out


def relative_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def stim_type(value: str, path: Path, column: str) -> str:
    ext = os.path.splitext(value)[1].lower()
    if ext not in _STIM_TYPES:
        raise BidsError(
            f"{path}: cannot tell the stimulus type of {value!r} in column {column!r} from its extension; "
            f"map the column explicitly, e.g. stimulus_columns={{'{column}': 'Image'}}"
        )
    return _STIM_TYPES[ext]
