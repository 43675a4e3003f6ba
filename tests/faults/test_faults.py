"""Fault injection: after each fault the store is consistent, nothing finished is lost, and a
rerun gives a clean run's arrays (scenarios in :mod:`tests.faults.scenarios`; the figure of
faults survived is printed by ``benchmarks/faults.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults import scenarios

_NO_USERNS = scenarios.userns_available()
needs_userns = pytest.mark.skipif(
    _NO_USERNS is not None and os.environ.get("CI") != "true",
    reason=f"a private mount namespace (unshare -rm) is needed: {_NO_USERNS}",
)


def _check(outcome: scenarios.Outcome) -> None:
    assert outcome["survived"], outcome


@pytest.mark.parametrize("mode", ["inline", "driver", "group"])
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_at_random_points_of_prepare(tmp_path: Path, seed: int, mode: str) -> None:
    outcome = scenarios.kill_during_prepare(tmp_path, seed, mode)
    _check(outcome)
    assert outcome["rerun_seconds"] < 60  # the dead run's claims are taken over at once
    notes = " ".join(outcome["rerun"]["notes"])
    if outcome["rerun"]["computed"] and outcome["injected"]:  # it says what it took over
        assert "took over" in notes or "recovered" in notes, outcome


@pytest.mark.parametrize("seed", [0, 1])
def test_ctrl_c_stops_every_worker_and_keeps_what_they_finished(tmp_path: Path, seed: int) -> None:
    outcome = scenarios.interrupt_during_prepare(tmp_path, seed)
    assert outcome["injected"], outcome  # the interrupt landed while prepare was running
    _check(outcome)
    assert outcome["stop_seconds"] < 10


@pytest.mark.parametrize("k", [2, 4])
def test_concurrent_preparers_compute_each_item_once(tmp_path: Path, k: int) -> None:
    _check(scenarios.concurrent_preparers(tmp_path, k))


@pytest.mark.parametrize("how", scenarios.DAMAGE)
def test_damaged_store_files_are_found_and_recomputed(tmp_path: Path, how: str) -> None:
    _check(scenarios.store_file_damage(tmp_path, how))


@pytest.mark.parametrize("content_hash", [False, True])
def test_recording_replaced_between_prepare_and_read(tmp_path: Path, content_hash: bool) -> None:
    _check(scenarios.recording_replaced(tmp_path, content_hash))


@needs_userns
def test_disk_full_names_the_path_and_keeps_what_was_stored(tmp_path: Path) -> None:
    outcome = scenarios.in_namespace("disk_full", str(tmp_path))
    _check(outcome)
    assert "No space left on device" in outcome["message"]
    assert f"free space on the disk of the store {tmp_path}/mnt/store" in outcome["message"]
    assert outcome["stored_before"] > 0


@needs_userns
def test_read_only_mount_reads_and_says_where_writes_fail(tmp_path: Path) -> None:
    outcome = scenarios.in_namespace("read_only", str(tmp_path))
    _check(outcome)
    ro = tmp_path / "ro"
    assert outcome["message"] == (
        f"store is read-only at {ro} (read-only file system: {ro}); reads work, but nothing "
        "can be prepared or removed there: prepare into a writable store (Store(path) or "
        "NEURALSET_CACHE), or ask whoever maintains this store to prepare what is missing"
    )
