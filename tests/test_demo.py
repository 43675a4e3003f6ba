"""The demo runs end to end, twice: the second run reuses every cached step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neuralset import demo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_runs_twice_and_reuses_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEURALSET_CACHE", raising=False)
    args = ["--subjects", "2", "--duration", "20", "--quiet"]
    assert demo.main(args) == 0
    first = capsys.readouterr().out
    root = tmp_path / "neuralset-demo"  # the documented default: under the current folder
    assert f"writing under {root}" in first
    assert "prepare: 2 computed, 0 reused" in first
    assert "torch: one epoch" in first and "jax: one epoch" in first
    assert "(32, 32, 80) float32" in first  # batch, 32 MEG channels, 0.8 s at 100 Hz
    png = root / "demo.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    for name in demo.FIGURES:  # one picture per plotting function, next to demo.png
        path = root / ("demo.png" if name == "demo" else f"demo-{name}.png")
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000, name
    assert "plot: " + str(png) + " (and demo-events.png, demo-study.png" in first
    mtime = (root / "study" / "sub-01" / "sub-01_meg.fif").stat().st_mtime_ns

    assert demo.main(args) == 0
    second = capsys.readouterr().out
    assert "study: reusing cached 2 subjects" in second
    assert "reusing cached MEG preprocessing (2 recordings, 0 computed)" in second
    assert (root / "study" / "sub-01" / "sub-01_meg.fif").stat().st_mtime_ns == mtime
    segs = [line for line in first.splitlines() if line.startswith("segments:")]
    assert segs and segs[0] in second  # same segments from the cached events


def test_demo_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURALSET_CACHE", str(tmp_path / "cache"))
    assert demo.default_demo_root() == tmp_path / "cache" / "demo"
    monkeypatch.delenv("NEURALSET_CACHE")
    assert demo.default_demo_root() == Path("neuralset-demo")
    assert not os.path.isabs(demo.default_demo_root())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subjects", "0"], "argument --subjects: must be an integer >= 1, got 0"),
        (["--subjects", "two"], "argument --subjects: expected an integer, got 'two'"),
        (["--duration", "2"], "argument --duration: must be a number >= 5, got 2"),
        (["--duration", "nan"], "argument --duration: must be a number >= 5, got nan"),
        (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
    ],
)
def test_demo_bad_options_name_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Refused by the parser before anything is written (was a traceback naming
    ``SyntheticStudy.n_subjects``, or a batch size error after the whole preparation)."""
    with pytest.raises(SystemExit) as info:
        demo.main(["--cache", str(tmp_path / "demo"), *args])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"neuralset demo: error: {message}"
    assert not (tmp_path / "demo").exists()
