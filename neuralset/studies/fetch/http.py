"""The plain HTTP(S) backend: download files from a URL prefix that mirrors the dataset's tree.

OpenNeuro serves every file of every public dataset over HTTPS from its S3 bucket
(:func:`openneuro_url`: ``https://s3.amazonaws.com/openneuro.org/<dataset>/<path>``); any web
server holding a copy of a dataset works the same. Use it on a tree obtained without git-annex
(``git clone`` of a DataLad dataset, a copy of the metadata): the pointers of files not fetched
yet give their size and checksum.

Each download is written to a partial file under ``<root>/.neuralset-partial/`` (hidden, next to
the data, so the final move is atomic), resumed with an HTTP ``Range`` request when a partial file
exists, checked against the expected size and the checksum of the git-annex key when there is
one, and only then moved into place with ``os.replace``: onto the annex object a symlink points
to (the link then resolves, as after ``git annex get``), or over the pointer file. A corrupt
download is deleted and reported; nothing half-written is ever visible at the file's path.

This backend speaks plain HTTP with the standard library (``urllib``); it does not use the
``openneuro-py`` client, whose GraphQL listing is not needed once the tree is on disk.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .plan import NeededFile

__all__ = ["http_get", "openneuro_url", "PARTIAL_DIR"]

#: hidden folder under the study root holding partial downloads
PARTIAL_DIR = ".neuralset-partial"
_CHUNK = 1 << 20


def openneuro_url(dataset: str) -> str:
    """HTTPS prefix of an OpenNeuro dataset's files (latest snapshot), e.g. ``ds000117``."""
    return f"https://s3.amazonaws.com/openneuro.org/{dataset}"


def http_get(
    root: Path,
    base_url: str,
    files: list[NeededFile],
    *,
    on_bytes: Callable[[int], None] | None = None,
    jobs: int = 1,
    timeout: float = 60.0,
) -> dict[Path, str]:
    """Download ``files`` (relative to ``root``) from ``base_url``; path -> error for failures."""
    failures: dict[Path, str] = {}
    if jobs <= 1:
        for need in files:
            error = _download(root, base_url, need, on_bytes, timeout)
            if error:
                failures[need.path] = error
        return failures
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(
            pool.map(lambda n: (n.path, _download(root, base_url, n, on_bytes, timeout)), files)
        )
    return {path: err for path, err in results if err}


def _url(base_url: str, root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return base_url.rstrip("/") + "/" + urllib.parse.quote(rel)


def _partial(root: Path, path: Path) -> Path:
    rel = path.relative_to(root).as_posix()
    tag = hashlib.sha1(rel.encode()).hexdigest()[:16]
    return root / PARTIAL_DIR / f"{tag}-{path.name}.part"


def _download(
    root: Path,
    base_url: str,
    need: NeededFile,
    on_bytes: Callable[[int], None] | None,
    timeout: float,
) -> str:
    """Fetch one file; "" on success, else the reason."""
    try:
        path = need.path.absolute()
        url = _url(base_url, root.absolute(), path)
    except ValueError:
        return f"{need.path} is not under the study root {root}"
    partial = _partial(root.absolute(), path)
    partial.parent.mkdir(parents=True, exist_ok=True)
    expected = need.state.size
    have = partial.stat().st_size if partial.exists() else 0
    if expected is not None and have > expected:
        partial.unlink()
        have = 0
    if expected is None or have < expected:
        if have and on_bytes is not None:
            on_bytes(have)  # received by an earlier, interrupted fetch
        try:
            expected = _transfer(url, partial, have, expected, on_bytes, timeout)
        except urllib.error.HTTPError as err:
            return f"HTTP {err.code} {err.reason} for {url}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            return (
                f"download of {url} interrupted or impossible ({reason}); what was received is "
                "kept and the next fetch resumes it"
            )
    got = partial.stat().st_size
    if expected is not None and got != expected:
        partial.unlink()
        return f"corrupted download of {url}: {got} bytes instead of {expected}; fetch again"
    key = need.state.key
    if key is not None and key.hash_name is not None:
        digest = _digest(partial, key.hash_name)
        if digest != key.digest:
            partial.unlink()
            return (
                f"corrupted download of {url}: {key.hash_name} {digest} does not match the "
                f"git-annex key {key.key}; the file was discarded, fetch again (or check the URL)"
            )
    _place(need, partial)
    return ""


def _transfer(
    url: str,
    partial: Path,
    have: int,
    expected: int | None,
    on_bytes: Callable[[int], None] | None,
    timeout: float,
) -> int | None:
    """Append the rest of ``url`` to ``partial`` (Range from ``have``); the total size if known."""
    request = urllib.request.Request(url, headers={"User-Agent": "neuralset-fetch"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the partial file may be complete
            return expected if expected is not None else have
        raise
    with response:
        status = getattr(response, "status", 200)
        mode = "ab"
        if have and status != 206:  # the server ignored the Range request: start again
            mode, have = "wb", 0
        total = expected
        length = response.headers.get("Content-Length")
        if total is None and length is not None:
            total = have + int(length)
        with open(partial, mode) as out:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if length is not None and partial.stat().st_size < have + int(length):
            raise OSError(
                f"connection closed after {partial.stat().st_size} of {have + int(length)} bytes"
            )
    return total


def _digest(path: Path, name: str) -> str:
    digest = hashlib.new(name)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _place(need: NeededFile, partial: Path) -> None:
    """Move verified content to where ``need.path`` reads it (atomic on one filesystem)."""
    target = need.state.target() if need.state.pointer == "symlink" else None
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(partial, 0o444)  # annexed content is read-only, like git-annex leaves it
        _replace(partial, target)
        return
    need.path.parent.mkdir(parents=True, exist_ok=True)
    _replace(partial, need.path)


def _replace(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError:  # another filesystem: copy beside the destination, then rename
        tmp = dst.with_name(f".{dst.name}.neuralset-tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        src.unlink()
