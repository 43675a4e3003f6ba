"""Bad input, one case at a time: each ends in a right result or an early error naming the
field or file and the fix (never silently wrong, empty or stale)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import EventsError, validate_events
from neuralset.extractors.base import OutOfBoundsError
from neuralset.extractors.neural.mne import MegExtractor
from neuralset.extractors.recording_spans import RecordingOverlapError
from neuralset.segments import segment_on_triggers, sliding_windows
from neuralset.store import Store, StoreReadOnlyError
from tests.execution.helpers import REPO


def _one_timeline(events: pd.DataFrame) -> pd.DataFrame:
    ev = events.copy()
    ev["timeline"] = "one"
    return validate_events(ev)


def test_two_meg_recordings_on_one_timeline_are_refused(small_events, tmp_path):
    ev = _one_timeline(small_events)
    rows = np.flatnonzero((ev["type"] == "Meg").to_numpy())
    expected = (
        "Meg recordings overlap on timeline 'one': sub-01/sub-01_meg.fif (row "
        f"{rows[0]}, 0 to 12 s) and sub-02/sub-02_meg.fif (row {rows[1]}, 0 to 12 s); a window "
        "there could be read from either. Give each recording its own timeline (one per "
        "subject, session or run), or keep one of them (a Query on the events; "
        "BidsStudy(spaces=...) for fMRI spaces)"
    )
    meg = MegExtractor(frequency=100.0)
    with pytest.raises(RecordingOverlapError) as info:
        meg.prepare(ev, Store(tmp_path / "store"), progress=False)
    assert str(info.value) == expected
    store = Store(tmp_path / "ok")
    meg.prepare(small_events, store, progress=False)  # each on its own timeline: fine
    with pytest.raises(RecordingOverlapError) as info:  # and a read is refused as well
        meg.read(segment_on_triggers(ev, "Word", offset=0.0, duration=0.5), store)
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("filt", "message"),
    [
        (
            (80.0, None),
            "MegExtractor.filter: the high-pass at 80 Hz is at or above the Nyquist frequency "
            "of the output (50 Hz, half of frequency=100), so it would keep nothing of the "
            "signal; lower filter[0] below 50 Hz, or raise frequency above 160 Hz",
        ),
        (
            (0.5, 80.0),
            "MegExtractor.filter: the low-pass at 80 Hz is at or above the Nyquist frequency of "
            "the output (50 Hz, half of frequency=100), so it does nothing (resampling removes "
            "everything above 50 Hz); use (0.5, None), a low-pass below 50 Hz, or raise "
            "frequency above 160 Hz",
        ),
    ],
)
def test_filter_against_the_output_nyquist(filt, message):
    with pytest.raises(ConfigError) as info:
        MegExtractor(frequency=100.0, filter=filt)
    assert str(info.value) == message
    MegExtractor(frequency=100.0, filter=(0.5, 40.0))  # below it: fine


def test_filter_above_the_source_nyquist_names_the_field_before_any_work(
    small_study, small_events, tmp_path
):
    with pytest.raises(ConfigError) as info:
        MegExtractor(frequency=None, filter=(0.5, 5000.0)).prepare(
            small_events, Store(tmp_path / "store"), progress=False
        )
    path = small_study.path / "sub-01" / "sub-01_meg.fif"
    assert str(info.value) == (
        f"MegExtractor.filter[1] (low-pass): 5000 Hz is at or above the Nyquist frequency "
        f"(500 Hz) of {path}, recorded at 1000 Hz; set it below 500 Hz"
    )
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("selector", [["word"], "word"])
def test_a_selector_in_the_wrong_case_says_the_right_name(small_events, selector):
    from neuralset.events.schema import event_types

    with pytest.raises(ValueError) as info:
        segment_on_triggers(small_events, selector, duration=1.0)
    known = ", ".join(sorted(event_types()))  # other tests may register more types
    assert str(info.value) == (
        f"unknown event type 'word'; did you mean 'Word'? Known types: {known}. Declare new "
        "types with neuralset.events.register_event_type."
    )


def test_empty_selections_are_errors(small_events):
    with pytest.raises(EventsError) as info:
        segment_on_triggers(small_events.iloc[:0], "Word", duration=1.0)
    assert str(info.value) == (
        "segment_on_triggers: the events table is empty (0 rows): nothing to segment; check "
        "what built it (the study's events(), a Query or a split that selected nothing)"
    )
    with pytest.raises(EventsError, match=r"^sliding_windows: the events table is empty"):
        sliding_windows(small_events.iloc[:0], duration=1.0, stride=1.0)
    with pytest.raises(ValueError) as info:
        segment_on_triggers(small_events, "type == 'Word' and start > 1e6", duration=1.0)
    assert str(info.value) == (
        "segment_on_triggers: the triggers \"type == 'Word' and start > 1e6\" select no event "
        "of the table (event types present: Stimulus (70), Word (70), Sentence (7), Eeg (2), "
        "Meg (2))"
    )


def test_jax_iterator_over_no_full_batch_is_an_error(small_events, tmp_path):
    pytest.importorskip("jax")
    from neuralset.loaders import SegmentDataset
    from neuralset.loaders.jax_iter import JaxBatchIterator

    store = Store(tmp_path / "store")
    meg = MegExtractor(frequency=100.0)
    meg.prepare(small_events, store, progress=False)
    segments = segment_on_triggers(small_events, "Word", duration=0.5).select([0, 1, 2])
    dataset = SegmentDataset(segments, {"meg": meg}, store)
    with pytest.raises(ValueError) as info:
        JaxBatchIterator(dataset, batch_size=8, drop_last=True)
    assert str(info.value) == (
        "JaxBatchIterator: no batch: drop_last=True leaves out the last, smaller batch, and "
        "batch_size=8 exceeds the 3 segments of the dataset; lower batch_size, or pass "
        "drop_last=False"
    )


def test_baseline_with_pad_gives_zeros_where_there_is_no_signal(small_events, tmp_path):
    store = Store(tmp_path / "store")
    meg = MegExtractor(frequency=100.0, baseline=(-0.5, 0.0))
    meg.prepare(small_events, store, progress=False)
    late = segment_on_triggers(small_events, "Word", offset=0.0, duration=2.0)
    late = late.select([len(late) - 1])
    padded = meg.read(late, store, out_of_bounds="pad")
    valid = np.broadcast_to(padded.mask[:, None, :], padded.data.shape)
    assert (~valid).any() and valid.any()
    assert np.all(padded.data[~valid] == 0.0)  # zeros, not minus the baseline mean
    assert np.abs(padded.data[valid]).max() > 0


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (
            lambda ev: pd.DataFrame(ev.drop(columns=["type"])),
            "segment_on_triggers",
            "the events table has no 'type' column",
        ),
        (
            lambda ev: ev.assign(timeline=ev["timeline"].astype(str)),
            "MegExtractor.prepare",
            "the events table was not validated (its 'timeline' column is str, not category)",
        ),
        (
            lambda ev: ev.assign(duration=np.where(ev["type"] == "Meg", -5.0, ev["duration"])),
            "MegExtractor.prepare",
            "duration is negative at rows 0, 75 of the events table (changed after validation?)",
        ),
    ],
)
def test_unvalidated_tables_are_refused(small_events, tmp_path, edit, where, message):
    events = edit(small_events)
    with pytest.raises(EventsError) as info:
        if where == "segment_on_triggers":
            segment_on_triggers(events, "Word", duration=1.0)
        else:
            MegExtractor(frequency=100.0).prepare(events, Store(tmp_path / "s"), progress=False)
    assert str(info.value) == (
        f"{where}: {message}; pass it through neuralset.validate_events(events) first (a "
        "Study's events() already are)"
    )
    assert not (tmp_path / "s").exists()


def _copy_study_events(small_study, small_events, tmp_path):
    """The small study's files copied under ``tmp_path`` and its events pointing there."""
    import shutil

    root = tmp_path / "study"
    shutil.copytree(small_study.path, root)
    return root, small_events.assign(study_root=str(root))


@pytest.mark.parametrize("fraction", [0.5, 0.999])
def test_a_truncated_fif_is_named_as_such(small_study, small_events, tmp_path, fraction):
    root, events = _copy_study_events(small_study, small_events, tmp_path)
    path = root / "sub-01" / "sub-01_meg.fif"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError) as info:
        MegExtractor(frequency=100.0).prepare(events, Store(tmp_path / "store"), progress=False)
    assert str(info.value) == (
        f"MegExtractor: cannot read {path} (Meg event 0 (timeline sub-01, file "
        f"sub-01/sub-01_meg.fif)): {path} is truncated or damaged ({path.stat().st_size} "
        "bytes): its header describes data that cannot be read (ValueError: buffer size must "
        "be a multiple of element size); copy the file again from its source (a copy or "
        "download cut short?)"
    )
    assert not (tmp_path / "store").exists()


def test_a_directory_given_as_a_recording_file(small_events, tmp_path):
    events = small_events.assign(study_root=str(tmp_path))
    events["filepath"] = events["filepath"].astype(object)
    events.loc[events["type"] == "Meg", "filepath"] = "folder"
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError) as info:
        MegExtractor(frequency=100.0).prepare(
            validate_events(events), Store(tmp_path / "store"), progress=False
        )
    folder = tmp_path / "folder"
    assert str(info.value) == (
        f"MegExtractor: cannot read {folder} (Meg event 0 (timeline sub-01, file folder)): "
        f"{folder} is a directory, not a recording file; point filepath at the file"
    )


def test_triggers_before_the_recording_say_where_and_what_to_do(small_events, tmp_path):
    store = Store(tmp_path / "store")
    meg = MegExtractor(frequency=100.0)
    meg.prepare(small_events, store, progress=False)
    early = segment_on_triggers(small_events, "Word", offset=-1.5, duration=1.0).require("Meg")
    with pytest.raises(OutOfBoundsError) as info:
        meg.read(early, store)
    assert str(info.value) == (
        "segments [0, 1, 35] start outside their Meg recording (segment 0 starts at -0.5 s, "
        "before the start of Meg event 0 (timeline sub-01, file sub-01/sub-01_meg.fif), which "
        "spans 0 to 12 s); read with out_of_bounds='pad' (zeros, with a mask) or 'drop', or "
        "change the segments' offset"
    )
    assert "require" not in str(info.value)  # already applied: not advised again


def test_an_unknown_keyword_says_the_closest_field():
    with pytest.raises(TypeError) as info:
        MegExtractor(frequncy=100.0)  # type: ignore[call-arg]
    assert str(info.value).startswith(
        "MegExtractor: 'frequncy' is not a field (did you mean 'frequency'?); fields: "
    )


def test_a_yaml_syntax_error_is_one_line_without_traceback(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("study:\n  kind: synthetic\n   path: [x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "neuralset.cli", "inspect", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"neuralset: error: {config}:3:8: YAML syntax error: mapping values are not allowed here\n"
    )


def test_read_only_store_reads_and_refuses_writes_saying_where(small_events, tmp_path):
    store = Store(tmp_path / "store")
    meg = MegExtractor(frequency=100.0)
    meg.prepare(small_events, store, progress=False)
    segments = segment_on_triggers(small_events, "Word", offset=-0.2, duration=0.5)
    ro = Store(tmp_path / "store", read_only=True)
    np.testing.assert_array_equal(meg.read(segments, ro).data, meg.read(segments, store).data)
    assert str(meg.prepare(small_events, ro, progress=False)).startswith(
        "2 items: 2 already stored, 0 computed"
    )
    with pytest.raises(StoreReadOnlyError) as info:
        MegExtractor(frequency=50.0).prepare(small_events, ro, progress=False)
    assert str(info.value) == (
        f"store is read-only at {ro.root} (opened with read_only=True); open it with "
        "Store(root) to write"
    )


_UNGUARDED = """
from pathlib import Path
from tests.execution.helpers import make_recordings
from neuralset.execution import LocalExecutor, run_prepare
from neuralset.store import Store
from neuralset.synthetic.debug_extractors import SleepExtractor

events = make_recordings(Path({root!r}) / "data", 4)
run_prepare(SleepExtractor(), events, Store(Path({root!r}) / "store"),
            executor=LocalExecutor(workers=2), progress=False)
print("done")
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_local_executor_without_the_main_guard_fails_at_once(tmp_path, guarded):
    body = _UNGUARDED.format(root=str(tmp_path))
    if guarded:
        body = body.replace("events = ", 'if __name__ == "__main__":\n    events = ')
        body = body.replace("\nrun_prepare", "\n    run_prepare").replace(
            "\n            executor", "\n                executor"
        )
        body = body.replace('\nprint("done")', '\n    print("done")')
    script = tmp_path / "script.py"
    script.write_text(body)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        # the script imports the test helpers (tests/ is not an installed package)
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        },
    )
    if guarded:
        assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
        return
    assert time.perf_counter() - t0 < 60 and proc.returncode == 1
    assert proc.stderr.rstrip().endswith(
        f"ExecutorError: LocalExecutor: prepare() runs at the top level of the script {script} "
        '(line 9) without an `if __name__ == "__main__":` guard; every worker process imports '
        "the script, so each would run it again; put the script's work under the guard,\n\n"
        '    if __name__ == "__main__":\n        main()\n\nor prepare with InlineExecutor()'
    )
    assert not (tmp_path / "store" / "arrays").exists()


def test_cache_verify_checks_every_entry(small_events, tmp_path, capsys):
    from neuralset.cli import main

    store = Store(tmp_path / "store")
    MegExtractor(frequency=100.0).prepare(small_events, store, progress=False)
    assert main(["cache", "--store", str(store.root), "verify"]) == 0
    assert capsys.readouterr().out == (
        f"2 entries, 2 array files checked in {store.root}: all whole\n"
    )
    key = sorted(store.keys())[0]
    path = store.array_dir(key) / "data.npy"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    assert main(["cache", "--store", str(store.root), "verify"]) == 1
    assert capsys.readouterr().out == (
        f"2 entries, 2 array files checked in {store.root}: 1 damaged\n"
        f"  damaged {key}: array file {path} is damaged ({size // 2} bytes on disk, {size} "
        "written: truncated or replaced)\n"
        f"  remove them with `neuralset cache verify --fix --store {store.root}` (or "
        f"`neuralset cache clear KEY --store {store.root}`); prepare computes them again\n"
    )
    assert main(["cache", "--store", str(store.root), "verify", "--fix"]) == 0
    assert key not in set(Store(store.root).keys())
