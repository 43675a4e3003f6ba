"""Pytest plugin: git-annex (Debian package) and DataLad (PyPI) for the fetch tests.

Register it from ``tests/conftest.py`` (``pytest_plugins``). The session fixture ``annex`` runs
``scripts/annex_up.sh`` once (it installs git-annex with apt-get when missing), checks that
``datalad`` imports, sets a git identity for the commits DataLad makes, and yields the path of
``git-annex``. It skips when git-annex cannot be installed here (not root, no apt-get, no network
to the Debian mirror), and FAILS instead under ``CI=true``, where the suite must exercise them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import typing as tp
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UP_TIMEOUT_S = 300


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> tp.NoReturn:
    reason = f"git-annex / DataLad unavailable: {reason}"
    if _in_ci():
        pytest.fail(f"{reason}\n(CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def annex(tmp_path_factory: pytest.TempPathFactory) -> tp.Iterator[Path]:
    """Path of ``git-annex`` (installed by ``scripts/annex_up.sh`` if needed); DataLad importable."""
    log = tmp_path_factory.getbasetemp() / "annex_up.log"
    try:
        with log.open("w") as out:
            rc = subprocess.run(
                ["bash", str(REPO / "scripts" / "annex_up.sh")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=UP_TIMEOUT_S,
                check=False,
            ).returncode
    except (OSError, subprocess.TimeoutExpired) as err:
        _unavailable(f"scripts/annex_up.sh did not run: {err}")
    exe = shutil.which("git-annex")
    if rc != 0 or exe is None:
        _unavailable(f"scripts/annex_up.sh failed (exit {rc}):\n{log.read_text()[-2000:]}")
    try:
        import datalad.api  # noqa: F401
    except ImportError as err:
        _unavailable(f"datalad does not import ({err}); it is in the `dev` extra")
    identity = {
        "GIT_AUTHOR_NAME": "neuralset tests",
        "GIT_AUTHOR_EMAIL": "tests@neuralset.invalid",
        "GIT_COMMITTER_NAME": "neuralset tests",
        "GIT_COMMITTER_EMAIL": "tests@neuralset.invalid",
    }
    previous = {k: os.environ.get(k) for k in identity}
    os.environ.update(identity)
    try:
        yield Path(exe)
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
