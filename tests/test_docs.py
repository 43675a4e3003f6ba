"""The Python examples of the README and the quickstart run as written.

Docs that show parameters the code rejects are a defect: each file's ``python`` code blocks are
joined and run in a fresh interpreter, in a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> str:
    return "\n".join(BLOCK.findall(path.read_text()))


@pytest.mark.parametrize(
    "doc",
    [
        "README.md",
        "docs/quickstart.md",
        "docs/concepts/labels.md",
        "docs/concepts/splits.md",
        "docs/concepts/text.md",
        "docs/concepts/batches.md",
        "docs/concepts/pictures.md",
    ],
)
def test_doc_examples_run(doc: str, tmp_path: Path) -> None:
    code = python_blocks(ROOT / doc)
    assert code.strip()
    if doc in ("README.md", "docs/quickstart.md"):
        assert "SegmentDataset" in code  # the walk-through is there
    env = {k: v for k, v in os.environ.items() if k != "NEURALSET_CACHE"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, f"{doc} examples failed:\n{proc.stderr[-4000:]}"


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
