"""The git-annex / DataLad backend: ``git annex get`` of exactly the files a selection needs.

A dataset installed with ``datalad install`` / ``datalad clone`` (or ``git clone`` + ``git annex
init``) holds pointers to annexed content; ``git annex get`` fetches the content from whichever
remote has it (another clone, a web URL such as OpenNeuro's S3 bucket, a special remote), resumes
an interrupted transfer from its partial file (kept under ``.git/annex/tmp``, never in the
dataset's tree), verifies the content against the key's checksum before moving it into place,
and does nothing for content already present. This module runs it with ``--json-progress`` to
drive a progress bar in bytes, and reports each failure with git-annex's own reason.

Needs the ``git-annex`` program (Debian/Ubuntu ``apt-get install git-annex``; conda-forge
``git-annex``); DataLad is not required to fetch (it drives the same ``git annex get``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from .errors import FetchError

__all__ = ["annex_get", "annex_root", "is_annex_repo", "INSTALL_HINT"]

INSTALL_HINT = (
    "install git-annex (Debian/Ubuntu: apt-get install git-annex; conda: "
    "conda install -c conda-forge git-annex), or fetch over HTTP(S) with "
    "source='https://...' (e.g. https://s3.amazonaws.com/openneuro.org/<dataset>)"
)


def annex_root(path: Path) -> Path | None:
    """The top folder of the git repository holding ``path`` when it uses git-annex, else None."""
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, *folder.parents):
        git = candidate / ".git"
        if git.is_dir():
            return candidate if (git / "annex").is_dir() or _annex_branch(git) else None
        if git.is_file():  # a worktree / submodule: ".git" names the real git dir
            return candidate
    return None


def _annex_branch(git: Path) -> bool:
    return (git / "refs" / "heads" / "git-annex").exists() or "git-annex" in _packed_refs(git)


def _packed_refs(git: Path) -> str:
    try:
        return (git / "packed-refs").read_text()
    except OSError:
        return ""


def is_annex_repo(path: Path) -> bool:
    """Whether ``path`` lies in a git-annex repository."""
    return annex_root(path) is not None


def annex_get(
    repo: Path,
    files: list[Path],
    *,
    on_bytes: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> dict[Path, str]:
    """``git annex get`` of ``files`` (absolute paths inside ``repo``); path -> error for failures.

    ``on_bytes(n)`` is called with each increment of transferred bytes (for a progress bar).
    Raises :class:`FetchError` when git-annex is not installed or cannot run at all.
    """
    exe = shutil.which("git-annex")
    if exe is None or shutil.which("git") is None:
        raise FetchError(
            f"cannot fetch {len(files)} files of the git-annex dataset {repo}: git-annex is not "
            f"installed; {INSTALL_HINT}"
        )
    rel = [os.path.relpath(f, repo) for f in files]
    cmd = ["git", "-C", str(repo), "annex", "get", "--json", "--json-progress",
           "--json-error-messages"]  # fmt: skip
    if jobs > 1:
        cmd.append(f"--jobs={jobs}")
    failures: dict[Path, str] = {}
    done: dict[str, int] = {}
    for start in range(0, len(rel), 500):  # keep command lines short
        chunk = rel[start : start + 500]
        proc = subprocess.Popen(
            [*cmd, "--", *chunk], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        seen = _read_records(proc, repo, failures, done, on_bytes)
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        code = proc.wait()
        if code != 0 and not failures and not seen:
            raise FetchError(
                f"git annex get failed in {repo} (exit {code}): {stderr.strip()[-2000:]}"
            )
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "not fetched"
        for name in chunk:
            if name not in seen and not (repo / name).exists() and repo / name not in failures:
                failures[repo / name] = last
    return failures


def _read_records(
    proc: subprocess.Popen,
    repo: Path,
    failures: dict[Path, str],
    done: dict[str, int],
    on_bytes: Callable[[int], None] | None,
) -> set[str]:
    """Follow git-annex's JSON records: progress, and the reasons of each failed file."""
    assert proc.stdout is not None
    seen: set[str] = set()
    messages: dict[str, list[str]] = {}
    for line in proc.stdout:
        record = _parse(line)
        if record is None:
            continue
        _progress(record, done, on_bytes)
        action = record.get("action")
        inner: dict = action if isinstance(action, dict) else record
        name = str(inner.get("file", ""))
        for where in (record, inner):  # verification errors come in the action records
            for m in where.get("error-messages", []) or []:
                if m.strip() and m.strip() not in messages.setdefault(name, []):
                    messages[name].append(m.strip())
        if "success" in record:
            seen.add(name)
            if not record["success"]:
                note = str(record.get("note", "")).strip().replace("\n", " ")
                reasons = messages.get(name, []) + ([note] if note else [])
                failures[repo / name] = "; ".join(reasons) or "git-annex get failed"
    return seen


def _parse(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _progress(record: dict, done: dict[str, int], on_bytes: Callable[[int], None] | None) -> None:
    """Turn git-annex's cumulative ``byte-progress`` per key into byte increments."""
    if on_bytes is None:
        return
    action = record.get("action")
    key = str((action or record).get("key", ""))
    if "byte-progress" in record:
        current = int(record["byte-progress"])
    elif record.get("success"):
        size = _key_size(key)
        current = size if size is not None else done.get(key, 0)
    else:
        return
    delta = current - done.get(key, 0)
    if delta > 0:
        on_bytes(delta)
        done[key] = current


def _key_size(key: str) -> int | None:
    from ..file_state import parse_annex_key

    parsed = parse_annex_key(key)
    return parsed.size if parsed else None
