"""Pytest plugin: a real single-node SLURM cluster on 127.0.0.1 for the tests that need one.

Register it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.slurm_cluster"]``
(or run pytest with ``-p tests.slurm_cluster``).

Fixtures
--------
``slurm_cluster`` (session)
    Runs ``scripts/slurm_up.sh`` once per session (munge + slurmctld + slurmd + slurmdbd/MariaDB,
    so ``sacct`` and therefore submitit see CANCELLED / TIMEOUT jobs), sets ``SLURM_CONF`` and yields
    a :class:`SlurmCluster` (``.partition`` "debug", ``.conf``, ``.slurm_dir``, ``.executor()``).
    At session end the last session using it runs ``scripts/slurm_down.sh`` (sessions, pytest-xdist
    workers included, hold leases under a file lock), unless the cluster had been started by hand
    (it is then left running) or ``NEURALSET_SLURM_KEEP=1``.
    Skips when the cluster cannot be started (not root, no apt-get for missing packages, bring-up
    failure: the reason holds the tail of the log); with ``CI=true`` it fails instead.
``submitit_folder`` (function)
    A fresh, empty folder for submitit logs/pickles of one test.

Tests using ``slurm_cluster`` get the ``slurm`` marker automatically (``-m "not slurm"`` skips them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import platform
import shutil
import subprocess
import tempfile
import time
import typing as tp
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DEFAULT_SLURM_DIR = "/tmp/neuralset-slurm"
PARTITION = "debug"
UP_TIMEOUT_S = 240
DOWN_TIMEOUT_S = 60
_LOG_TAIL_LINES = 30


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
    """Handle on the running test cluster, as yielded by the ``slurm_cluster`` fixture."""

    partition: str  # "debug", the only (and default) partition
    conf: Path  # slurm.conf, also exported as os.environ["SLURM_CONF"]
    slurm_dir: Path  # state, logs (slurm_dir / "log"), pidfiles, MariaDB datadir
    log: Path  # output of scripts/slurm_up.sh
    bringup_s: float  # wall time of scripts/slurm_up.sh in this session
    reused: bool  # True if the cluster was already up before this session

    def __getitem__(self, key: str) -> tp.Any:  # dict-style access: cluster["partition"]
        return getattr(self, key)

    def executor(self, folder: str | Path, **parameters: tp.Any) -> tp.Any:
        """A ``submitit.AutoExecutor`` bound to this cluster's partition (never the local fallback)."""
        import submitit

        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        ex.update_parameters(slurm_partition=self.partition, **parameters)
        return ex


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> tp.NoReturn:
    """Skip (locally) or fail (CI=true: the SLURM tests must run there)."""
    reason = f"local SLURM cluster unavailable: {reason}"
    if _in_ci():
        pytest.fail(f"{reason}\n(CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "<no log>"
    return "\n".join(text[-lines:])


def _precheck() -> str | None:
    """Reason why bring-up cannot even be tried, or None."""
    if platform.system() != "Linux":
        return f"needs Linux, not {platform.system()}"
    if os.geteuid() != 0:
        return "needs root (starts munge/slurm/mariadb daemons, may apt-get install packages)"
    if shutil.which("bash") is None:
        return "bash not found"
    have_pkgs = all(shutil.which(cmd) for cmd in ("slurmctld", "slurmd", "slurmdbd", "munged"))
    if not have_pkgs and shutil.which("apt-get") is None:
        return "slurm packages are not installed and apt-get is unavailable"
    return None


def _registry(slurm_dir: Path) -> Path:
    """Per-cluster folder shared by all pytest sessions of the machine (outside slurm_dir, which
    ``slurm_down.sh --purge`` deletes): lock, one lease per session, "started-by-tests" flag."""
    return (
        Path(tempfile.gettempdir()) / f"neuralset-slurm-sessions{str(slurm_dir).replace('/', '_')}"
    )


@contextlib.contextmanager
def _locked(registry: Path) -> tp.Iterator[None]:
    registry.mkdir(parents=True, exist_ok=True)
    with (registry / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _live_sessions(registry: Path) -> list[int]:
    """pids of the sessions (pytest-xdist workers included) still using the cluster."""
    live = []
    for lease in registry.glob("session-*"):
        pid = int(lease.name.split("-", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            lease.unlink(missing_ok=True)  # that session died without teardown
            continue
        except PermissionError:
            pass
        live.append(pid)
    return live


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> tp.Iterator[SlurmCluster]:
    reason = _precheck()
    if reason is not None:
        _unavailable(reason)
    slurm_dir = Path(os.environ.get("SLURM_DIR", DEFAULT_SLURM_DIR))
    env = dict(os.environ, SLURM_DIR=str(slurm_dir))
    log = tmp_path_factory.getbasetemp() / "slurm_up.log"
    registry = _registry(slurm_dir)
    lease = registry / f"session-{os.getpid()}"
    flag = registry / "started-by-tests"
    t0 = time.monotonic()
    rc: int | str
    reused = False
    try:
        # concurrent sessions / xdist workers: one brings the cluster up, the others reuse it
        with _locked(registry), log.open("w") as out:
            try:
                rc = subprocess.run(
                    ["bash", str(SCRIPTS / "slurm_up.sh")],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=UP_TIMEOUT_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = f"timeout after {UP_TIMEOUT_S}s"
            reused = rc == 0 and "reusing it" in log.read_text(errors="replace")
            if rc == 0:
                lease.touch()
                if not reused:
                    flag.touch()  # started by tests: the last session using it stops it
    except OSError as e:
        rc = f"{type(e).__name__}: {e}"
    bringup_s = time.monotonic() - t0
    if rc != 0:
        _unavailable(f"scripts/slurm_up.sh failed ({rc}), log {log}:\n{_tail(log)}")
    conf = slurm_dir / "slurm.conf"
    previous_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    cluster = SlurmCluster(
        partition=PARTITION,
        conf=conf,
        slurm_dir=slurm_dir,
        log=log,
        bringup_s=bringup_s,
        reused=reused,
    )
    try:
        yield cluster
    finally:
        if previous_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous_conf
        with _locked(registry):
            lease.unlink(missing_ok=True)
            # stop it only if a test session started it (not someone by hand), nobody else
            # uses it any more and NEURALSET_SLURM_KEEP=1 is not set
            if (
                flag.exists()
                and not _live_sessions(registry)
                and os.environ.get("NEURALSET_SLURM_KEEP") != "1"
            ):
                subprocess.run(
                    ["bash", str(SCRIPTS / "slurm_down.sh")],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=DOWN_TIMEOUT_S,
                    check=False,
                )
                flag.unlink(missing_ok=True)


@pytest.fixture
def submitit_folder(tmp_path: Path) -> Path:
    """Fresh folder for one test's submitit files (use e.g. ``submitit_folder / "%j"``)."""
    folder = tmp_path / "submitit"
    folder.mkdir()
    return folder


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slurm: needs the local single-node SLURM cluster (tests/slurm_cluster.py)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slurm)
