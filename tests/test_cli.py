"""The ``neuralset`` command line: prepare, inspect, cache, overrides and errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuralset.cli import main, parse_duration
from neuralset.pipeline import Pipeline

from .test_pipeline import write_config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    # a cheap extractor on the synthetic recordings: the CLI, not MNE, is under test here
    return write_config(folder, extractors={"raw": {"kind": "sleep", "batch_size": 1}})


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "2h", "7d", "1.5h")] == [
        90,
        90,
        900,
        7200,
        604800,
        5400,
    ]
    with pytest.raises(
        Exception, match=r"expected a duration such as 30s, 15m, 2h, 7d; got 'soon'"
    ):
        parse_duration("soon")


def test_prepare_inspect_and_cache(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Pipeline.from_yaml(config).study.build()  # the files (whether or not another test wrote them)
    assert main(["inspect", str(config), "--keys", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 items, 0 stored (0 B), 2 missing" in out and "... 1 more" in out
    assert (
        main(
            [
                "prepare",
                str(config),
                "--no-progress",
                "--executor.kind=local",
                "--executor.workers=2",
            ]
        )
        == 0
    )
    assert "raw: 2 items: 0 already stored, 2 computed, 0 failed" in capsys.readouterr().out
    assert main(["prepare", str(config), "--no-progress"]) == 0
    assert "raw: 2 items: 2 already stored, 0 computed" in capsys.readouterr().out
    pipeline = Pipeline.from_yaml(config)
    keys = [i.key for i in pipeline.extractors["raw"].items(pipeline.events())]
    assert main(["cache", "--config", str(config), "ls"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith(f"3 entries in {pipeline.open_store().root}")  # events + 2 recordings
    assert all(k in listing for k in keys) and "sub-01_meg.fif" in listing
    assert main(["cache", "--store", str(pipeline.open_store().root), "info", keys[0][:12]]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["key"] == keys[0] and info["kind"] == "arrays"
    assert info["provenance"]["config"]["kind"] == "sleep" and "versions" in info["provenance"]
    assert main(["cache", "--config", str(config), "info", "zzzz"]) == 1
    assert "no entry with key 'zzzz'" in capsys.readouterr().out
    assert main(["cache", "--config", str(config), "clear", "--older-than", "1h"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out
    assert main(["cache", "--config", str(config), "clear"]) == 1  # asks for --yes
    assert "add --yes to confirm" in capsys.readouterr().out
    assert main(["cache", "--config", str(config), "clear", keys[0]]) == 0
    assert main(["inspect", str(config)]) == 0
    assert "1 stored" in capsys.readouterr().out
    assert main(["cache", "--config", str(config), "clear", "--yes"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_inspect_writes_nothing_and_normalises_paths(tmp_path: Path) -> None:
    """Issue 8, case 9: `inspect` reads no signal and writes no file, not even a store index;
    `scripts/../cache` is keyed as `cache`."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    study = {"kind": "synthetic", "path": "../data", "n_subjects": 2, "duration": 10.0,
             "meg_channels": 6, "modalities": ["meg"]}  # fmt: skip
    config = write_config(
        scripts, study=study, store="../cache", extractors={"raw": {"kind": "sleep"}}
    )
    same = Pipeline.from_yaml(write_config(tmp_path, study={**study, "path": "data"}))
    before = _files(tmp_path)
    command = [sys.executable, "-m", "neuralset.cli", "inspect", str(config)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _files(tmp_path) == before  # nothing written: no study files, no store
    lines = proc.stdout.splitlines()
    assert lines[:2] == [
        f"store: {tmp_path / 'cache'}",
        f"study: SyntheticStudy at {tmp_path / 'data'}",
    ]
    assert ".." not in proc.stdout
    pipeline = Pipeline.from_yaml(config)
    assert pipeline.study.path == tmp_path / "data" and pipeline.store == tmp_path / "cache"
    assert same.study.key == pipeline.study.key  # one folder, one key
    events = pipeline.transforms[0](pipeline.study.preview_events())  # what would be written
    assert lines[2] == f"events: {len(events)} in 2 timelines"
    assert "extractor raw: SleepExtractor key" in proc.stdout
    assert "item keys unknown until the data files exist (recording file not found:" in proc.stdout
    assert _files(tmp_path) == before
    prepare = [sys.executable, "-m", "neuralset.cli", "prepare", str(config), "--no-progress"]
    assert subprocess.run(prepare, capture_output=True, text=True, timeout=300).returncode == 0
    before = _files(tmp_path)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _files(tmp_path) == before  # still nothing written, the store opened read-only
    assert "2 items, 2 stored" in proc.stdout


def test_fetch_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fetch --dry-run` only says what would be fetched: a synthetic study is not written
    (it was, in full, by ``study.events()``), and the store stays absent."""
    study = {"kind": "synthetic", "path": "data", "n_subjects": 2, "duration": 10.0,
             "meg_channels": 6, "modalities": ["meg"]}  # fmt: skip
    config = write_config(tmp_path, study=study, extractors={"raw": {"kind": "sleep"}})
    before = _files(tmp_path)
    assert main(["fetch", str(config), "--dry-run"]) == 0
    assert _files(tmp_path) == before
    assert capsys.readouterr().out.startswith("files: 2 recordings, 0 present")


def test_failures_exit_nonzero_and_retry(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    args = [
        "prepare",
        str(config),
        "--no-progress",
        f"--store={tmp_path / 'store'}",
        f"--extractors.raw.fail_marker={marker}",
    ]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "raw: 2 items: 0 already stored, 0 computed, 2 failed" in out
    assert re.search(
        r"sub-01_meg.fif: error in job local-\d+: RuntimeError: SleepExtractor: failing on", out
    )
    assert "--retry: only the failed items" in out
    marker.unlink()
    assert main([*args, "--retry"]) == 0
    assert "0 already stored, 2 computed, 0 failed" in capsys.readouterr().out


def test_bad_arguments(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(config), "--extractors.raw.seconds=abc"]) == 2
    assert (
        "neuralset: error: extractors.raw.seconds: expected float, got 'abc'"
        in capsys.readouterr().err
    )
    assert main(["inspect", str(config), "--executor.kind=cloud"]) == 2
    assert "unknown kind 'cloud'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["inspect", str(config), "--verbose"])
    assert info.value.code == 2
    assert (
        "unrecognized arguments: --verbose (overrides look like --executor.kind=slurm)"
        in capsys.readouterr().err
    )
    assert main(["inspect", str(config.parent / "missing.yaml")]) == 2


def test_a_folder_given_as_config_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was an IsADirectoryError traceback."""
    assert main(["inspect", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"neuralset: error: CONFIG {tmp_path} is a folder, not a YAML file; give the "
        "pipeline's YAML file\n"
    )
    (tmp_path / "b.yml").write_text("{}")
    (tmp_path / "a.yaml").write_text("{}")
    assert main(["inspect", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"neuralset: error: CONFIG {tmp_path} is a folder, not a YAML file; give the "
        "pipeline's YAML file (this folder holds a.yaml, b.yml)\n"
    )


def test_cache_commands_on_a_missing_store_folder_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "stroe"  # was: "0 entries", and verify said "all whole"
    for action in (["ls"], ["verify"], ["info", "abc"], ["clear", "--yes"]):
        assert main(["cache", "--store", str(typo), *action]) == 2
        assert capsys.readouterr().err == (
            f"neuralset: error: no store at {typo} (no such folder: nothing was stored there); "
            "check --store (default: $NEURALSET_CACHE or ~/.cache/neuralset)\n"
        )
    assert not typo.exists()


def test_a_closed_pipe_ends_quietly() -> None:
    """``neuralset kinds | head -1``: the reader leaves early; no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuralset.cli", "kinds"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert err == ""


def test_segmenter_typos_are_errors_not_tracebacks(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a typo in the triggers was a ValueError traceback; in require, "segments: 0" and exit 0
    assert main(["inspect", str(config), "--segmenter.triggers=Wrod"]) == 2
    assert capsys.readouterr().err.startswith(
        "neuralset: error: TriggerSegmenter.triggers: unknown event type 'Wrod'; did you mean "
        "'Word'? Known types: "
    )
    assert main(["inspect", str(config), "--segmenter.require=[MEG]"]) == 2
    assert capsys.readouterr().err.startswith(
        "neuralset: error: segmenter: TriggerSegmenter.require: unknown event type 'MEG'; did "
        "you mean 'Meg'? Known types: "
    )


def test_demo_is_dispatched(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--help"])
    assert info.value.code == 0
    assert "usage: neuralset demo" in capsys.readouterr().out


def test_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "neuralset.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "{demo,prepare,inspect,kinds,fetch,mirror,cache}" in proc.stdout


def test_inspect_shows_linked_entities_and_who_lacks_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = {
        "kind": "synthetic",
        "path": "data",
        "n_subjects": 2,
        "duration": 5.0,
        "meg_channels": 6,
        "modalities": ["meg", "anatomy"],
    }
    source = {
        "kind": "meg_source",
        "head_model": "bem",
        "noise_cov": {"source": "empty_room"},
        "spacing": 20.0,
    }
    config = write_config(tmp_path, study=study, extractors={"src": source})
    Pipeline.from_yaml(config).events(Pipeline.from_yaml(config).open_store())  # writes, caches
    (tmp_path / "data" / "sub-02" / "anat" / "sub-02_trans.fif").unlink()
    assert main(["inspect", str(config), "--keys", "0"]) == 0
    out = capsys.readouterr().out
    assert (
        "entities: anatomy: 2 rows keyed by subject, session; files: t1w (0), trans (1), "
        "bem (0), atlas (2), atlas_labels (2); empty_room: 2 rows keyed by subject, session; "
        "files: empty_room (2)\n"
    ) in out
    assert (
        "  entity anatomy (by subject, session; uses trans): 1 linked, 1 lacking: "
        "subject='02' lacks trans\n"
        "  entity empty_room (by subject, session; uses empty_room): 2 linked, none lacking\n"
    ) in out
    assert main(["prepare", str(config), "--no-progress"]) == 2
    assert "subject='02' lacks trans" in capsys.readouterr().err


def test_cache_clear_of_a_key_resolves_it_and_never_removes_what_is_not_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``clear KEY`` was ``store.delete(KEY)`` on the text given: a prefix (which ``info``
    takes) or a typo said "removed 1 entries" and removed nothing, and ``clear .`` deleted the
    ``arrays`` folder of every entry (``clear ..`` the folder holding the store)."""
    import numpy as np

    from neuralset.store import Store

    store = Store(tmp_path / "parent" / "store")
    for k in ("ab" * 16, "ac" * 16):
        store.put_arrays(k, {"data": np.arange(3.0)})
    (tmp_path / "parent" / "notes.txt").write_text("mine")
    root = str(store.root)
    for given, what in (
        (".", "no entry"),
        ("..", "no entry"),
        ("zz", "no entry"),
        ("a", "2 entries"),
    ):
        assert main(["cache", "--store", root, "clear", "ab" * 16, given]) == 1
        assert capsys.readouterr().out == (
            f"{what} with key {given!r} in {root}; list them with `neuralset cache ls`\n"
            "nothing removed\n"
        )
    assert sorted(store.keys()) == ["ab" * 16, "ac" * 16]
    assert (tmp_path / "parent" / "notes.txt").read_text() == "mine"
    np.testing.assert_array_equal(store.get_arrays("ac" * 16)["data"], np.arange(3.0))
    assert main(["cache", "--store", root, "clear", "ab", "--older-than", "7d"]) == 1
    assert capsys.readouterr().out == "give KEYs or --older-than, not both; nothing removed\n"
    assert main(["cache", "--store", root, "clear", "ab", "abab"]) == 0  # a prefix, twice
    assert capsys.readouterr().out == "removed 1 entries\n"
    assert list(store.keys()) == ["ac" * 16] and not store.array_dir("ab" * 16).exists()
    np.testing.assert_array_equal(store.get_arrays("ac" * 16)["data"], np.arange(3.0))
