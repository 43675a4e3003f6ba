"""The environment of the fresh processes that benchmarks time: Python's bytecode cache on.

An installed copy of neuralset imports its modules from their compiled ``.pyc`` files. A shell
that sets ``PYTHONDONTWRITEBYTECODE`` (some sandboxes and CI images do) makes every fresh
process compile neuralset's modules from source again, a cost no installed copy pays: about
5 ms at the first batch of a torch loader, for its own module alone. The benchmarks that time
fresh processes run them with :func:`env` after :func:`compile_package`.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path


def compile_package(root: Path | None = None) -> Path:
    """Write the bytecode cache of the ``neuralset`` that the children will import; its folder.

    ``compileall`` writes the cache even where ``PYTHONDONTWRITEBYTECODE`` is set. The package
    is ``root / "neuralset"`` for children started in ``root``, or else found the way this
    process finds it (``sys.path``, ``PYTHONPATH``).
    """
    if root is None:
        import neuralset  # lazy package: only its __init__ runs

        package = Path(neuralset.__file__).resolve().parent
    else:
        package = Path(root).resolve() / "neuralset"
    compileall.compile_dir(str(package), quiet=1)
    return package


def env(**extra: str) -> dict[str, str]:
    """This process's environment without ``PYTHONDONTWRITEBYTECODE``, plus ``extra``."""
    out = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out.update(extra)
    return out
