"""Lab Streaming Layer through ``mne-lsl``: stream sources, kept on the loopback interface.

:class:`LslSource` reads a data stream (``mne_lsl.lsl.StreamInlet.pull_chunk``) as
:class:`~neuralset.streaming.source.Chunk` objects; :class:`LslMarkers` reads a marker stream
(e.g. the ``<name>-annotations`` stream of ``mne_lsl.player.PlayerLSL``) as
:class:`~neuralset.streaming.source.Marker` objects. A recording replayed with ``PlayerLSL``
and read back with them feeds an :class:`~neuralset.streaming.online.OnlinePipeline`.

Network: liblsl discovers streams with UDP multicast and broadcast by default. Tests,
benchmarks and any use on shared machines should confine it to the loopback interface: call
:func:`configure_loopback` before ``mne_lsl`` is first imported. It writes
:data:`LOOPBACK_CONFIG` (``ResolveScope = machine``: discovery queries only to 127.0.0.1, TTL
0, no IPv6, multicast responders bound to 127.0.0.1, known peer 127.0.0.1) and points
``LSLAPICFG`` at it. liblsl still binds its TCP data and UDP time servers to every interface
(they answer requests, and send nothing by themselves); the project's tests additionally run
LSL in a network namespace that has only a loopback interface (:func:`isolated_command`,
:func:`loopback_up`).

Note: ``PlayerLSL`` timestamps an annotation one sample period before the data sample it
marks (it stamps annotations from the time of the previous chunk's last sample);
``LslMarkers(..., shift=1 / sfreq)`` corrects it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .source import Chunk, Marker, StreamInfo

__all__ = [
    "LOOPBACK_CONFIG",
    "loopback_config",
    "configure_loopback",
    "isolated_command",
    "loopback_up",
    "LslSource",
    "LslMarkers",
]

#: liblsl configuration that keeps discovery on 127.0.0.1 (see the module docstring).
LOOPBACK_CONFIG = """\
[ports]
IPv6 = disable

[multicast]
ResolveScope = machine
ListenAddress = 127.0.0.1
MachineAddresses = {127.0.0.1}
AddressesOverride = {127.0.0.1}
TTLOverride = 0

[lab]
KnownPeers = {127.0.0.1}
SessionID = neuralset-loopback
"""


def loopback_config(folder: str | Path) -> Path:
    """Write :data:`LOOPBACK_CONFIG` as ``folder/lsl_api.cfg``; return its path."""
    path = Path(folder) / "lsl_api.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOOPBACK_CONFIG)
    return path


def configure_loopback(folder: str | Path) -> Path:
    """Make liblsl use the loopback configuration (``LSLAPICFG``); call before importing ``mne_lsl``.

    Raises
    ------
    RuntimeError
        When ``mne_lsl`` was imported already: liblsl may have read another configuration.
    """
    path = loopback_config(folder)
    if "mne_lsl.lsl" in sys.modules and os.environ.get("LSLAPICFG") != str(path):
        raise RuntimeError(
            "configure_loopback: mne_lsl was imported before liblsl could be confined to the "
            "loopback interface; call configure_loopback first (or set LSLAPICFG to a file "
            "with neuralset.streaming.lsl.LOOPBACK_CONFIG before starting Python)"
        )
    os.environ["LSLAPICFG"] = str(path)
    return path


def loopback_up() -> None:
    """Bring the loopback interface up (in a new network namespace it starts down).

    Run first thing in a process started by :func:`isolated_command` (Linux only: the
    ``SIOCGIFFLAGS``/``SIOCSIFFLAGS`` ioctls on ``lo``).
    """
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))  # SIOCSIFFLAGS: IFF_UP


def isolated_command(argv: list[str]) -> list[str] | None:
    """``argv`` run in a new network namespace whose only interface is loopback.

    Uses ``unshare -rn`` (a user and a network namespace: no privilege needed where the kernel
    allows unprivileged user namespaces). The child must call :func:`loopback_up` first.
    Returns None when such a namespace cannot be made here (then LSL must not run).
    """
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return None
    probe = (
        "import socket\n"
        "from neuralset.streaming.lsl import loopback_up\n"
        "loopback_up()\n"
        "print(sorted(name for _, name in socket.if_nameindex()))"
    )
    try:
        out = subprocess.run(
            ["unshare", "-rn", sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or out.stdout.strip() != "['lo']":
        return None
    return ["unshare", "-rn", *argv]


def _resolve(name: str, timeout: float) -> Any:
    from mne_lsl.lsl import resolve_streams

    found = resolve_streams(timeout=timeout, name=name)
    if not found:
        raise TimeoutError(f"no LSL stream named {name!r} found within {timeout:g} s")
    return found[0]


def _pull(inlet: Any) -> tuple[Any, Any]:
    """``inlet.pull_chunk(timeout=0)``, or ``(None, None)`` once the outlet is gone."""
    from mne_lsl.lsl._utils import LostError

    try:
        return inlet.pull_chunk(timeout=0.0)
    except LostError:
        return None, None


class LslSource:
    """Chunks of an LSL data stream.

    Parameters
    ----------
    name
        Name of the LSL stream.
    timeout
        Seconds to wait for the stream to appear.
    idle
        Stop iterating after this many seconds without a sample (the stream ended).
    max_samples
        Stop after this many samples (``None``: until idle).
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: float = 10.0,
        idle: float = 1.0,
        max_samples: int | None = None,
    ) -> None:
        from mne_lsl.lsl import StreamInlet

        self.name = name
        self.idle, self.max_samples = float(idle), max_samples
        self.inlet = StreamInlet(_resolve(name, timeout), recover=False)
        self.inlet.open_stream(timeout=timeout)
        # the full stream info (with channel names and types) comes with the open inlet
        self.info = StreamInfo.from_mne(self.inlet.get_sinfo(timeout=timeout).get_channel_info())

    def __iter__(self) -> Iterator[Chunk]:
        received = 0
        last = time.perf_counter()
        while self.max_samples is None or received < self.max_samples:
            data, stamps = _pull(self.inlet)
            if data is None:  # the outlet is gone: the stream ended
                return
            now = time.perf_counter()
            if len(stamps) == 0:
                if now - last > self.idle:
                    return
                time.sleep(0.0005)
                continue
            last = now
            # mne-lsl reuses its pull buffers: copy before the next pull overwrites them
            block = np.array(data, dtype=np.float64).T
            yield Chunk(block, received, np.array(stamps, dtype=np.float64), now)
            received += block.shape[1]

    def close(self) -> None:
        """Close the inlet."""
        self.inlet.close_stream()


class LslMarkers:
    """Markers of an LSL marker stream (one-hot ``PlayerLSL`` annotations or strings).

    Parameters
    ----------
    name
        Name of the marker stream (``"<player name>-annotations"`` for ``PlayerLSL``).
    timeout
        Seconds to wait for the stream to appear.
    shift
        Seconds added to every timestamp (``1 / sfreq`` puts ``PlayerLSL`` annotations on
        the time of the sample they mark; see the module docstring).
    type
        Event type of the markers (``"Word"``), which a trigger segmenter's ``triggers``
        select on; ``""`` leaves them untyped (an ``OnlinePipeline`` with trigger windows
        then refuses them).
    """

    def __init__(
        self, name: str, *, timeout: float = 10.0, shift: float = 0.0, type: str = ""
    ) -> None:
        from mne_lsl.lsl import StreamInlet

        self.shift, self.type = float(shift), str(type)
        self.inlet = StreamInlet(_resolve(name, timeout), recover=False)
        self.inlet.open_stream(timeout=timeout)
        self.names = list(self.inlet.get_sinfo(timeout=timeout).get_channel_names() or [])

    def poll(self) -> list[Marker]:
        """The markers received since the last call (none once the stream has ended)."""
        data, stamps = _pull(self.inlet)
        if data is None:
            return []
        out = []
        if isinstance(data, list):  # string stream: one list of values per channel
            values = data[0] if data else []
            return [
                Marker(float(t) + self.shift, str(v), self.type) for t, v in zip(stamps, values)
            ]
        for row, stamp in zip(np.array(data), np.array(stamps)):
            hot = np.flatnonzero(row != 0)
            value = self.names[int(hot[0])] if len(hot) and self.names else ""
            out.append(Marker(float(stamp) + self.shift, value, self.type))
        return out

    def close(self) -> None:
        """Close the inlet."""
        self.inlet.close_stream()
