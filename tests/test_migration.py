"""Store format 2: a store written by neuralset 0.1 is detected, migrated, and reads as before.

The fixture tests/data/legacy_store_v1/ is a store written by ``main`` at 53609a4 (format 1,
keys from module paths) with the study files it was prepared from (see its README).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuralset.cli import main
from neuralset.execution.records import ItemError, read_errors, write_error
from neuralset.extractors import LabelEncoder, MegExtractor, WordLength
from neuralset.hashing import legacy_keys
from neuralset.migration import finish_migration, migrate_store
from neuralset.pipeline import Pipeline
from neuralset.segments import segment_on_triggers
from neuralset.store import Store, StoreFormatError
from neuralset.store import migrate as store_migrate
from neuralset.synthetic import SyntheticStudy

FIXTURE = Path(__file__).resolve().parent / "data" / "legacy_store_v1"

#: The 14 entries of the fixture's index (13 belong to the pipeline at its new path; the
#: study's events entry was keyed with the path the fixture was written at).
STUDY_EVENTS_KEY = "b5ee566948c588b64af37a720e66c076"
MEG_KEY = "ac88ab5bc97f0754084de0c666ab4999"


def legacy_copy(tmp_path: Path) -> Path:
    """A copy of the fixture whose data files have their original modification times."""
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURE, root)
    for rel, ns in json.loads((root / "mtimes.json").read_text()).items():
        os.utime(root / rel, ns=(ns, ns))
    return root


def pipeline(root: Path) -> Pipeline:
    study = SyntheticStudy(
        path=root / "study",
        n_subjects=1,
        duration=6.0,
        meg_channels=2,
        meg_sfreq=100.0,
        eeg_channels=2,
        eeg_sfreq=100.0,
        modalities=("meg",),
    )
    extractors: dict[str, Any] = {
        "meg": MegExtractor(frequency=50.0),
        "label": LabelEncoder(event_type="Word", field="text"),
        "word_length": WordLength(frequency=50.0),
    }
    return Pipeline(study=study, extractors=extractors, store=root / "store")


def legacy_message(store: Path) -> str:
    return (
        f"store {store} was written by neuralset 0.1 (store format 1: keys named classes by "
        "module path) and this version reads format 2, whose keys name classes by kind; its "
        "entries would not be found and would be computed again. Run `neuralset cache migrate "
        f"CONFIG.yaml --store {store}` to re-key the entries each pipeline uses "
        "(neuralset.migrate_store in Python), or `neuralset cache clear --store "
        f"{store} --yes` to start afresh"
    )


def assert_reads_expected(root: Path, pipe: Pipeline) -> None:
    store = pipe.open_store()
    events = pipe.events(store)
    segments = segment_on_triggers(events, "Word", offset=0.0, duration=0.4).require("Meg")
    expected = np.load(root / "expected.npz")
    assert sorted(expected) == sorted(pipe.extractors)
    for name, extractor in pipe.extractors.items():
        data = extractor.read(segments, store).data
        assert data.dtype == expected[name].dtype and np.array_equal(data, expected[name]), name


def test_a_legacy_store_is_reported_never_recomputed(tmp_path: Path) -> None:
    root = legacy_copy(tmp_path)
    pipe = pipeline(root)
    store = Store(root / "store")
    message = legacy_message(root / "store")
    for call in (
        lambda: store.has(MEG_KEY),
        lambda: store.missing([MEG_KEY]),
        lambda: store.get_arrays(MEG_KEY),
        lambda: store.put_value("0" * 32, 1),
        lambda: pipe.events(store),
        lambda: pipe.extractors["meg"].prepare(pipe.study.events(None), store, progress=False),
    ):
        with pytest.raises(StoreFormatError) as info:
            call()
        assert str(info.value) == message
    assert not (root / "store" / "FORMAT").exists()
    # listing and describing still work, and nothing was added
    assert len(store.entries()) == 14
    assert store.info(MEG_KEY)["kind"] == "arrays"


def test_migrate_then_reads_equal_and_prepare_computes_nothing(tmp_path: Path) -> None:
    root = legacy_copy(tmp_path)
    pipe = pipeline(root)
    store = Store(root / "store")
    report = migrate_store(store, pipe)
    assert len(report.migrated) == 13 and report.already == 0
    assert report.absent == 1  # the study's events, never stored at this path
    assert [e.key for e in report.remaining] == [STUDY_EVENTS_KEY]
    assert not report.finished
    assert str(report).splitlines()[-1] == (
        "the store stays in format 1 (not readable) while legacy entries remain: migrate the "
        "other pipelines that use it, then run "
        f"`neuralset cache migrate --finish --store {root / 'store'}` to remove the rest"
    )
    with pytest.raises(StoreFormatError):  # not readable until finished
        pipe.events(store)
    done = finish_migration(store)
    assert done.finished and [e.key for e in done.dropped] == [STUDY_EVENTS_KEY]
    assert json.loads((root / "store" / "FORMAT").read_text()) == {"format": 2}
    assert_reads_expected(root, pipe)
    reports = pipe.prepare(progress=False)
    assert {name: r.computed for name, r in reports.items()} == {
        "meg": 0,
        "label": 0,
        "word_length": 0,
    }
    assert {name: r.cached for name, r in reports.items()} == {
        "meg": 1,
        "label": 1,
        "word_length": 11,
    }
    # the migrated entries say where they came from; the legacy array folder is gone
    new_meg = pipe.extractors["meg"].items(pipe.events(store))[0].key
    assert store.info(new_meg)["migrated_from"] == MEG_KEY
    assert not store.array_dir(MEG_KEY).exists()


def test_migrating_extractors_over_an_events_table(tmp_path: Path) -> None:
    root = legacy_copy(tmp_path)
    pipe = pipeline(root)
    events = pipe.study.events(None)
    report = migrate_store(root / "store", [pipe.extractors["meg"]], events)
    assert [label for _, _, label in report.migrated] == [str(root / "study/sub-01/sub-01_meg.fif")]
    assert len(report.remaining) == 13
    report = migrate_store(root / "store", pipe.extractors, events, finish=True)
    assert (len(report.migrated), report.already, report.finished) == (12, 1, True)
    assert_reads_expected(root, pipe)


def test_a_crash_mid_migration_leaves_a_usable_store_and_rerunning_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = legacy_copy(tmp_path)
    pipe = pipeline(root)
    store = Store(root / "store")
    real_move = store_migrate._move_entry
    calls = {"n": 0}

    def killed_after_commit(store: Store, index: Any, old: str, new: str, record: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the MEG arrays: linked into the new folder, not committed
            dst = store.array_dir(new)
            dst.mkdir(parents=True)
            os.link(store.array_dir(old) / "data.npy", dst / "data.npy")
            raise KeyboardInterrupt("killed after linking")
        real_move(store, index, old, new, record)

    monkeypatch.setattr(store_migrate, "_move_entry", killed_after_commit)
    with pytest.raises(KeyboardInterrupt):
        migrate_store(store, pipe)
    calls["n"] = 5  # rerun: killed again, this time between commit and deleting the old record

    def killed_before_delete(store: Store, index: Any, old: str, new: str, record: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 8:
            index.set(new, {**record, "migrated_from": old})
            raise KeyboardInterrupt("killed after commit")
        real_move(store, index, old, new, record)

    monkeypatch.setattr(store_migrate, "_move_entry", killed_before_delete)
    with pytest.raises(KeyboardInterrupt):
        migrate_store(store, pipe)
    # every entry is complete under its legacy key or its new key (or both)
    index = store._open_index(create=False)
    with legacy_keys():
        events = pipe.study.events(None)
        old_keys = [i.key for e in pipe.extractors.values() for i in e.items(events)]
    new_keys = [i.key for e in pipe.extractors.values() for i in e.items(events)]
    for old, new in zip(old_keys, new_keys):
        assert old in index or new in index
        for key in (old, new):
            if key in index and index[key]["kind"] == "arrays":
                assert np.load(store.array_dir(key) / "data.npy").shape == (300, 2)
    with pytest.raises(StoreFormatError):
        store.has(new_keys[0])
    monkeypatch.setattr(store_migrate, "_move_entry", real_move)
    report = migrate_store(store, pipe, finish=True)
    assert (len(report.migrated), report.already) == (10, 3)
    assert report.finished
    assert_reads_expected(root, pipe)
    assert not (root / "store" / "arrays" / MEG_KEY[:2] / MEG_KEY).exists()


def test_error_entries_follow_their_items(tmp_path: Path) -> None:
    root = legacy_copy(tmp_path)
    pipe = pipeline(root)
    store = Store(root / "store")
    events = pipe.study.events(None)
    with legacy_keys():
        old = pipe.extractors["meg"].items(events)[0].key
    new = pipe.extractors["meg"].items(events)[0].key
    write_error(store, ItemError(key=old, label="x", reason="error", error="boom"))
    migrate_store(store, pipe, finish=True)
    assert [e.key for e in read_errors(store)] == [new]


def test_cli_migrate_and_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = legacy_copy(tmp_path)
    config = root / "pipeline.yaml"
    config.write_text(pipeline(root).to_yaml())
    store = root / "store"
    assert main(["prepare", str(config), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"neuralset: error: {legacy_message(store)}\n"
    assert main(["cache", "migrate", str(config), "--store", str(store)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"store {store}: migrated 13 entries (0 already migrated, 1 not in the store)"
    assert out[-3:-1] == [
        "1 legacy entry remains (not used by the pipelines migrated so far):",
        f"  {STUDY_EVENTS_KEY}  value   events of SyntheticStudy",
    ]
    assert main(["cache", "--store", str(store), "migrate", "--finish"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"store {store}: migrated 0 entries (0 already migrated, 0 not in the store)",
        "removed 1 legacy entry no pipeline claimed:",
        f"  {STUDY_EVENTS_KEY}  value   events of SyntheticStudy",
        "the store is in format 2: ready",
    ]
    assert main(["prepare", str(config), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "meg: 1 items: 1 already stored, 0 computed, 0 failed (0.0 s)",
        "label: 1 items: 1 already stored, 0 computed, 0 failed (0.0 s)",
        "word_length: 11 items: 11 already stored, 0 computed, 0 failed (0.0 s)",
    ]
    assert main(["cache", "migrate"]) == 1


def test_clearing_a_legacy_store_opens_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = legacy_copy(tmp_path)
    store = root / "store"
    assert main(["cache", "clear", "--yes", "--store", str(store)]) == 0
    assert capsys.readouterr().out == "removed 14 entries\n"
    assert Store(store).has(MEG_KEY) is False
    assert json.loads((store / "FORMAT").read_text()) == {"format": 2}
