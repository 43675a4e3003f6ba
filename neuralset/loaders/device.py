"""Batches delivered on the accelerator, copied while the previous step computes.

:class:`DeviceLoader` wraps the DataLoader of :meth:`SegmentDataset.loader
<neuralset.loaders.SegmentDataset.loader>` (``device=...``). A background thread takes the
DataLoader's batches (in pinned memory for CUDA: ``pin_memory=True`` is the default there),
starts their copies to the device with ``non_blocking=True`` on a side CUDA stream, and keeps
``prefetch`` of them ready. The training loop receives batches whose copy was queued before it
asked: its stream waits for that copy only (an event), never for the host. On CPU (``"cpu"``)
the same thread reads ahead, so reading overlaps the step there too.

:attr:`DeviceLoader.wait_s` and :attr:`DeviceLoader.batches` count how long the consumer waited
for data, so a training loop can report the fraction of its time spent waiting.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["DeviceLoader", "device_options"]

_DONE = object()


def device_options(device: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """DataLoader keyword arguments for batches bound to ``device``: pinned memory for CUDA.

    Raises a ``ValueError`` naming ``device`` when torch cannot parse it or does not see it
    (before any read or worker).
    """
    _check_device(device)
    out = dict(kwargs)
    if _device_type(device) == "cuda":
        out.setdefault("pin_memory", True)
    return out


def _check_device(device: Any) -> None:
    """``device`` is one torch knows and sees (a CUDA device needs a visible GPU)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"SegmentDataset.loader.device: {device!r} is not a torch device ({err}); pass "
            "'cpu', 'cuda', 'cuda:1' or a torch.device"
        ) from None
    if parsed.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (parsed.index or 0) >= n:
            raise ValueError(
                f"SegmentDataset.loader.device: {device!r}, but torch sees {n} CUDA device(s) "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}); "
                "pass device='cpu', or run where that GPU is visible"
            )


def _device_type(device: Any) -> str:
    return str(getattr(device, "type", device)).split(":", 1)[0]


class _Mover:
    """Moves a batch to the device: plain ``.to`` on CPU; a side stream and an event on CUDA."""

    def __init__(self, device: Any) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None

    def start(self, batch: Any) -> tuple[Any, Any]:
        """Start the copy (background thread): ``(batch on device, event or None)``."""
        if not self.cuda:
            return batch.to(self.device), None
        import torch

        with torch.cuda.stream(self.stream):
            moved = batch.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        return moved, event

    def finish(self, moved: Any, event: Any) -> Any:
        """Make the consumer's stream wait for the copy (consumer thread)."""
        if event is None:
            return moved
        import torch

        current = torch.cuda.current_stream(self.device)
        current.wait_event(event)
        moved.record_stream(current)  # its memory belongs to the side stream's allocations
        return moved


class DeviceLoader:
    """An iterable of batches already on ``device``, read and copied ``prefetch`` ahead.

    Parameters
    ----------
    loader
        An iterable of :class:`~neuralset.loaders.batch.Batch` (the DataLoader).
    device
        Target device (``"cuda"``, ``"cuda:0"``, ``"cpu"``, ``torch.device``).
    prefetch
        Batches read and copied ahead by a background thread (0: read when asked, in the
        calling thread).

    Attributes
    ----------
    wait_s
        Seconds the consumer spent waiting for batches (all iterations so far).
    batches
        Batches delivered so far.
    """

    def __init__(self, loader: Any, device: Any, *, prefetch: int = 2) -> None:
        if not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"DeviceLoader.prefetch: must be an int >= 0, got {prefetch!r}")
        self.loader = loader
        self.device = device
        self.prefetch = prefetch
        self.wait_s = 0.0
        self.batches = 0

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self) -> Any:
        """The dataset of the wrapped DataLoader."""
        return self.loader.dataset

    def __iter__(self) -> Iterator[Any]:
        mover = _Mover(self.device)
        if self.prefetch == 0:
            return self._inline(mover)
        return self._threaded(mover)

    def _inline(self, mover: _Mover) -> Iterator[Any]:
        it = iter(self.loader)
        while True:
            t0 = time.perf_counter()
            batch = next(it, _DONE)
            if batch is _DONE:
                return
            out = mover.finish(*mover.start(batch))
            self.wait_s += time.perf_counter() - t0
            self.batches += 1
            yield out

    def _threaded(self, mover: _Mover) -> Iterator[Any]:
        q: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        thread = threading.Thread(
            target=_produce,
            args=(self.loader, mover, q, stop),
            name="neuralset-device",
            daemon=True,
        )
        thread.start()
        try:
            while True:
                t0 = time.perf_counter()
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                out = mover.finish(*item)
                self.wait_s += time.perf_counter() - t0
                self.batches += 1
                yield out
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(loader: Any, mover: _Mover, q: queue.Queue[Any], stop: threading.Event) -> None:
    """Background thread: read batches, start their copies, queue them (then ``_DONE``)."""
    try:
        for batch in loader:
            if stop.is_set() or not _put(q, mover.start(batch), stop):
                return
    except BaseException as err:  # handed to the consumer, raised there
        _put(q, err, stop)
        return
    _put(q, _DONE, stop)
