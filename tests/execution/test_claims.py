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


def _claim_in_child(root: str, keys: list[str]) -> None:
    claims = Claims(root, owner="dead", ttl=300)
    claims.register()
    claims.acquire(keys)


def test_claims_of_an_exited_process_are_taken_over_at_once(tmp_path: Path) -> None:
    """pid + process start time + host: a claimant that exited (``kill -9``, a crash) leaves
    claims that are taken over without waiting for the 300 s ttl."""
    proc = multiprocessing.get_context("spawn").Process(
        target=_claim_in_child, args=(str(tmp_path), ["k1", "k2"])
    )
    proc.start()
    proc.join()
    assert (tmp_path / "holders" / "dead").is_dir()  # its holder file is left behind
    b = Claims(tmp_path, owner="b", ttl=300)
    assert not b.is_live("k1")
    assert b.acquire(["k1", "k2"]) == ["k1", "k2"]
    assert b.taken_over == {"dead": 2}
    b.forget_dead()
    assert not (tmp_path / "holders" / "dead").exists()


def test_a_live_process_keeps_its_claims(tmp_path: Path) -> None:
    a = Claims(tmp_path, owner="a", ttl=300)
    a.register()  # this process: alive
    a.acquire(["k1"])
    b = Claims(tmp_path, owner="b", ttl=300)
    assert b.is_live("k1") and b.acquire(["k1"]) == []


def test_a_reused_pid_is_not_the_claimant(tmp_path: Path) -> None:
    """A holder whose pid now belongs to another process (other start time) is dead."""
    import json

    from neuralset.execution.claims import _HOST

    a = Claims(tmp_path, owner="a", ttl=300)
    a.acquire(["k1"])
    holder = a.holder_path(pid=os.getpid())
    holder.parent.mkdir(parents=True)
    holder.write_text(json.dumps({"host": _HOST, "pid": os.getpid(), "start": "1"}))
    assert Claims(tmp_path, owner="b", ttl=300).acquire(["k1"]) == ["k1"]


def test_a_holder_on_another_host_is_live_while_its_heartbeat_is_fresh(tmp_path: Path) -> None:
    import json

    a = Claims(tmp_path, owner="a", ttl=60)
    a.acquire(["k1"])
    holder = tmp_path / "holders" / "a" / "elsewhere-123.json"
    holder.parent.mkdir(parents=True)
    holder.write_text(json.dumps({"host": "elsewhere", "pid": 123, "start": "9"}))
    b = Claims(tmp_path, owner="b", ttl=60)
    assert b.acquire(["k1"]) == []  # another machine: its processes cannot be asked
    old = time.time() - 120
    os.utime(holder, (old, old))  # no heartbeat for 2 ttl
    b._dead.clear()
    assert b.acquire(["k1"]) == ["k1"]
