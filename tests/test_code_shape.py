"""House rules of the library's code, checked on its syntax tree.

* Size: no module over 500 lines, no function over 60. A function's length counts its lines
  from ``def`` to its last line, leaving out its docstring (documentation is asked for, not
  counted against it) and the classes it defines (measured by their own methods); a module's
  counts every line. A function past the limit is usually two ideas: split it (helpers named
  for what they do) rather than raise the limit. ``python tests/test_code_shape.py`` lists the
  largest ones.
* No instance's ``__dict__`` is read or written: caches live in a :class:`neuralset.memo.Memo`
  (an event index's ``memo``, or :func:`neuralset.memo.frozen_memo` for frozen configs). Only
  a class's own namespace may be read (``cls.__dict__``, ``type(x).__dict__``).
* The extractor interface is declared (``neuralset.extractors.base``), never probed with
  ``getattr(extractor, "hook", default)``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neuralset"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def module_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _docstring_lines(node: ast.AST) -> set[int]:
    body = getattr(node, "body", [])
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        assert first.end_lineno is not None
        return set(range(first.lineno, first.end_lineno + 1))
    return set()


def function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, length)`` of every function in ``path``.

    The length leaves out the docstring and the classes defined inside the function (a class
    built on first use is measured by its own methods).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                lines = set(range(child.lineno, child.end_lineno + 1)) - _docstring_lines(child)
                for inner in ast.walk(child):
                    if isinstance(inner, ast.ClassDef):
                        assert inner.end_lineno is not None
                        lines -= set(range(inner.lineno, inner.end_lineno + 1))
                out.append((f"{prefix}{child.name}", child.lineno, len(lines)))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_modules_are_at_most_500_lines() -> None:
    too_long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in sources()
        if (n := module_lines(p)) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them): {too_long}"


def test_functions_are_at_most_60_lines() -> None:
    too_long = {
        f"{p.relative_to(PACKAGE.parent)}:{line} {name}": n
        for p in sources()
        for name, line, n in function_lengths(p)
        if n > MAX_FUNCTION_LINES
    }
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines (split them): {too_long}"


#: Declared attributes of the extractor interface: read them, never probe them with getattr.
HOOKS = {
    "requires_gpu",
    "output_dtype",
    "batch_layout",
    "batch_size",
    "prepare_key",
    "label_dtype",
    "check_segments",
    "needs_event_in_every_segment",
    "output_channels",
    "vocabulary",
    "fit_key",
    "to_storage",
    "linked_entities",
}


def _a_class(node: ast.Attribute) -> bool:
    """Whether ``node`` is ``cls.__dict__`` / ``klass.__dict__`` / ``type(x).__dict__``: the
    namespace of a class (what it defines itself, not what it inherits), which is allowed."""
    owner = node.value
    if isinstance(owner, ast.Name):
        return owner.id in ("cls", "klass")
    return (
        isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "type"
    )


def test_no_dict_access_and_no_probed_hooks() -> None:
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr == "__dict__" and not _a_class(node):
                found.append(f"{where} __dict__")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in HOOKS
            ):
                found.append(f"{where} {node.func.id}(..., {node.args[1].value!r})")
    assert not found, found


def test_the_counter_counts_code_not_docstrings(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "class A:\n"
        "    def f(self):\n"
        '        """One\n\n        docstring.\n        """\n'
        "        x = 1\n"
        "        return x\n"
        "\n"
        "def g():\n"
        "    def inner():\n"
        "        pass\n"
        "    class Built:\n"
        "        def m(self):\n"
        "            return 1\n"
        "    return inner, Built\n"
    )
    assert function_lengths(source) == [
        ("A.f", 2, 3),
        ("g", 10, 4),
        ("g.inner", 11, 2),
        ("g.Built.m", 14, 2),
    ]
    assert module_lines(source) == 16


if __name__ == "__main__":  # list the largest functions and modules
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    funcs = [(n, f"{p.relative_to(PACKAGE.parent)}:{line} {name}") for p in sources() for name, line, n in function_lengths(p)]  # fmt: skip
    for n, where in sorted(funcs, reverse=True)[:limit]:
        print(f"{n:4d}  {where}")
    for p in sorted(sources(), key=module_lines, reverse=True)[:limit]:
        print(f"{module_lines(p):4d}  {p.relative_to(PACKAGE.parent)}")
