"""Store failures surface as themselves: only a missing entry reads as "not prepared".

Each case damages a real store the way it happens in practice (a truncated copy, a file
deleted by hand, a folder without permissions, an entry cleared) and reads it back through a
recording extractor (MEG) and an event feature extractor storing series (speech envelope).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neuralset.extractors import MegExtractor, SpeechEnvelope
from neuralset.extractors.base import Extractor, ExtractorNotPreparedError
from neuralset.segments import segment_on_triggers
from neuralset.store import Store, StoreError
from neuralset.synthetic import SyntheticStudy

CASES = ["meg", "envelope"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SyntheticStudy:
    study = SyntheticStudy(
        path=tmp_path_factory.mktemp("failures") / "study",
        n_subjects=1,
        duration=6.0,
        meg_channels=2,
        meg_sfreq=100.0,
        modalities=("meg", "audio"),
    )
    study.build()
    return study


def prepared(case: str, study: SyntheticStudy, tmp_path: Path) -> tuple[Extractor, Any, Store]:
    """A freshly prepared (and read) store, the extractor, and segments not read yet."""
    store = Store(tmp_path / "store")
    events = study.events(None)
    if case == "meg":
        extractor: Extractor = MegExtractor(frequency=50.0)
        trigger = "Word"
    else:
        extractor = SpeechEnvelope(frequency=50.0)
        trigger = "Audio"
    extractor.prepare(events, store, progress=False)
    extractor.read(segment_on_triggers(events, trigger, offset=0.0, duration=0.2), store)
    # fresh segments (no values cached on their event index) for the read after the damage
    return extractor, segment_on_triggers(events, trigger, offset=0.0, duration=0.2), store


def array_file(extractor: Extractor, segments: Any, store: Store) -> tuple[str, Path]:
    items = extractor.items(segments.events)
    key = next(i.key for i in items if store.info(i.key)["kind"] == "arrays")
    return key, store.array_dir(key) / "data.npy"


def remedy(key: str, store: Store) -> str:
    return (
        f"remove the entry with `neuralset cache clear {key} --store {store.root}` "
        "and prepare again"
    )


@pytest.mark.parametrize("case", CASES)
def test_a_truncated_array_file_is_reported_as_damaged(
    case: str, study: SyntheticStudy, tmp_path: Path
) -> None:
    extractor, segments, store = prepared(case, study, tmp_path)
    key, path = array_file(extractor, segments, store)
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # a copy cut short
        fh.truncate(size // 2)
    with pytest.raises(StoreError) as info:
        type(extractor)(**_fields(extractor)).read(segments, store)
    message = str(info.value)
    assert message.startswith(f"array file {path} of entry {key} is damaged (")
    assert message.endswith(remedy(key, store))
    assert not isinstance(info.value, ExtractorNotPreparedError)


@pytest.mark.parametrize("case", CASES)
def test_a_deleted_array_file_is_reported_as_missing(
    case: str, study: SyntheticStudy, tmp_path: Path
) -> None:
    extractor, segments, store = prepared(case, study, tmp_path)
    key, path = array_file(extractor, segments, store)
    path.unlink()
    with pytest.raises(StoreError) as info:
        type(extractor)(**_fields(extractor)).read(segments, store)
    assert str(info.value) == (
        f"array file {path} of entry {key} is missing (deleted outside neuralset?); "
        f"{remedy(key, store)}"
    )


@pytest.mark.parametrize("case", CASES)
def test_an_unreadable_folder_raises_a_permission_error_naming_it(
    case: str, study: SyntheticStudy, tmp_path: Path
) -> None:
    extractor, segments, store = prepared(case, study, tmp_path)
    key, path = array_file(extractor, segments, store)
    folder = path.parent
    folder.chmod(0)
    try:
        with no_root_file_powers(), pytest.raises(PermissionError) as info:
            type(extractor)(**_fields(extractor)).read(segments, store)
    finally:
        folder.chmod(0o755)
    assert str(path) in str(info.value)
    assert info.value.filename == str(path)


@pytest.mark.parametrize("case", CASES)
def test_a_missing_entry_is_not_prepared(case: str, study: SyntheticStudy, tmp_path: Path) -> None:
    extractor, segments, store = prepared(case, study, tmp_path)
    key, _ = array_file(extractor, segments, store)
    store.delete(key)
    with pytest.raises(ExtractorNotPreparedError) as info:
        type(extractor)(**_fields(extractor)).read(segments, store)
    name = type(extractor).__name__
    what = "data" if case == "meg" else "features"
    assert str(info.value).startswith(f"{name} has no stored {what} for ")
    assert str(info.value).endswith("first")
    assert "call extractor.prepare(events, store)" in str(info.value)


def _fields(extractor: Extractor) -> dict[str, Any]:
    """The fields of ``extractor``, for a new instance (no per-instance or per-index cache)."""
    return {k: v for k, v in extractor.to_dict().items() if k != "kind"}


@contextlib.contextmanager
def no_root_file_powers() -> Iterator[None]:
    """Make permission bits apply to this process even when it runs as root.

    Root bypasses file permissions through the CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    capabilities; they are dropped from the effective set for the block, then restored.
    """
    if os.geteuid() != 0:
        yield
        return

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    saved = (Data * 2)()
    if libc.capget(ctypes.byref(header), saved) != 0:
        pytest.skip("cannot read this process's capabilities")
    dropped = (Data * 2)()
    ctypes.memmove(dropped, saved, ctypes.sizeof(saved))
    dropped[0].effective &= ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
    if libc.capset(ctypes.byref(header), dropped) != 0:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here")
    try:
        yield
    finally:
        libc.capset(ctypes.byref(header), saved)


def test_no_root_file_powers_really_denies(tmp_path: Path) -> None:
    secret = tmp_path / "d"
    secret.mkdir()
    (secret / "f").write_text("x")
    secret.chmod(0)
    try:
        with no_root_file_powers(), pytest.raises(PermissionError):
            (secret / "f").read_text()
    finally:
        secret.chmod(0o755)
    shutil.rmtree(secret)
