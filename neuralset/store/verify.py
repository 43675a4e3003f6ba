"""``neuralset cache verify``: check every entry of a store against its index record.

For each committed entry: its index record can be read; each array file exists, has the size
written, and its header gives the shape and dtype of the record (``full``: every byte is read
and compared with the digest taken when it was written). Beside the entries, the check lists
what interrupted runs left behind: manifests not committed yet (the next ``prepare`` commits
them), array folders that no entry owns, temporary files of interrupted writes, and claims.

``fix`` removes the damaged entries (``prepare`` computes them again) and the leftovers that
no ``prepare`` can still use (temporary files, and folders that neither an entry nor a
pending manifest owns, older than ``grace`` seconds).
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import time
from pathlib import Path

from .errors import DamagedEntryError
from .files import content_problem, file_problem, header_problem
from .store import Store

__all__ = ["VerifyReport", "verify_store"]


@dataclasses.dataclass
class VerifyReport:
    """What :func:`verify_store` found.

    Attributes
    ----------
    entries
        Committed entries checked.
    files
        Array files checked.
    damaged
        ``{key: what is wrong}`` for entries that cannot be read back as written.
    pending
        Manifests of interrupted (or running) ``prepare`` runs, not committed yet.
    orphans
        Array folders that neither an entry nor a pending manifest owns (staged by a run
        that died before writing its manifest).
    leftovers
        Temporary files of interrupted writes.
    removed
        Entries and files removed (with ``fix``).
    """

    root: Path
    entries: int = 0
    files: int = 0
    damaged: dict[str, str] = dataclasses.field(default_factory=dict)
    pending: list[Path] = dataclasses.field(default_factory=list)
    orphans: list[Path] = dataclasses.field(default_factory=list)
    leftovers: list[Path] = dataclasses.field(default_factory=list)
    removed: int = 0

    @property
    def ok(self) -> bool:
        """Whether every entry reads back as written (leftovers are not damage)."""
        return not self.damaged

    def __str__(self) -> str:
        lines = [
            f"{self.entries} entries, {self.files} array files checked in {self.root}: "
            + ("all whole" if self.ok else f"{len(self.damaged)} damaged")
        ]
        for key, problem in list(self.damaged.items())[:20]:
            lines.append(f"  damaged {key}: {problem}")
        if len(self.damaged) > 20:
            lines.append(f"  ... and {len(self.damaged) - 20} more")
        if self.damaged and not self.removed:
            lines.append(
                f"  remove them with `neuralset cache verify --fix --store {self.root}` (or "
                f"`neuralset cache clear KEY --store {self.root}`); prepare computes them again"
            )
        for what, paths in (
            ("manifests of interrupted runs, committed by the next prepare", self.pending),
            ("array folders without an entry (staged, never committed)", self.orphans),
            ("temporary files of interrupted writes", self.leftovers),
        ):
            if paths:
                lines.append(f"  {len(paths)} {what}")
        if self.removed:
            lines.append(f"  removed {self.removed} damaged entries and leftovers")
        return "\n".join(lines)


def verify_store(
    store: Store, *, full: bool = False, fix: bool = False, grace: float = 3600.0
) -> VerifyReport:
    """Check every entry of ``store`` (see the module docstring).

    Parameters
    ----------
    store
        The store checked.
    full
        Read every byte of every array file (and compare it with its digest).
    fix
        Remove damaged entries and old leftovers (needs a writable store).
    grace
        Leftovers younger than this many seconds are kept (a ``prepare`` may be using them).
    """
    if fix:
        store.check_writable()
    report = VerifyReport(root=store.root)
    keys = set()
    for key in store.keys():
        keys.add(key)
        report.entries += 1
        problem = _entry_problem(store, key, full, report)
        if problem is not None:
            report.damaged[key] = problem
    _leftovers(store, keys, report)
    if fix:
        _fix(store, report, grace)
    return report


def _entry_problem(store: Store, key: str, full: bool, report: VerifyReport) -> str | None:
    try:
        record = store._record(key, check=False)
    except DamagedEntryError as err:
        return str(err)
    if record is None or record.get("kind") != "arrays":
        return None
    for name, spec in record["files"].items():
        report.files += 1
        path = store.array_dir(key) / f"{name}.npy"
        problem = content_problem(path, spec) if full else file_problem(path, spec)
        if problem is None and not full:
            problem = header_problem(path, spec)
        if problem is not None:
            return f"array file {path} {problem}"
    return None


def _leftovers(store: Store, keys: set[str], report: VerifyReport) -> None:
    manifests = store.root / "manifests"
    if manifests.exists():
        report.pending = sorted(manifests.glob("*/*.pkl"))
    arrays = store.root / "arrays"
    if not arrays.exists():
        return
    owned = keys | _staged_keys(report.pending)  # the next prepare commits those
    for folder in sorted(arrays.glob("*/*")):
        if folder.is_dir() and folder.name not in owned:
            report.orphans.append(folder)
        report.leftovers.extend(sorted(folder.glob(".*.tmp")))


def _staged_keys(manifests: list[Path]) -> set[str]:
    """The keys whose array files ``manifests`` list (entries ``(key, label, record, error)``)."""
    staged: set[str] = set()
    for path in manifests:
        try:
            with open(path, "rb") as fh:
                entries = pickle.load(fh)["entries"]
            staged.update(str(entry[0]) for entry in entries if entry[2] is not None)
        except Exception:  # unreadable: the next prepare sets it aside and computes its items
            continue
    return staged


def _fix(store: Store, report: VerifyReport, grace: float) -> None:
    for key in report.damaged:
        store.delete(key)
        report.removed += 1
    now = time.time()
    old = [p for p in report.orphans + report.leftovers if _age(p, now) > grace]
    for path in old:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        report.removed += 1


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return 0.0
