import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralset.config import Config, config
from neuralset.hashing import (
    KEY_EXCLUDED,
    KEY_UNLESS_DEFAULT,
    chain_keys,
    chained_keys,
    encode,
    file_identity,
    structural_key,
)


@config
class Filt(Config):
    low: float = 0.5
    high: float | None = 40.0
    picks: tuple[str, ...] = ("mag",)
    workers: int = dataclasses.field(default=1, metadata=KEY_EXCLUDED)


def test_key_is_128_bit_hex():
    key = structural_key({"a": 1})
    assert len(key) == 32 and int(key, 16) >= 0


def test_types_are_tagged():
    assert structural_key(1) != structural_key(1.0)
    assert structural_key(1) != structural_key("1")
    assert structural_key(True) != structural_key(1)
    assert structural_key((1, 2)) != structural_key((12,))
    assert structural_key(["a", "b"]) != structural_key(["ab"])
    assert structural_key(None) != structural_key(0)


def test_exact_builtin_types_encode_as_their_subclasses_do():
    """str, tuple, list, float and int take a shortcut in ``encode``; subclasses take the
    general branches: both give the same bytes."""
    from typing import NamedTuple

    class Pair(NamedTuple):
        a: str
        b: float

    class Texts(list):  # type: ignore[type-arg]
        pass

    assert encode("w") == encode(np.str_("w"))
    assert encode(1.5) == encode(np.float64(1.5))
    assert encode(float("nan")) == encode(np.float64("nan"))
    assert encode(("w", 0.5)) == encode(Pair("w", 0.5))
    assert encode(["a", ["b"]]) == encode(Texts(["a", Texts(["b"])]))
    assert encode(7) == encode(np.int64(7))
    assert encode(True) != encode(1)


def test_floats_exact():
    assert structural_key(0.1 + 0.2) != structural_key(0.3)
    assert structural_key(float("nan")) == structural_key(float("nan"))


def test_dict_order_irrelevant():
    assert structural_key({"a": 1, "b": 2}) == structural_key({"b": 2, "a": 1})


def test_arrays_and_frames_by_content():
    a = np.arange(10.0)
    assert structural_key(a) == structural_key(a.copy())
    assert structural_key(a) != structural_key(a.astype(np.float32))
    b = a.copy()
    b[3] = 99
    assert structural_key(a) != structural_key(b)
    df = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    assert structural_key(df) == structural_key(df.copy())
    assert structural_key(df) != structural_key(df.assign(s=["a", "c"]))


def test_config_fields_and_exclusion():
    base = Filt()
    assert base.key == Filt().key
    assert base.key != Filt(low=1.0).key
    assert base.key != Filt(high=None).key
    assert base.key != Filt(picks=("grad",)).key
    assert base.key == Filt(workers=8).key  # excluded field


def test_class_version_in_key():
    @config
    class V1(Config):
        _version = 1
        x: int = 0

    key1 = V1().key

    @config
    class V1(Config):  # noqa: F811 - same name, new version
        _version = 2
        x: int = 0

    assert V1().key != key1


def test_chaining():
    assert chain_keys("a", "b") != chain_keys("b", "a")
    assert chain_keys("a", "b") == chain_keys("a", "b")


def test_chained_keys_equal_chaining_each_structural_key():
    # the batched path encodes tuples of strings inline: it must give the very same keys
    values = [
        ("word", "the context of the word"),
        ("", ""),
        ("éléphant", "日本語 context"),
        ("solo",),
        (),
        ["a", "list"],
        ("mixed", 1, 2.5),
        ("nested", ("tuple", "of strings")),
        "plain string",
        {"a": 1},
        np.arange(3),
    ]
    want = [chain_keys("k" * 32, structural_key(v)) for v in values]
    assert chained_keys("k" * 32, values) == want
    assert len(set(want)) == len(want)
    assert chained_keys("other", values[:1]) != want[:1]
    assert chained_keys("k" * 32, []) == []
    # repeated words reuse their key; values equal in Python but typed apart keep their own
    repeats = ["w", ("w", "c"), "w", 1, 1.0, True, ("w", "c"), np.str_("w"), ("w", 1), ("w", 1.0)]
    want = [chain_keys("k" * 32, structural_key(v)) for v in repeats]
    assert chained_keys("k" * 32, repeats) == want
    assert len({want[3], want[4], want[5]}) == 3 and want[8] != want[9]


def test_unencodable_value():
    with pytest.raises(
        TypeError, match="cannot build a structural key from a value of type 'function'"
    ):
        encode(lambda x: x)


def test_same_key_in_fresh_process_with_other_hashseed():
    code = (
        "from tests.test_hashing import Filt; from pathlib import Path;"
        "from neuralset.hashing import structural_key;"
        "print(Filt(low=0.1).key, structural_key({'p': Path('/a/b'), 's': {'x', 'y', 'z'}}))"
    )
    root = Path(__file__).resolve().parents[1]
    outs = set()
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            check=True,
        )
        outs.add(out.stdout.strip())
    assert len(outs) == 1
    here = f"{Filt(low=0.1).key} {structural_key({'p': Path('/a/b'), 's': {'x', 'y', 'z'}})}"
    assert outs == {here}


def test_a_field_added_with_its_default_keeps_old_keys():
    @config
    class Later(Config):  # Filt with a field added after its keys were in use
        low: float = 0.5
        high: float | None = 40.0
        picks: tuple[str, ...] = ("mag",)
        workers: int = dataclasses.field(default=1, metadata=KEY_EXCLUDED)
        causal: bool = dataclasses.field(default=False, metadata=KEY_UNLESS_DEFAULT)

    Later.__qualname__ = Filt.__qualname__  # same class identity as the old one
    assert structural_key(Later()) == structural_key(Filt())
    assert structural_key(Later(causal=True)) != structural_key(Filt())


def test_file_identity(tmp_path):
    path = tmp_path / "sub-01" / "x.fif"
    path.parent.mkdir()
    path.write_bytes(b"abc")
    os.utime(path, ns=(5, 5))
    assert file_identity(path, tmp_path) == ("sub-01/x.fif", 3, 5)
    assert file_identity(path, tmp_path, content_hash=True)[0] == "sub-01/x.fif"
    with pytest.raises(FileNotFoundError) as err:
        file_identity(tmp_path / "absent.fif")
    assert str(err.value) == f"file not found: {tmp_path / 'absent.fif'}"
