"""The code blocks of the documentation (README.md, docs/**/*.md), and how to run them.

Run as a script (``python tests/doc_blocks.py PAGE.md``), it runs the page's blocks in order, in
one namespace, in the current folder, the way a reader would paste them:

* ```` ```python ```` blocks are executed;
* ```` ```pycon ```` blocks (and ``python`` blocks starting with ``>>>``) are doctests: the
  output shown must be the real one (``...`` matches anything, whitespace is normalised);
* ```` ```bash ```` blocks: their ``neuralset ...`` (or ``.venv/bin/neuralset ...``) lines are
  run with the current interpreter; other commands (``make``, ``.venv/bin/python script``) are
  not run here (``tests/test_examples.py`` runs the scripts).

A block preceded by ``<!-- docs-test: skip REASON -->`` is not run (a SLURM submission on a
machine without a cluster). The script prints ``RAN <n> SKIPPED <m>`` and fails on the first
block that raises or shows a wrong output, naming the page and line.
"""

from __future__ import annotations

import dataclasses
import doctest
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# a fence, indented or not (blocks inside list items); the closing fence has the same indent
FENCE = re.compile(r"^([ \t]*)```([\w-]*)[^\n]*\n(.*?)^\1```[ \t]*$", re.S | re.M)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s+(.+?)\s*-->\s*$")
RUN_LANGS = ("python", "pycon", "bash")
CLI = ("neuralset", ".venv/bin/neuralset")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str  # the reason given by a skip marker, or ""

    @property
    def is_doctest(self) -> bool:
        return self.lang == "pycon" or (
            self.lang == "python" and self.code.lstrip().startswith(">>>")
        )

    def cli_calls(self) -> list[list[str]]:
        """Arguments of the ``neuralset`` command lines of a bash block."""
        calls = []
        for line in self.code.splitlines():
            argv = shlex.split(line, comments=True)
            if argv and argv[0] in CLI:
                calls.append(argv[1:])
        return calls

    @property
    def runs(self) -> bool:
        """Whether this block is run (python, doctest, or bash with ``neuralset`` lines)."""
        if self.lang == "bash":
            return bool(self.cli_calls())
        return self.lang in ("python", "pycon")


def blocks(path: Path, root: Path | None = None) -> list[Block]:
    """The fenced code blocks of a Markdown page, with their skip markers."""
    text = path.read_text()
    name = str(path.relative_to(root)) if root is not None else str(path)
    out = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        out.append(
            Block(
                page=name,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group(2) or "",
                code=textwrap.dedent(match.group(3)),
                skip=skip.group(1) if skip else "",
            )
        )
    return out


def run_doctest(block: Block, namespace: dict[str, Any]) -> None:
    """Run a doctest block in ``namespace`` (names it defines are kept)."""
    parser = doctest.DocTestParser()
    where = f"{block.page}:{block.line}"
    test = parser.get_doctest(block.code, namespace, where, block.page, block.line)
    report: list[str] = []
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    runner.run(test, out=report.append, clear_globs=False)
    namespace.update(test.globs)
    if runner.failures:
        raise AssertionError(f"{where}: the output shown is not the real one:\n{''.join(report)}")


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    """Run one block (see the module docstring)."""
    if block.is_doctest:
        run_doctest(block, namespace)
    elif block.lang == "python":
        exec(compile(block.code, f"{block.page}:{block.line}", "exec"), namespace)
    elif block.lang == "bash":
        for argv in block.cli_calls():
            cmd = [sys.executable, "-m", "neuralset.cli", *argv]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise AssertionError(
                    f"{block.page}:{block.line}: `neuralset {shlex.join(argv)}` exited with "
                    f"{proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
                )


def run_page(path: Path) -> tuple[int, int]:
    """Run every block of ``path`` in order in one namespace; (blocks run, blocks skipped)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    ran = skipped = 0
    for block in blocks(path):
        if not block.runs:
            continue
        if block.skip:
            skipped += 1
            continue
        try:
            run_block(block, namespace)
        except AssertionError:
            raise
        except BaseException as err:
            raise RuntimeError(
                f"{block.page}:{block.line}: this {block.lang} block raised "
                f"{type(err).__name__}: {err}"
            ) from err
        ran += 1
    return ran, skipped


if __name__ == "__main__":
    n_ran, n_skipped = run_page(Path(sys.argv[1]))
    print(f"RAN {n_ran} SKIPPED {n_skipped}")
