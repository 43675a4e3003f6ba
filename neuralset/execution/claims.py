"""Claims: which driver is computing which item, so that two drivers never compute it twice.

A claim is a file ``<store>/claims/<key[:2]>/<key>.claim`` created atomically with ``O_EXCL``
(exactly one process wins). It holds the owner (run id, host, pid) and stays *live* while its
modification time is younger than ``ttl`` seconds: the driver and the workers computing the
item refresh it (:meth:`Claims.refresh`) while they work. A claim left behind by a process that
died expires after ``ttl``; contenders take it over in turn (an ``O_EXCL`` lock file), checking
again that it is stale and replacing it atomically (``os.replace``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Claims", "ClaimHeartbeat"]


class Claims:
    """Claim files under ``root`` (usually ``store.root / "claims"``).

    Parameters
    ----------
    root
        Folder of the claim files (created on first claim).
    owner
        Identifier of this claimant (a driver run id).
    ttl
        Seconds after its last refresh when a claim is considered abandoned.

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

    def path(self, key: str) -> Path:
        """File of the claim on ``key``."""
        return self.root / key[:2] / f"{key}.claim"

    def _create(self, path: Path) -> bool:
        payload = json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
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

    def is_live(self, key: str, now: float | None = None) -> bool:
        """Whether someone holds a claim on ``key`` that has not expired."""
        try:
            mtime = os.stat(self.path(key)).st_mtime
        except FileNotFoundError:
            return False
        return (now if now is not None else time.time()) - mtime < self.ttl

    def owner_of(self, key: str) -> str | None:
        """Owner of the claim on ``key`` (``None`` if unclaimed or unreadable)."""
        try:
            return str(json.loads(self.path(key).read_text())["owner"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def acquire(self, keys: Iterable[str]) -> list[str]:
        """Claim ``keys``; return those now held by this owner (others hold the rest).

        Expired claims are taken over; a claim already held by this owner counts as acquired.
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
            if self._take_over(path):
                acquired.append(key)
        return acquired

    def _take_over(self, path: Path) -> bool:
        """Replace a stale claim; a ``.takeover`` lock file makes contenders take turns."""
        lock = path.with_name(path.name + ".takeover")
        if not self._create(lock):
            try:  # a contender that died while taking over leaves its lock behind
                if time.time() - os.stat(lock).st_mtime > self.ttl:
                    os.unlink(lock)
            except FileNotFoundError:
                pass
            return False
        try:
            try:
                if time.time() - os.stat(path).st_mtime < self.ttl:
                    return False  # refreshed or re-claimed meanwhile
            except FileNotFoundError:
                pass
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
            if not self._create(tmp):
                return False
            os.replace(tmp, path)
            return True
        finally:
            os.unlink(lock)

    def refresh(self, keys: Iterable[str]) -> None:
        """Extend the claims on ``keys`` (touch their files)."""
        for key in keys:
            try:
                os.utime(self.path(key))
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


class ClaimHeartbeat:
    """Background thread refreshing claims every ``ttl / 4`` seconds (context manager)."""

    def __init__(self, claims: Claims, keys: Iterable[str]) -> None:
        self.claims = claims
        self.keys = list(keys)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="neuralset-claims")

    def _run(self) -> None:
        period = max(self.claims.ttl / 4, 0.05)
        while not self._stop.wait(period):
            self.claims.refresh(self.keys)

    def __enter__(self) -> ClaimHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
