"""DataLad subdatasets: which are installed, which a study or a fetch needs, and installing them.

Large DataLad datasets are split into *subdatasets* (one per subject, ``sourcedata``,
``derivatives/<pipeline>``, ``stimuli``...), git submodules registered in the superdataset's
``.gitmodules``. ``datalad clone`` / ``datalad install`` of the superdataset leaves each one
*not installed*: an empty folder. Exploring such a tree would silently miss whole subjects, so
:class:`~neuralset.studies.bids.BidsStudy` asks :func:`uninstalled_error` first, and
:func:`~neuralset.studies.fetch.fetch` installs the subdatasets holding the files a selection
needs (:func:`install`: metadata only, ``datalad get -n``; ``git submodule update --init`` when
DataLad is not installed) before ``git annex get`` of those files in each of them.

Reads ``.gitmodules`` files directly (no git needed to list); installing needs git (and DataLad
or git-annex to fetch the content afterwards).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import FetchError

__all__ = [
    "Subdataset",
    "dataset_top",
    "subdatasets",
    "uninstalled_error",
    "install",
    "install_for",
]

_SECTION = re.compile(r'^\s*\[\s*submodule\s+"(?P<name>[^"]+)"\s*\]\s*$')
_VALUE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z0-9-]*)\s*=\s*(?P<value>.*?)\s*$")


@dataclasses.dataclass(frozen=True)
class Subdataset:
    """A subdataset registered in a ``.gitmodules``: where, from where, installed or not."""

    path: Path  # absolute
    url: str
    installed: bool
    parent: Path  # the dataset that registers it


def dataset_top(path: Path) -> Path | None:
    """The top folder of the git repository (dataset) holding ``path``, if any."""
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _installed(path: Path) -> bool:
    return (path / ".git").exists()


def _gitmodules(dataset: Path) -> list[Subdataset]:
    try:
        text = (dataset / ".gitmodules").read_text()
    except OSError:
        return []
    entries: list[dict[str, str]] = []
    for line in text.splitlines():
        if _SECTION.match(line):
            entries.append({})
        elif entries and (m := _VALUE.match(line)) is not None:
            entries[-1][m.group("key").lower()] = m.group("value").strip('"')
    out = []
    for entry in entries:
        if "path" in entry:
            path = dataset / entry["path"]
            out.append(Subdataset(path, entry.get("url", ""), _installed(path), dataset))
    return out


def subdatasets(root: Path, *, recursive: bool = True) -> list[Subdataset]:
    """The subdatasets registered under ``root``'s dataset (nested ones of installed ones too)."""
    top = dataset_top(Path(os.path.abspath(root)))
    if top is None:
        return []
    out: list[Subdataset] = []
    todo = [top]
    while todo:
        for sub in _gitmodules(todo.pop()):
            out.append(sub)
            if recursive and sub.installed:
                todo.append(sub.path)
    return sorted(out, key=lambda s: str(s.path))


def uninstalled_error(
    root: Path, wanted: Callable[[str], bool], *, fix_options: bool = True
) -> str:
    """The message naming the subdatasets under ``root`` that ``wanted`` and are not installed.

    ``wanted(relative_path)`` says whether the study reads a subdataset (paths relative to
    ``root``, ``/``-separated). Empty when nothing is missing.
    """
    root = Path(os.path.abspath(root))
    missing = []
    for sub in subdatasets(root):
        try:
            rel = sub.path.relative_to(root).as_posix()
        except ValueError:
            continue
        if not sub.installed and wanted(rel):
            missing.append(rel)
    if not missing:
        return ""
    shown = " ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
    options = (
        ", or pass subdatasets='install' to install them, or subdatasets='installed' to explore "
        "only the installed ones"
        if fix_options
        else ""
    )
    return (
        f"{len(missing)} DataLad subdatasets of {root} that this study reads are not installed "
        f"(empty folders): {shown}. Install them (metadata only, no recording is downloaded) "
        f"with `datalad get -n -d {root} {shown}` (Python: datalad.api.get(path=[...], "
        f"dataset={str(root)!r}, get_data=False)){options}"
    )


def install(paths: Iterable[Path]) -> list[Path]:
    """Install the subdatasets at ``paths`` (metadata only); the ones installed now.

    DataLad (``datalad.api.get(..., get_data=False)``, which also enables the annex remotes)
    when it imports, else ``git submodule update --init``. Raises :class:`FetchError` naming the
    subdataset, its URL and the reason.
    """
    todo = [p for p in paths if not _installed(p)]
    done = []
    for path in todo:
        top = dataset_top(path.parent)
        if top is None:
            raise FetchError(f"cannot install the subdataset {path}: no dataset above it")
        _install_one(top, path)
        done.append(path)
    return done


def _install_one(top: Path, path: Path) -> None:
    rel = os.path.relpath(path, top)
    try:
        import datalad.api as dl
    except ImportError:
        dl = None
    if dl is not None:
        results = dl.get(
            path=str(path), dataset=str(top), get_data=False, result_renderer="disabled",
            on_failure="ignore", return_type="list",
        )  # fmt: skip
        errors = [
            r.get("message", r) for r in results if r.get("status") in ("error", "impossible")
        ]
        if not _installed(path):
            raise FetchError(
                f"could not install the subdataset {rel} of {top}: "
                f"{errors or 'datalad get -n did nothing'}; check its URL in .gitmodules and the "
                "network, then fetch again"
            )
        return
    if shutil.which("git") is None:
        raise FetchError(f"cannot install the subdataset {rel} of {top}: git is not installed")
    proc = subprocess.run(
        ["git", "-C", str(top), "submodule", "update", "--init", "--", rel],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or not _installed(path):
        hint = "check its URL in .gitmodules and the network"
        if "transport 'file' not allowed" in proc.stderr:
            hint = (
                "git refuses submodules from local paths by default: allow them with "
                "`git config --global protocol.file.allow always`, or install DataLad"
            )
        raise FetchError(
            f"could not install the subdataset {rel} of {top} (git submodule update --init): "
            f"{proc.stderr.strip()[-1000:]}; {hint}"
        )


def install_for(root: Path, files: Iterable[Path]) -> list[Path]:
    """Install every (nested) subdataset that holds one of ``files``; the ones installed now."""
    files = [Path(os.path.abspath(f)) for f in files]
    done: list[Path] = []
    for _ in range(32):  # one level of nesting per round
        needed = {
            sub.path
            for sub in subdatasets(root)
            if not sub.installed and any(_under(f, sub.path) for f in files)
        }
        if not needed:
            return done
        done += install(sorted(needed))
    return done


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
