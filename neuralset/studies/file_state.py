"""What is on disk for a data file: present or not yet fetched, its expected size and checksum.

Datasets distributed with DataLad / git-annex (OpenNeuro, many labs) are installed metadata
first: text files are real, each large file is a *pointer* to annexed content that is fetched on
demand. A pointer takes one of three forms, all read here without git or git-annex:

* a symbolic link into ``.git/annex/objects/...`` (broken until the content is fetched);
* the same link target stored as the content of a small regular file (a checkout where symbolic
  links are not supported, or a copy that flattened them);
* an *unlocked* pointer file whose content is ``/annex/objects/<key>``.

The git-annex key in the target names the content: ``MD5E-s<size>--<md5>.<ext>`` (also
``SHA256E-s<size>--<sha256>.<ext>``, ``WORM-s<size>-m<mtime>--<name>``...), so the expected
size, and the checksum for hashing backends, are known before anything is downloaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "file_columns",
    "event_paths",
    "AnnexKey",
    "FileState",
    "parse_annex_key",
    "pointer_key",
    "file_state",
    "companion_files",
    "remembered_states",
]

_KEY = re.compile(
    r"^(?P<backend>[A-Z0-9]+?)(?P<ext>E?)-s(?P<size>\d+)(?:-[^-]*)*?--(?P<digest>[^.]+)(?P<suffix>.*)$"
)
#: a pointer file is never larger than this (a long annex path); bigger files are content
_POINTER_MAX = 1024
_SPLIT_ENTITY = re.compile(r"_split-(\d+)_")
_REMEMBERED: contextvars.ContextVar[dict[Path, FileState] | None] = contextvars.ContextVar(
    "remembered_file_states", default=None
)
_HASH_BACKENDS = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


@dataclasses.dataclass(frozen=True)
class AnnexKey:
    """A git-annex key: backend, size in bytes, content digest (hashing backends)."""

    key: str
    backend: str
    size: int
    digest: str | None

    @property
    def hash_name(self) -> str | None:
        """``hashlib`` name of the digest (``"md5"``...), or None for non-hashing backends."""
        return _HASH_BACKENDS.get(self.backend) if self.digest else None


def parse_annex_key(text: str) -> AnnexKey | None:
    """The git-annex key at the end of a pointer target (None when ``text`` holds no key).

    Examples
    --------
    >>> k = parse_annex_key("../../.git/annex/objects/5P/vW/MD5E-s86--6f39.fif/MD5E-s86--6f39.fif")
    >>> k.backend, k.size, k.digest
    ('MD5', 86, '6f39')
    """
    name = text.strip().rstrip("/").rsplit("/", 1)[-1]
    m = _KEY.match(name)
    if m is None:
        return None
    backend = m.group("backend")
    digest = m.group("digest") if backend in _HASH_BACKENDS else None
    return AnnexKey(key=name, backend=backend, size=int(m.group("size")), digest=digest)


@dataclasses.dataclass(frozen=True)
class FileState:
    """The state of a data file on disk.

    Attributes
    ----------
    path
        The file (as given).
    present
        Its content is on disk (a regular file, or a link that resolves).
    exists
        There is an entry at ``path`` (content or a pointer); False for a file nobody listed.
    size
        Size in bytes of the content: the file's own size when present, the annex key's
        otherwise; None when unknown.
    key
        The git-annex key when the file is annexed (present or not), else None.
    pointer
        How the absent content is referred to: ``"symlink"``, ``"pointer-file"`` (the link
        target as file content), ``"unlocked"`` (``/annex/objects/<key>``) or ``""``.
    """

    path: Path
    present: bool
    exists: bool
    size: int | None
    key: AnnexKey | None = None
    pointer: str = ""

    def target(self) -> Path | None:
        """Where fetched content must be written for ``path`` to resolve (symlinks only)."""
        if self.pointer != "symlink":
            return None
        return Path(os.path.normpath(self.path.parent / os.readlink(self.path)))


def pointer_key(text: str) -> AnnexKey | None:
    """The annex key of a git-annex pointer file's text (an unlocked file, or a link stored
    as a file), else None: one short line naming ``annex/objects/``."""
    text = text.strip()
    if len(text) > _POINTER_MAX or "\n" in text or "annex/objects/" not in text:
        return None
    return parse_annex_key(text)


def file_state(path: str | Path) -> FileState:
    """The :class:`FileState` of ``path`` (one ``lstat``, and a read of small files only).

    Inside :func:`remembered_states`, a path asked again gets the state found the first time.
    """
    path = path if isinstance(path, Path) else Path(path)
    memo = _REMEMBERED.get()
    if memo is not None:
        state = memo.get(path)
        if state is None:
            state = memo[path] = _file_state(path)
        return state
    return _file_state(path)


@contextlib.contextmanager
def remembered_states() -> Iterator[None]:
    """Within the block, :func:`file_state` looks at each path once (one events table built
    from the files, then their ``file_present`` / ``file_size`` columns, sees one state)."""
    token = _REMEMBERED.set({})
    try:
        yield
    finally:
        _REMEMBERED.reset(token)


def _file_state(path: Path) -> FileState:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return FileState(path, present=False, exists=False, size=None)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        key = parse_annex_key(target) if "annex/objects" in target else None
        try:
            size = os.stat(path).st_size  # follows the link
            return FileState(path, True, True, size, key)
        except OSError:
            return FileState(path, False, True, key.size if key else None, key, "symlink")
    if stat.S_ISDIR(st.st_mode):  # e.g. a CTF .ds folder: present when every file in it is
        states = [file_state(p) for p in sorted(path.rglob("*")) if not p.is_dir()]
        total = sum(s.size or 0 for s in states)
        return FileState(path, all(s.present for s in states), True, total)
    if st.st_size <= _POINTER_MAX:
        try:
            with open(path, "rb") as fh:
                head = fh.read(_POINTER_MAX).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            head = ""
        key = pointer_key(head)
        if key is not None:
            kind = "unlocked" if head.startswith("/annex/objects/") else "pointer-file"
            return FileState(path, False, True, key.size, key, kind)
    return FileState(path, True, True, st.st_size)


def companion_files(path: str | Path, listings: dict[Path, list[str]] | None = None) -> list[Path]:
    """Files that must be fetched with a recording for a reader to open it (not ``path`` itself).

    FIF splits (``_split-01_meg.fif`` -> every ``_split-NN`` sibling; ``raw.fif`` ->
    ``raw-1.fif``...), BrainVision data and marker files (named in the ``.vhdr`` when it is
    present, else the same stem), the EEGLAB ``.fdt`` of a ``.set``, and the files of a CTF
    ``.ds`` folder. Only entries that exist (content or pointer) are returned. ``listings``
    (folder -> names) saves listing a folder again for each of its recordings.
    """
    path = path if isinstance(path, Path) else Path(path)
    listings = listings if listings is not None else {}
    folder, name = path.parent, path.name
    out: list[Path] = []
    if name.endswith(".fif"):
        m = _SPLIT_ENTITY.search(name)
        if m:  # BIDS: <prefix>_split-NN_<suffix>
            head, tail = name[: m.start()] + "_split-", "_" + name[m.end() :]
            out = [
                folder / n
                for n in _listdir(folder, listings)
                if n != name and n.startswith(head) and n.endswith(tail)
                and n[len(head) : len(n) - len(tail)].isdigit()
            ]  # fmt: skip
        else:  # MNE: <stem>.fif, <stem>-1.fif, <stem>-2.fif...
            head = name[:-4] + "-"
            out = [
                folder / n
                for n in _listdir(folder, listings)
                if n.startswith(head) and n.endswith(".fif") and n[len(head) : -4].isdigit()
            ]
    elif name.endswith(".vhdr"):
        out = [folder / n for n in _vhdr_companions(path)]
    elif name.endswith(".set"):
        out = [path.with_suffix(".fdt")]
    elif name.endswith(".ds") and path.is_dir():
        out = [p for p in sorted(path.rglob("*")) if not p.is_dir()]
    return sorted({p for p in out if os.path.lexists(p)})


def _listdir(folder: Path, listings: dict[Path, list[str]]) -> Iterable[str]:
    if folder not in listings:
        try:
            listings[folder] = sorted(os.listdir(folder))
        except OSError:
            listings[folder] = []
    return listings[folder]


def _vhdr_companions(path: Path) -> list[str]:
    names = [path.with_suffix(".eeg").name, path.with_suffix(".vmrk").name]
    state = file_state(path)
    if not state.present:
        return names
    try:
        text = path.read_text(encoding="latin-1")
    except OSError:
        return names
    found = re.findall(r"^(?:DataFile|MarkerFile)=(.+?)\s*$", text, re.M)
    return [os.path.basename(n) for n in found] or names


def event_paths(events: pd.DataFrame, rows: np.ndarray | None = None) -> list[Path | None]:
    """Absolute path of each row's ``filepath`` (joined to ``study_root``); None without one."""
    if "filepath" not in events.columns:
        n = len(events) if rows is None else len(rows)
        return [None] * n
    idx = np.arange(len(events)) if rows is None else np.asarray(rows)
    paths = events["filepath"].to_numpy()[idx]
    roots = (
        events["study_root"].to_numpy()[idx]
        if "study_root" in events.columns
        else np.full(len(idx), None)
    )
    out: list[Path | None] = []
    root_paths: dict[str, Path] = {}
    for p, root in zip(paths, roots):
        if not isinstance(p, str) or not p:
            out.append(None)
        elif isinstance(root, str) and root and not os.path.isabs(p):
            base = root_paths.get(root)
            if base is None:
                base = root_paths[root] = Path(root)
            out.append(base / p)
        else:
            out.append(Path(p))
    return out


def file_columns(events: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``events`` with ``file_present`` (bool) and ``file_size`` (bytes, NaN unknown).

    A recording counts with its :func:`companion_files` (a BrainVision ``.vhdr`` is present
    when its ``.eeg`` and ``.vmrk`` are; its size is theirs together). Rows without a
    ``filepath`` get ``file_present = True`` (nothing to fetch) and a NaN size. One
    :func:`file_state` per distinct file (rows are grouped first: a stimulus shown a thousand
    times costs one ``lstat``).
    """
    present = np.ones(len(events), dtype=bool)
    size = np.full(len(events), np.nan)
    out = events.copy(deep=False)  # copy-on-write: the new columns never reach `events`
    if "filepath" not in events.columns or not len(events):
        out["file_present"], out["file_size"] = present, size
        return out
    rows = np.flatnonzero(events["filepath"].notna().to_numpy())
    keys = events["filepath"].astype(object).to_numpy()[rows]
    if "study_root" in events.columns and events["study_root"].nunique(dropna=False) > 1:
        roots = events["study_root"].astype(object).to_numpy()[rows]
        keys = np.array([f"{r}\0{k}" for r, k in zip(roots, keys)], dtype=object)
    codes, uniques = pd.factorize(keys)
    first = np.zeros(len(uniques), dtype=np.int64)
    first[codes[::-1]] = rows[::-1]  # the first row of each distinct file
    listings: dict[Path, list[str]] = {}
    u_present = np.ones(len(uniques), dtype=bool)
    u_size = np.full(len(uniques), np.nan)
    for u, path in enumerate(event_paths(events, first)):
        if path is None:
            continue
        states = [file_state(path)] + [file_state(c) for c in companion_files(path, listings)]
        sizes = [s.size for s in states]
        u_present[u] = all(s.present for s in states)
        if all(v is not None for v in sizes):
            u_size[u] = float(sum(v for v in sizes if v is not None))
    present[rows] = u_present[codes]
    size[rows] = u_size[codes]
    out["file_present"] = present
    out["file_size"] = size
    return out
