"""Local worker processes and the script that starts them.

``forkserver`` and ``spawn`` workers import the main script before running anything (that is
how they find the functions and classes it defines). A script that calls ``prepare`` at its
top level, without the ``if __name__ == "__main__":`` guard, would start again in every
worker, each starting workers in turn: :func:`check_main_guard` refuses at once instead,
saying where and what to write. It also refuses inside a worker that is still importing the
script (whatever the first check could not see).

:func:`watch_driver` runs in each worker (the pool's initializer): the worker ends as soon as
its driver process has exited, so that a driver killed outright (``kill -9``) leaves no worker
computing for nobody, and its claims are taken over by the next ``prepare`` at once.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from .claims import process_alive, process_token
from .executors import ExecutorError

__all__ = ["check_main_guard", "watch_driver", "unguarded_line"]

_FIX = (
    'put the script\'s work under the guard,\n\n    if __name__ == "__main__":\n        main()\n\n'
    "or prepare with InlineExecutor()"
)


def check_main_guard(who: str) -> None:
    """Raise :class:`~neuralset.execution.executors.ExecutorError` when local workers would
    run the calling script again.

    Parameters
    ----------
    who
        The executor named in the message.
    """
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ExecutorError(
            f"{who}: prepare() was called while this worker process imports the main script: "
            "the script runs prepare() at its top level, without an `if __name__ == "
            f'"__main__":` guard; {_FIX}'
        )
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:  # an interactive session or a notebook: nothing is imported again
        return
    line = unguarded_line(str(path), sys._getframe(1))
    if line is not None:
        raise ExecutorError(
            f"{who}: prepare() runs at the top level of the script {path} (line {line}) "
            'without an `if __name__ == "__main__":` guard; every worker process imports the '
            f"script, so each would run it again; {_FIX}"
        )


def unguarded_line(path: str, frame: FrameType | None) -> int | None:
    """The line of the script ``path`` now running at its top level outside an ``if __name__
    == "__main__":`` block, if the call stack from ``frame`` goes through one; else None."""
    target = os.path.abspath(path)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and os.path.abspath(code.co_filename) == target:
            try:
                mtime = os.stat(target).st_mtime_ns
            except OSError:
                return None
            guarded = _guarded_lines(target, mtime)
            return None if guarded is None or frame.f_lineno in guarded else frame.f_lineno
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=16)
def _guarded_lines(path: str, mtime: int) -> frozenset[int] | None:
    """Lines of the top-level ``if __name__ == "__main__":`` blocks of ``path`` (None when
    it cannot be parsed)."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    lines: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.end_lineno:
            lines.update(range(node.lineno, node.end_lineno + 1))
    return frozenset(lines)


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def watch_driver(driver_pid: int, period: float = 0.5) -> None:
    """Pool initializer: end this worker process once process ``driver_pid`` has exited."""
    token = process_token(driver_pid)

    def watch() -> None:
        while True:
            time.sleep(period)
            if not process_alive(driver_pid, token):
                os._exit(70)  # no cleanup: the driver that would collect the result is gone

    threading.Thread(target=watch, name="neuralset-driver-watch", daemon=True).start()
