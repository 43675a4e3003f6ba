"""Claims: exclusive, expiring, taken over exactly once; concurrent processes never share one."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from neuralset.execution.claims import ClaimHeartbeat, Claims


def _acquire(root: str, owner: str, keys: list[str], ttl: float) -> list[str]:
    return Claims(root, owner=owner, ttl=ttl).acquire(keys)


def _age(claims: Claims, key: str, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(claims.path(key), (old, old))


def test_claims_are_exclusive_until_released(tmp_path: Path) -> None:
    a = Claims(tmp_path, owner="a")
    b = Claims(tmp_path, owner="b")
    assert a.acquire(["k1", "k2"]) == ["k1", "k2"]
    assert b.acquire(["k1", "k2", "k3"]) == ["k3"]
    assert a.acquire(["k1"]) == ["k1"]  # already ours
    assert a.owner_of("k1") == "a" and b.owner_of("k3") == "b" and a.owner_of("zz") is None
    b.release(["k1"])  # not b's: no effect
    assert a.is_live("k1")
    a.release(["k1"])
    assert not a.is_live("k1")
    assert b.acquire(["k1"]) == ["k1"]


def test_expired_claim_is_taken_over_and_refresh_keeps_it(tmp_path: Path) -> None:
    a = Claims(tmp_path, owner="a", ttl=60)
    b = Claims(tmp_path, owner="b", ttl=60)
    a.acquire(["k1", "k2"])
    _age(a, "k1", 120)
    _age(a, "k2", 120)
    a.refresh(["k2"])  # the holder is alive for k2
    assert not b.is_live("k1") and b.is_live("k2")
    assert b.acquire(["k1", "k2"]) == ["k1"]
    assert a.owner_of("k1") == "b"
    a.release(["k1"])  # a lost it: must not delete b's claim
    assert b.owner_of("k1") == "b"


def test_ttl_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Claims.ttl: must be > 0 seconds, got 0"):
        Claims(tmp_path, ttl=0)


def test_heartbeat_keeps_claims_alive(tmp_path: Path) -> None:
    a = Claims(tmp_path, owner="a", ttl=0.4)
    b = Claims(tmp_path, owner="b", ttl=0.4)
    a.acquire(["k"])
    with ClaimHeartbeat(a, ["k"]):
        time.sleep(1.0)
        assert b.acquire(["k"]) == []
    time.sleep(0.5)
    assert b.acquire(["k"]) == ["k"]


def test_concurrent_processes_claim_each_key_once(tmp_path: Path) -> None:
    keys = [f"{i:032x}" for i in range(300)]
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        results = list(
            pool.map(
                _acquire, [str(tmp_path)] * 4, "abcd", [keys[::-1], keys, keys[::2], keys], [60] * 4
            )
        )
    flat = [k for r in results for k in r]
    assert sorted(flat) == sorted(keys)  # every key claimed, none twice


def test_concurrent_takeover_of_a_stale_claim_has_one_winner(tmp_path: Path) -> None:
    keys = [f"{i:032x}" for i in range(50)]
    dead = Claims(tmp_path, owner="dead", ttl=60)
    dead.acquire(keys)
    for key in keys:
        _age(dead, key, 600)
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        results = list(pool.map(_acquire, [str(tmp_path)] * 4, "abcd", [keys] * 4, [60] * 4))
    flat = [k for r in results for k in r]
    assert sorted(flat) == sorted(keys)
    assert not list(Path(tmp_path).rglob("*.takeover")) and not list(Path(tmp_path).rglob("*.tmp"))
