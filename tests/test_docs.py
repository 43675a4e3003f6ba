"""The documentation runs as written, and the API reference covers the package.

Every code block of README.md and docs/**/*.md that can run is run (``tests/doc_blocks.py``):
each page in a fresh interpreter, in a temporary folder holding a copy of ``examples/``, its
blocks in order in one namespace; outputs shown doctest-style must be the real ones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api_pages import load_api
from tests.doc_blocks import blocks

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
)
RUNNABLE = [page for page in PAGES if any(b.runs for b in blocks(ROOT / page, ROOT))]


def test_every_runnable_block_is_collected() -> None:
    """Pages with code are collected; skipped blocks say why; no block in an unknown language
    hides Python (```py, ```python3 ...)."""
    assert {"README.md", "docs/quickstart.md", "docs/concepts/configs.md",
            "docs/concepts/events.md", "docs/concepts/execution.md",
            "docs/concepts/segments.md", "docs/concepts/store.md",
            "docs/concepts/cross-session.md", "docs/concepts/streaming.md"} <= set(RUNNABLE)  # fmt: skip
    for page in PAGES:
        for block in blocks(ROOT / page, ROOT):
            assert block.lang in ("python", "pycon", "bash", "yaml", "toml", "text", ""), (
                f"{page}:{block.line}: code block language {block.lang!r}; use python, pycon "
                "(doctest), bash, yaml or text"
            )
            if block.skip:
                assert block.lang == "bash", (
                    f"{page}:{block.line}: only shell blocks may be skipped"
                )


@pytest.mark.parametrize("page", RUNNABLE)
def test_doc_page_runs_as_written(page: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "tests/data/cnt", tmp_path / "tests/data/cnt")  # your-data.md reads it
    env = {k: v for k, v in os.environ.items() if k != "NEURALSET_CACHE"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "doc_blocks.py"), str(ROOT / page)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, f"{page} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    expected = [b for b in blocks(ROOT / page, ROOT) if b.runs]
    skipped = sum(1 for b in expected if b.skip)
    assert (
        proc.stdout.strip().splitlines()[-1] == f"RAN {len(expected) - skipped} SKIPPED {skipped}"
    )


def test_api_reference_covers_every_module() -> None:
    """Every module of the package has a ``::: module`` block in docs/api, and no block is stale."""
    package = ROOT / "neuralset"
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and not p.name.startswith("_")
    }
    documented = set(re.findall(r"^::: ([\w.]+)$", _api_text(), re.M))
    undocumented = sorted(modules - documented)
    assert not undocumented, f"add `::: <module>` blocks for {undocumented} to a page of docs/api/"
    stale = sorted(
        m for m in documented - modules if not (package.parent / m.replace(".", "/")).is_dir()
    )
    assert not stale, f"docs/api/ documents modules that do not exist: {stale}"


def _api_text() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "api").glob("*.md")))


def test_docstring_rst_becomes_markdown() -> None:
    """The docs' griffe extension turns roles, ``::`` markers and simple tables into Markdown."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "rst_markdown", ROOT / "docs/_ext/rst_markdown.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (
        "See :class:`~neuralset.store.Store`, :func:`neuralset.segments.sliding_windows` and\n"
        ":meth:`the read <Extractor.read>`. Layout::\n\n    a/b\n\n"
        "====  =====\nkind  files\n====  =====\n``a``   ``x.fif``, ``y.fif``\nb     z\n====  =====\n"
    )
    assert module.rst_to_markdown(text) == (
        "See `Store`, `neuralset.segments.sliding_windows` and\n"
        "`the read`. Layout:\n\n    a/b\n\n\n"
        "| kind | files |\n| --- | --- |\n| ``a`` | ``x.fif``, ``y.fif`` |\n| b | z |\n\n"
    )


def test_readme_lists_every_benchmark() -> None:
    readme = (ROOT / "README.md").read_text()
    scripts = sorted(
        p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_")
    )
    unlisted = [name for name in scripts if f"`benchmarks/{name}`" not in readme]
    assert not unlisted, f"add {unlisted} to the benchmarks table of README.md"


@pytest.fixture(scope="module")
def api() -> object:
    """The package as the API pages see it (griffe with the docs' extensions)."""
    return load_api()


def _documented(api: object, path: str) -> dict[str, tuple[str, str | None, str]]:
    """name -> (type, default, description) of the Parameters table of a class's page."""
    cls = api[path]  # type: ignore[index]
    sections = [s for s in cls.docstring.parsed if s.kind.value == "parameters"]
    return {
        p.name: (str(p.annotation), None if p.default is None else str(p.default), p.description)
        for section in sections
        for p in section.value
    }


def test_config_pages_show_every_field_with_type_and_default(api: object) -> None:
    import dataclasses

    from neuralset.extractors.neural.mne import MegExtractor
    from neuralset.extractors.stimulus.text import HuggingFaceText

    meg = _documented(api, "extractors.neural.mne.meeg.MegExtractor")
    assert list(meg) == [f.name for f in dataclasses.fields(MegExtractor)]  # inherited included
    assert meg["frequency"][:2] == ("float | None", "None")
    assert meg["frequency"][2].startswith("Output (resampling) frequency in Hz")
    assert meg["filter"][:2] == ("tuple[float | None, float | None]", "(None, None)")
    assert meg["event_type"][2].endswith("(Inherited from `Extractor`.)")
    text = _documented(api, "extractors.stimulus.text.HuggingFaceText")
    assert list(text) == [f.name for f in dataclasses.fields(HuggingFaceText)]
    assert text["model"][:2] == ("str", "''") and text["model"][2].startswith("Hub id")
    assert text["layers"][:2] == ("int | float | tuple[int | float, ...]", "1.0")
    assert text["device"][:2] == ("Literal['auto', 'cpu', 'cuda']", "'auto'")
    signature = api["extractors.stimulus.text.HuggingFaceText"].signature()  # type: ignore[index]
    assert (
        "model: str = ''" in signature
        and "device: Literal['auto', 'cpu', 'cuda'] = 'auto'" in signature
    )


def test_no_config_field_is_wrongly_required(api: object) -> None:
    """A field with a default never shows "required" (no default) on an API page."""
    import dataclasses
    import importlib

    from neuralset.config import Config

    checked = 0
    for module in sorted({m for m in re.findall(r"^::: ([\w.]+)$", _api_text(), re.M)}):
        for name, obj in vars(importlib.import_module(module)).items():
            if not (isinstance(obj, type) and issubclass(obj, Config) and obj.__module__ == module):
                continue
            if name.startswith("_") or obj.__doc__ is None:
                continue
            documented = _documented(api, f"{module.removeprefix('neuralset.')}.{name}")
            for f in dataclasses.fields(obj):
                has_default = not (
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                )
                assert f.name in documented, f"{module}.{name}.{f.name} is not on its API page"
                assert (documented[f.name][1] is not None) == has_default, (module, name, f.name)
                checked += 1
    assert checked > 300
