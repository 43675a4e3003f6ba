"""A local metadata mirror of a remote BIDS dataset: explore over HTTP(S) before downloading.

:func:`mirror_metadata` lists a dataset served over HTTP(S) (an S3 bucket such as OpenNeuro's, or
a web folder; see :mod:`~neuralset.studies.fetch.listing`) and builds a local tree that
:class:`~neuralset.studies.bids.BidsStudy` reads like any other:

* the small text files are downloaded (see :func:`is_metadata`: ``dataset_description.json``,
  ``participants.tsv``, every ``.json`` sidecar and ``.tsv`` table: ``_events``, ``_scans``,
  ``_channels``..., top-level ``README`` / ``CHANGES``);
* every other file (recordings, images, stimuli) becomes a *placeholder*: a git-annex pointer file
  in its unlocked form, ``/annex/objects/<key>``, whose key carries the size from the listing and,
  when the listing gives the content's MD5 (S3), the checksum (``MD5E-s<size>--<md5>.<ext>``;
  ``WORM-s<size>--<name>`` otherwise). So the data events get ``file_present = False`` and
  ``file_size`` from the listing (:mod:`~neuralset.studies.file_state`), and
  :meth:`Study.fetch <neuralset.studies.base.Study.fetch>` downloads exactly the selected
  recordings over HTTP(S) with the existing backend (:mod:`~neuralset.studies.fetch.http`:
  resumed, checked against the size and the MD5 when known), replacing each placeholder;
* ``.neuralset-mirror.json`` at the top records the remote (where :func:`mirror_source` tells
  the fetch to download from) and whether the mirror is complete.

Every file is written to a hidden temporary sibling, then renamed: a killed mirror leaves no
half-written file visible, only the record saying it is incomplete (discovery then refuses the
tree, naming the fix); running it again resumes: files already there with the listed size (and
MD5) are kept, fetched recordings too. Index pages give neither, so a web-folder mirror keeps
every metadata file it has (delete the mirror to refresh it).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import FetchError
from .listing import Listing, RemoteFile, head_size, open_listing, request

__all__ = [
    "MIRROR_FILE",
    "MirrorReport",
    "mirror_metadata",
    "is_metadata",
    "mirror_info",
    "mirror_source",
    "check_mirror",
    "placeholder",
]

#: the record of a mirror, at its top
MIRROR_FILE = ".neuralset-mirror.json"
_TEXT_SUFFIXES = (".json", ".tsv", ".bval", ".bvec")
_TOP_TEXT = {"README", "README.md", "README.txt", "README.rst", "CHANGES", "LICENSE"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def is_metadata(path: str) -> bool:
    """Whether a dataset file is metadata the mirror downloads (the rest become placeholders).

    Examples
    --------
    >>> is_metadata("sub-01/eeg/sub-01_task-a_events.tsv"), is_metadata("README")
    (True, True)
    >>> is_metadata("sub-01/eeg/sub-01_task-a_eeg.vhdr"), is_metadata("sub-01/x_physio.tsv.gz")
    (False, False)
    """
    return path.endswith(_TEXT_SUFFIXES) or ("/" not in path and path in _TOP_TEXT)


def placeholder(item: RemoteFile) -> str:
    """The unlocked git-annex pointer written for a file not downloaded (see the module doc)."""
    name = item.path.rsplit("/", 1)[-1]
    if item.md5 is not None:
        ext = ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]
        key = f"MD5E-s{item.size}--{item.md5}{_UNSAFE.sub('_', ext)}"
    else:
        key = f"WORM-s{item.size}--{_UNSAFE.sub('_', name)}"
    return f"/annex/objects/{key}\n"


@dataclasses.dataclass(frozen=True)
class MirrorReport:
    """What :func:`mirror_metadata` did."""

    remote: str
    root: Path
    metadata_files: int
    metadata_downloaded: int
    placeholders: int
    remote_bytes: int  # the size of the files left remote (the recordings not fetched)

    def __str__(self) -> str:
        from .plan import format_bytes

        return (
            f"mirrored {self.remote} into {self.root}: {self.metadata_files} metadata files "
            f"({self.metadata_downloaded} downloaded, the rest already there), "
            f"{self.placeholders} data files left remote ({format_bytes(self.remote_bytes)})"
        )


def mirror_info(root: str | Path) -> dict[str, Any] | None:
    """The record of the mirror at ``root`` (None when ``root`` is not a mirror)."""
    path = Path(root) / MIRROR_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise FetchError(
            f"unreadable mirror record {path} ({err}); delete it and mirror again"
        ) from None
    return info if isinstance(info, dict) else None


def mirror_source(root: str | Path) -> str:
    """The URL prefix the mirror at ``root`` downloads its files from ("" when not a mirror)."""
    info = mirror_info(root)
    return str(info.get("files_url", "")) if info else ""


def check_mirror(root: str | Path, remote: str = "") -> None:
    """Raise :class:`FetchError` when ``root`` is an incomplete mirror, or one of another remote.

    With ``remote``, also when ``root`` is not a mirror yet. Run by ``BidsStudy`` discovery.
    """
    info = mirror_info(root)
    if info is None:
        if remote:
            raise FetchError(
                f"the metadata of {remote} is not mirrored in {root} yet: call study.events() "
                f"(it mirrors first), or mirror_metadata({remote!r}, {str(root)!r}), or run "
                f"`neuralset mirror {remote} {root}`"
            )
        return
    if remote and info.get("remote") != remote:
        raise FetchError(
            f"{root} mirrors {info.get('remote')}, not {remote}: use another path for this remote"
        )
    if not info.get("complete"):
        raise FetchError(
            f"the metadata mirror of {info.get('remote')} in {root} is incomplete (interrupted?): "
            f"run mirror_metadata({info.get('remote')!r}, {str(root)!r}) or `neuralset mirror "
            f"{info.get('remote')} {root}` again; it resumes"
        )


def mirror_metadata(
    remote: str,
    root: str | Path,
    *,
    listing: str | Listing = "auto",
    jobs: int = 8,
    timeout: float = 60.0,
) -> MirrorReport:
    """Mirror the metadata of the dataset at ``remote`` into ``root`` (see the module docstring).

    Parameters
    ----------
    remote
        The dataset's top folder: ``s3://openneuro.org/ds000117``, an S3 path-style
        ``https://host/bucket/prefix``, or a web folder ``https://host/path/`` whose index pages
        list its files.
    root
        The local mirror (created when missing).
    listing
        ``"auto"``, ``"s3"`` or ``"http-index"`` (see
        :func:`~neuralset.studies.fetch.listing.open_listing`), or a listing object (e.g.
        ``S3Listing(url, max_keys=100)``).
    jobs
        Parallel requests.
    timeout
        Seconds per request.

    Raises
    ------
    FetchError
        The remote cannot be listed (naming the URL and the fix), holds no
        ``dataset_description.json`` at its top, or a file cannot be downloaded; what was
        written stays, and running again resumes.
    """
    root = Path(root)
    source = open_listing(remote, listing, timeout=timeout) if isinstance(listing, str) else listing
    info = mirror_info(root)
    if info is not None and info.get("remote") != remote:
        raise FetchError(f"{root} mirrors {info.get('remote')}, not {remote}: use another path")
    kind = listing if isinstance(listing, str) else type(listing).__name__
    record: dict[str, Any] = {
        "remote": remote,
        "listing": kind,
        "files_url": source.url,
        "complete": False,
    }
    root.mkdir(parents=True, exist_ok=True)
    _write(root / MIRROR_FILE, json.dumps(record, indent=1).encode())
    items = [f for f in source.files() if not any(p.startswith(".") for p in f.path.split("/"))]
    if not any(f.path == "dataset_description.json" for f in items):
        raise FetchError(
            f"{source.url} holds no dataset_description.json at its top ({len(items)} files "
            "listed): not the root of a BIDS dataset; check the URL (dataset id, prefix)"
        )
    meta = [f for f in items if is_metadata(f.path)]
    data = _with_sizes([f for f in items if not is_metadata(f.path)], jobs, timeout)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        downloaded = sum(pool.map(lambda f: _mirror_file(root, f, timeout), meta))
    for item in data:
        _place_holder(root, item)
    record.update(
        complete=True,
        files=len(items),
        updated=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _write(root / MIRROR_FILE, json.dumps(record, indent=1).encode())
    remote_bytes = sum(f.size or 0 for f in data)
    return MirrorReport(remote, root, len(meta), downloaded, len(data), remote_bytes)


def _with_sizes(items: list[RemoteFile], jobs: int, timeout: float) -> list[RemoteFile]:
    """The items with their sizes: asked with HEAD requests where the listing gives none."""
    unknown = [f for f in items if f.size is None]
    if not unknown:
        return items
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        sizes = dict(
            zip(
                (f.path for f in unknown),
                pool.map(lambda f: head_size(f.url, timeout=timeout), unknown),
            )
        )
    out = []
    for item in items:
        if item.size is None:
            size = sizes[item.path]
            if size is None:
                raise FetchError(
                    f"size of {item.url} unknown: the server sends no Content-Length; this "
                    "server cannot be mirrored (fetch its files another way)"
                )
            item = dataclasses.replace(item, size=size)
        out.append(item)
    return out


def _mirror_file(root: Path, item: RemoteFile, timeout: float) -> int:
    """Download one metadata file unless it is already there; 1 when downloaded."""
    path = root / item.path
    if path.is_file() and not path.is_symlink() and _same(path, item):
        return 0
    body = request(item.url, timeout=timeout, what=f"download of {item.path}")
    if item.size is not None and len(body) != item.size:
        raise FetchError(
            f"download of {item.url}: {len(body)} bytes instead of the listed {item.size}; "
            "mirror again"
        )
    if item.md5 is not None and hashlib.md5(body).hexdigest() != item.md5:
        raise FetchError(f"download of {item.url}: its MD5 differs from the listing; mirror again")
    _write(path, body)
    return 1


def _same(path: Path, item: RemoteFile) -> bool:
    """Whether the local copy is the listed file (files are only ever written whole, so a
    listing without size nor checksum, e.g. index pages, keeps what an earlier run wrote)."""
    if item.size is not None and path.stat().st_size != item.size:
        return False
    if item.md5 is not None:
        return hashlib.md5(path.read_bytes()).hexdigest() == item.md5
    return True


def _place_holder(root: Path, item: RemoteFile) -> None:
    """The placeholder of a data file, unless its content (the listed size) is already there."""
    from ..file_state import file_state

    path = root / item.path
    state = file_state(path)
    if state.present and state.size == item.size:
        return  # fetched earlier
    text = placeholder(item)
    if state.exists and not state.present and not path.is_symlink():
        try:
            if path.read_text() == text:
                return
        except (OSError, UnicodeDecodeError):
            pass
    _write(path, text.encode())


def _write(path: Path, data: bytes) -> None:
    """Write ``path`` through a hidden temporary sibling renamed into place (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.neuralset-tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
        if path.is_symlink():
            path.unlink()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
