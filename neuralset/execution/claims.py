"""Claims: which driver is computing which item, so that two drivers never compute it twice.

A claim is a file ``<store>/claims/<key[:2]>/<key>.claim`` created atomically with ``O_EXCL``
(exactly one process wins). It holds the owner (a driver's run id) and the driver's host, pid
and process start time. It stays *live* while its modification time is younger than ``ttl``
seconds (the driver and the workers computing the item refresh it, :meth:`Claims.refresh`)
**and** its owner has a process alive.

Every process working for an owner (the driver, each local worker, each SLURM task) registers
itself as a *holder* of that owner, ``<store>/claims/holders/<owner>/<host>-<pid>.json``, and
refreshes that file while it works. An owner whose holders all ran on this machine and have
all exited (killed with ``kill -9``, interrupted, crashed) is dead: its claims are taken over
at once, without waiting for ``ttl``. A holder on another machine cannot be asked; its owner
stays live while the holder file is refreshed, and for ``ttl`` seconds after that.

Takeovers are serialised per claim by an ``O_EXCL`` lock file: the contender checks again that
the claim is stale or dead and replaces it atomically (``os.replace``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["Claims", "ClaimHeartbeat", "process_alive", "process_token"]

_HOST = socket.gethostname()


def _proc_stat(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (empty where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_token(pid: int) -> str:
    """What tells this process from a later one that reuses its pid: its start time in clock
    ticks since boot (Linux ``/proc``); ``""`` where unknown."""
    fields = _proc_stat(pid)
    return fields[19].decode() if len(fields) > 19 else ""


def process_alive(pid: int, token: str = "") -> bool:
    """Whether process ``pid`` of this machine runs (and is the one that had ``token``); a
    killed process not yet reaped by its parent (a zombie) has exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    fields = _proc_stat(pid)
    if not fields:
        return True
    if fields[0] in (b"Z", b"X"):
        return False
    return not token or len(fields) <= 19 or fields[19].decode() == token


class Claims:
    """Claim files under ``root`` (usually ``store.root / "claims"``).

    Parameters
    ----------
    root
        Folder of the claim files (created on first claim).
    owner
        Identifier of this claimant (a driver run id).
    ttl
        Seconds after its last refresh when a claim is considered abandoned (sooner when its
        owner's processes are known to have exited).

    Examples
    --------
    >>> import tempfile
    >>> a = Claims(tempfile.mkdtemp(), owner="a")
    >>> b = Claims(a.root, owner="b")
    >>> a.acquire(["k1", "k2"]), b.acquire(["k2", "k3"])
    (['k1', 'k2'], ['k3'])
    """

    def __init__(self, root: str | Path, owner: str | None = None, ttl: float = 300.0) -> None:
        if ttl <= 0:
            raise ValueError(f"Claims.ttl: must be > 0 seconds, got {ttl}")
        self.root = Path(root)
        self.owner = owner or uuid.uuid4().hex
        self.ttl = float(ttl)
        self._dead: dict[str, tuple[float, bool]] = {}  # owner -> (when judged, dead)
        #: owners whose claims this claimant took over because their processes had exited
        self.taken_over: dict[str, int] = {}

    def path(self, key: str) -> Path:
        """File of the claim on ``key``."""
        return self.root / key[:2] / f"{key}.claim"

    # -- holders -------------------------------------------------------------------------
    def holder_path(self, owner: str | None = None, pid: int | None = None) -> Path:
        """Holder file of process ``pid`` (default: this one) working for ``owner``."""
        pid = os.getpid() if pid is None else pid
        return self.root / "holders" / (owner or self.owner) / f"{_HOST}-{pid}.json"

    def register(self) -> bool:
        """Record this process as a holder of :attr:`owner` (see the module docstring); False
        when it already was."""
        path = self.holder_path()
        if path.exists():
            return False
        payload = {"host": _HOST, "pid": os.getpid(), "start": process_token(os.getpid())}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)
        return True

    def unregister(self) -> None:
        """Remove this process's holder file (and the owner's folder once empty)."""
        path = self.holder_path()
        try:
            path.unlink()
            path.parent.rmdir()
        except OSError:
            pass

    def owner_dead(self, owner: str, claim: dict[str, Any] | None = None) -> bool:
        """Whether every process of ``owner`` is known to have exited (judged at most once a
        second per owner). Holders on other machines are alive while their file is fresh."""
        seen = self._dead.get(owner)
        if seen is not None and time.time() - seen[0] < 1.0:
            return seen[1]
        dead = self._judge(owner, claim)
        self._dead[owner] = (time.time(), dead)
        return dead

    def _judge(self, owner: str, claim: dict[str, Any] | None) -> bool:
        folder = self.root / "holders" / owner
        holders: list[tuple[dict[str, Any], float]] = []
        try:
            for path in folder.glob("*.json"):
                try:
                    holders.append((json.loads(path.read_text()), path.stat().st_mtime))
                except (OSError, ValueError):
                    continue
        except OSError:
            pass
        if not holders and claim is not None:  # claims made before holders were recorded
            holders = [(claim, time.time())]
        if not holders:
            return False  # nothing known: the ttl decides
        now = time.time()
        for info, mtime in holders:
            if info.get("host") != _HOST:
                if now - mtime < self.ttl:
                    return False
            elif process_alive(int(info.get("pid", -1)), str(info.get("start", ""))):
                return False
        return True

    def _claim(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.path(key).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    # -- claims --------------------------------------------------------------------------
    def _create(self, path: Path) -> bool:
        payload = json.dumps(
            {
                "owner": self.owner,
                "host": _HOST,
                "pid": os.getpid(),
                "start": process_token(os.getpid()),
                "time": time.time(),
            }
        ).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return self._create(path)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
        return True

    def _dead_claim(self, key: str) -> str | None:
        """The owner of the claim on ``key`` when all its processes have exited, else None."""
        claim = self._claim(key)
        if claim is None or claim.get("owner") == self.owner:
            return None
        owner = str(claim.get("owner"))
        return owner if self.owner_dead(owner, claim) else None

    def is_live(self, key: str, now: float | None = None) -> bool:
        """Whether someone holds a claim on ``key`` that has not expired and whose owner has
        a process alive."""
        try:
            mtime = os.stat(self.path(key)).st_mtime
        except FileNotFoundError:
            return False
        if (now if now is not None else time.time()) - mtime >= self.ttl:
            return False
        return self._dead_claim(key) is None

    def owner_of(self, key: str) -> str | None:
        """Owner of the claim on ``key`` (``None`` if unclaimed or unreadable)."""
        claim = self._claim(key)
        return None if claim is None or "owner" not in claim else str(claim["owner"])

    def holder_of(self, key: str) -> str:
        """``"run R (host H, pid P)"`` of the claim on ``key``, for messages."""
        claim = self._claim(key) or {}
        return (
            f"run {claim.get('owner', '?')} (host {claim.get('host', '?')}, "
            f"pid {claim.get('pid', '?')})"
        )

    def acquire(self, keys: Iterable[str]) -> list[str]:
        """Claim ``keys``; return those now held by this owner (others hold the rest).

        Expired claims, and claims of an owner whose processes all exited, are taken over; a
        claim already held by this owner counts as acquired.
        """
        acquired = []
        now = time.time()
        for key in keys:
            path = self.path(key)
            if self._create(path):
                acquired.append(key)
                continue
            try:
                mtime = os.stat(path).st_mtime
            except FileNotFoundError:
                if self._create(path):
                    acquired.append(key)
                continue
            if now - mtime < self.ttl:
                if self.owner_of(key) == self.owner:
                    acquired.append(key)
                    continue
                dead = self._dead_claim(key)
                if dead is None:
                    continue
                if self._take_over(path):
                    self.taken_over[dead] = self.taken_over.get(dead, 0) + 1
                    acquired.append(key)
                continue
            if self._take_over(path):
                acquired.append(key)
        return acquired

    def _take_over(self, path: Path) -> bool:
        """Replace a stale or dead claim; a ``.takeover`` lock file makes contenders take turns."""
        lock = path.with_name(path.name + ".takeover")
        if not self._create(lock):
            try:  # a contender that died while taking over leaves its lock behind
                if time.time() - os.stat(lock).st_mtime > min(self.ttl, 10.0):
                    os.unlink(lock)
            except FileNotFoundError:
                pass
            return False
        try:
            try:
                fresh = time.time() - os.stat(path).st_mtime < self.ttl
            except FileNotFoundError:
                fresh = False
            if fresh and self._dead_claim(path.name[: -len(".claim")]) is None:
                return False  # refreshed or re-claimed meanwhile
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
            if not self._create(tmp):
                return False
            os.replace(tmp, path)
            return True
        finally:
            os.unlink(lock)

    def refresh(self, keys: Iterable[str]) -> None:
        """Extend the claims on ``keys`` (touch their files) and this process's holder file."""
        for path in [self.holder_path(), *(self.path(k) for k in keys)]:
            try:
                os.utime(path)
            except FileNotFoundError:
                pass

    def release(self, keys: Iterable[str]) -> None:
        """Drop the claims on ``keys`` held by this owner."""
        for key in keys:
            if self.owner_of(key) == self.owner:
                try:
                    os.unlink(self.path(key))
                except FileNotFoundError:
                    pass

    def forget_dead(self) -> None:
        """Remove the holder folders of the owners whose claims were taken over."""
        for owner in self.taken_over:
            shutil.rmtree(self.root / "holders" / owner, ignore_errors=True)


class ClaimHeartbeat:
    """Background thread refreshing claims every ``ttl / 4`` seconds (context manager).

    The process registers as a holder of the claims' owner while the block runs.
    """

    def __init__(self, claims: Claims, keys: Iterable[str]) -> None:
        self.claims = claims
        self.keys = list(keys)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="neuralset-claims")
        self._registered = False

    def _run(self) -> None:
        period = max(self.claims.ttl / 4, 0.05)
        while not self._stop.wait(period):
            self.claims.refresh(self.keys)

    def __enter__(self) -> ClaimHeartbeat:
        self._registered = self.claims.register()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._registered:  # not the driver's own file (inline: the same process)
            self.claims.unregister()
