import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from neuralset.store import Store, StoreError


def test_nothing_created_until_first_write(tmp_path):
    store = Store(tmp_path / "s")
    assert not store.has("a" * 32)
    assert store.missing(["a" * 32]) == ["a" * 32]
    assert store.entries() == []
    assert not (tmp_path / "s").exists()


def test_default_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALSET_CACHE", str(tmp_path / "c"))
    assert Store().root == tmp_path / "c"
    monkeypatch.delenv("NEURALSET_CACHE")
    assert str(Store().root).endswith(".cache/neuralset")


def test_arrays_round_trip_memmapped(tmp_path):
    store = Store(tmp_path)
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    store.put_arrays("k1", {"data": data}, meta={"sfreq": 100.0}, label="rec")
    out = store.get_arrays("k1")["data"]
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, data)
    assert store.meta("k1") == {"sfreq": 100.0}
    info = store.info("k1")
    assert info["label"] == "rec" and "versions" in info["provenance"] and info["nbytes"] == 48
    with pytest.raises(ValueError):
        out[0, 0] = 1  # read-only


def test_values_and_management(tmp_path):
    store = Store(tmp_path)
    store.put_value("v1", {"a": 1})
    store.put_arrays("a1", {"x": np.zeros(3)})
    assert store.get_value("v1") == {"a": 1}
    assert store.missing(["v1", "zz", "a1"]) == ["zz"]
    assert {e.key for e in store.entries()} == {"v1", "a1"}
    table = pd.DataFrame({"x": np.arange(10_000.0)})  # a value's size was listed as 0 B
    store.put_value("v2", table)
    sizes = {e.key: e.nbytes for e in store.entries()}
    assert sizes == {"v1": len(pickle.dumps({"a": 1}, protocol=pickle.HIGHEST_PROTOCOL)),
                     "a1": 24, "v2": len(pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))}  # fmt: skip
    assert sizes["v2"] > 80_000
    store.delete("v2")
    with pytest.raises(StoreError, match="holds arrays, not a value"):
        store.get_value("a1")
    with pytest.raises(StoreError, match="no store entry zz .*run prepare"):
        store.get_arrays("zz")
    assert store.clear(older_than=3600) == 0
    assert store.clear() == 2
    assert store.entries() == [] and not store.array_dir("a1").exists()


def test_damaged_file_is_reported(tmp_path):
    store = Store(tmp_path)
    store.put_arrays("k", {"data": np.ones(10)})
    (store.array_dir("k") / "data.npy").write_bytes(b"garbage")
    with pytest.raises(StoreError, match=r"array file .*data.npy of entry k is damaged \("):
        store.get_arrays("k")


def test_staged_entry_invisible_until_commit(tmp_path):
    store = Store(tmp_path)
    record = store.stage_arrays("k", {"data": np.ones(3)})
    assert not store.has("k")
    store.commit("k", record)
    assert store.has("k")


def test_kill_9_while_writing_leaves_no_bad_entry(tmp_path):
    """A writer killed with SIGKILL mid-way leaves either no entry or a complete one."""
    script = textwrap.dedent(
        f"""
        import numpy as np, sys
        from neuralset.store import Store
        store = Store({str(tmp_path)!r})
        big = np.ones((64, 1024, 1024), dtype=np.float32)  # 256 MB: takes a while to write
        print("start", flush=True)
        for i in range(100):
            store.put_arrays(f"k{{i}}", {{"data": big * i}})
            print("done", i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    done = proc.stdout.readline()  # the first entry is complete
    assert done.startswith("done 0")
    time.sleep(0.3)  # now in the middle of writing a later entry
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path)
    keys = sorted(store.keys())
    assert "k0" in keys
    for key in keys:
        arr = store.get_arrays(key)["data"]
        i = int(key[1:])
        assert arr.shape == (64, 1024, 1024)
        assert float(arr[-1, -1, -1]) == float(i) and float(arr[0, 0, 0]) == float(i)
    # rerunning after the kill writes the remaining entries fine
    missing = store.missing([f"k{i}" for i in range(len(keys) + 1)])
    assert missing == [f"k{len(keys)}"]
    store.put_arrays(missing[0], {"data": np.zeros(2)})
    assert store.has(missing[0])


def test_read_only_store_reads_everything_and_writes_nothing(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "store"
    writer = (
        "import numpy as np, sys; from neuralset.store import Store; s = Store(sys.argv[1]); "
        "s.put_arrays('a' * 32, {'data': np.arange(4.0)}, meta={'sfreq': 2.0}); "
        "s.put_value('b' * 32, list(range(10_000)), label='big value')"
    )
    subprocess.run([sys.executable, "-c", writer, str(root)], check=True)  # closed: no -wal file

    def files():
        return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}

    before = files()
    ro = Store(root, read_only=True)
    assert ro.has("a" * 32) and not ro.has("c" * 32)
    assert ro.missing(["a" * 32, "c" * 32]) == ["c" * 32]
    assert ro.get_arrays("a" * 32)["data"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert ro.meta("a" * 32) == {"sfreq": 2.0} and ro.get_value("b" * 32)[-1] == 9999
    assert sorted(ro.keys()) == ["a" * 32, "b" * 32] and len(ro.entries()) == 2
    for write in (lambda: ro.put_value("c" * 32, 1), lambda: ro.delete("a" * 32)):
        with pytest.raises(StoreError) as info:
            write()
        assert str(info.value) == (
            f"store is read-only at {root} (opened with read_only=True); "
            "open it with Store(root) to write"
        )
    assert files() == before  # not even SQLite's -wal/-shm files
    assert Store(tmp_path / "absent", read_only=True).missing(["a" * 32]) == ["a" * 32]
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("key", [".", "..", "../x", "a/b", "", "k k"])
def test_a_key_that_is_a_path_is_refused_before_anything_is_touched(tmp_path, key):
    """A key names its entry's folder: ``Store.delete("..")`` removed the folder holding the
    store (``"."``: every entry's arrays), and ``put_arrays("../x", ...)`` wrote outside it."""
    store = Store(tmp_path / "store")
    store.put_arrays("a" * 32, {"data": np.arange(3.0)})
    message = re.escape(
        f"store key {key!r} is not a key: keys hold only letters, digits, '_' and '-' (the 32 "
        "hex digits of neuralset.hashing.key, say); list the keys with `neuralset cache ls`"
    )
    for call in (
        lambda: store.delete(key),
        lambda: store.put_arrays(key, {"data": np.ones(2)}),
        lambda: store.put_value(key, 1),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    assert list(store.keys()) == ["a" * 32]
    np.testing.assert_array_equal(store.get_arrays("a" * 32)["data"], np.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize("how", ["deleted", "emptied", "cut short"])
def test_a_damaged_value_file_is_a_damaged_entry_not_a_missing_one(tmp_path, how, capsys):
    """A value too large for the SQLite row lives in a file of the index (``*.val``). Deleted,
    diskcache read it as no record while ``has`` said stored: ``get_value`` said "run prepare()
    first", which found nothing to do, and ``ls``/``verify`` hid it; cut short, every read,
    ``ls``, ``verify`` and ``prepare``'s check raised a bare ``UnpicklingError``."""
    from neuralset.cli import main

    store = Store(tmp_path / "store")
    key, kept = "v" * 32, "w" * 32
    store.put_value(key, np.arange(100_000), label="big")
    (path,) = (tmp_path / "store" / "index").rglob("*.val")
    store.put_value(kept, 1.5, label="small")  # kept in its SQLite row
    if how == "deleted":
        path.unlink()
        cause = "FileNotFoundError: its value file is missing (deleted outside neuralset?)"
    elif how == "emptied":
        path.write_bytes(b"")
        cause = "EOFError: Ran out of input"
    else:
        path.write_bytes(path.read_bytes()[:1000])
        cause = "UnpicklingError: pickle data was truncated"
    store = Store(tmp_path / "store")
    message = (
        f"the index record of entry {key} is damaged ({cause}); remove the entry with "
        f"`neuralset cache clear {key} --store {store.root}` and prepare again"
    )
    with pytest.raises(StoreError, match=re.escape(message)):
        store.get_value(key)
    assert store.damaged([key, kept]) == {key: message}  # prepare removes and recomputes it
    assert [(e.key, e.kind) for e in store.entries()] == [(key, "damaged"), (kept, "value")]
    assert main(["cache", "--store", str(store.root), "ls"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1] == f"{key}  damaged             0 B        ?  "
    assert store.verify().damaged == {key: message}
    assert store.clear(older_than=3600) == 1  # its age is unknown: counted as old
    assert list(store.keys()) == [kept] and store.get_value(kept) == 1.5
    store.put_value(key, np.arange(3))
    assert store.get_value(key).tolist() == [0, 1, 2]


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_store_root_that_is_a_file_says_so(tmp_path, below):
    """A store given a file (or a path under one) raised a bare ``NotADirectoryError`` on
    ``<root>/FORMAT``, which the command line printed as a traceback."""
    (tmp_path / "notes.txt").write_text("mine")
    root = tmp_path / "notes.txt" / below if below else tmp_path / "notes.txt"
    store = Store(root)
    fix = (
        f"the store {root}, or a folder above it, is a file: give a folder as the store "
        "(Store(path), NEURALSET_CACHE or the pipeline's store)"
    )
    for call in (lambda: store.has("a" * 32), lambda: store.put_value("a" * 32, 1)):
        with pytest.raises(StoreError) as err:
            call()
        assert str(err.value) == f"no store can be read at {root}: {fix}"
    with pytest.raises(NotADirectoryError) as err:
        store.put_arrays("a" * 32, {"data": np.ones(2)})
    assert err.value.strerror == (
        f"Not a directory (a file stands where the store needs a folder while writing the "
        f"store); {fix}"
    )
    assert err.value.filename == str(root / "arrays" / "aa" / ("a" * 32))
    assert (tmp_path / "notes.txt").read_text() == "mine"
