"""Griffe extension: render the reStructuredText bits of numpydoc docstrings as Markdown.

The docstrings use roles such as ``:class:`~neuralset.store.Store``` (numpydoc style), which
mkdocstrings would otherwise print verbatim. Each role becomes inline code: ``Store`` for a
``~``-prefixed target, the full target otherwise, the text of ``text <target>`` forms. No
cross-reference is created, so a renamed target can never break the build. A literal-block
marker ``::`` ending a line is dropped (the indented block after it is already Markdown code),
and reST "simple tables" (``===  ===`` borders) become Markdown tables.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const)+:`([^`]+)`")


def _replace(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    labelled = re.fullmatch(r"(.+?)\s*<[^>]+>", target)
    if labelled:
        return f"`{labelled.group(1)}`"
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


_LITERAL_ALONE = re.compile(r"^[ \t]*::[ \t]*$", re.M)
_LITERAL_END = re.compile(r"(\S)::[ \t]*$", re.M)


_BORDER = re.compile(r"^ *=+(?: +=+)+ *$")


def _cells(line: str, starts: list[int]) -> list[str]:
    """Cells of a table row: split on runs of 2+ spaces, else at the border's column starts."""
    cells = re.split(r" {2,}", line.strip())
    if len(cells) == len(starts):
        return cells
    bounds = [*starts[1:], len(line) + 1]
    return [line[a:b].strip() for a, b in zip(starts, bounds)]


def _simple_tables(text: str) -> str:
    """reST simple tables (border, header, border, rows, border) as Markdown tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        border = lines[i]
        ends = [j for j in range(i + 1, len(lines)) if lines[j] == border][:2]
        if not _BORDER.match(border) or len(ends) < 2 or ends[0] != i + 2:
            out.append(border)
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", border)]
        header = _cells(lines[i + 1], starts)
        rows = [_cells(line, starts) for line in lines[i + 3 : ends[1]] if line.strip()]
        out += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        out.append("")
        i = ends[1] + 1
    return "\n".join(out)


def rst_to_markdown(text: str) -> str:
    """``text`` as Markdown: roles as inline code, no ``::`` markers, simple tables converted."""
    text = _ROLE.sub(_replace, text)
    text = _LITERAL_ALONE.sub("", text)
    return _simple_tables(_LITERAL_END.sub(r"\1:", text))


class RstToMarkdown(griffe.Extension):
    """Rewrite the docstring of every loaded object (modules, classes, functions, attributes)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
