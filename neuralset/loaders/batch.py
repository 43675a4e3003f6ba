# ruff: noqa: F821, UP037 - jaxtyping dimension strings such as "batch" are not forward references
"""Typed batches: the arrays of a batch of segments plus light per-segment metadata.

A :class:`Batch` maps extractor names to tensors whose leading axis is the batch (``batch["meg"]``
is ``Float[Tensor, "batch *features time"]`` for a dynamic extractor), carries the padding masks
of extractors read with ``out_of_bounds="pad"`` (``batch.mask["meg"]``, ``Bool[Tensor, "batch
time"]``) and a few small arrays describing the segments: ``start``, ``duration``, ``timeline``
(code), ``trigger`` (event row) and ``index`` (position in the dataset), and, per dynamic
extractor, the ``times`` of its samples in seconds (``batch.times["meg"]``, like MNE's
``epochs.times``: relative to the trigger onset when every segment of the dataset starts at the
same offset from its trigger, else to the window start). It never carries the events table, so a batch coming back from a DataLoader worker pickles in a few kB plus its
arrays.

Shapes and dtypes are declared with jaxtyping and checked at construction (one jaxtyping memo
per batch, so that ``batch`` and per-extractor ``time`` dimensions must agree across fields). A
torch batch never imports jax, and a numpy (JAX-iterator) batch never imports torch. Switch the checks off for speed with
``set_typecheck(False)`` or the environment variable ``NEURALSET_TYPECHECK=0``.

``torch`` is imported only when a batch is built.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..extractors.base import default_layout  # re-exported: the layout vocabulary of batches

if TYPE_CHECKING:  # annotations only; torch is imported lazily at runtime
    from jaxtyping import Bool, Float, Float64, Int
    from torch import Tensor

__all__ = [
    "Batch",
    "BatchTypeError",
    "set_typecheck",
    "typecheck_enabled",
    "default_layout",
    "split_layout",
    "DTYPE_KINDS",
    "META_FIELDS",
]

#: Metadata arrays carried by every batch (also reserved: cannot name an extractor).
META_FIELDS = ("start", "duration", "timeline", "trigger", "index")

_TYPECHECK: bool | None = None  # None: follow $NEURALSET_TYPECHECK
_PASSED: set[Any] = set()  # signatures (types, shapes, dtypes, layout) that passed the checks


class BatchTypeError(TypeError):
    """A batch field has the wrong shape or dtype; the message names the field."""


class _MetadataError(Exception):
    """A metadata array of the wrong type, dtype or length (re-raised as BatchTypeError)."""


def set_typecheck(enabled: bool | None) -> None:
    """Switch shape/dtype checks of batches on or off (``None``: follow the environment).

    The environment variable ``NEURALSET_TYPECHECK=0`` switches them off by default.

    Parameters
    ----------
    enabled
        True or False; ``None``: follow the environment variable.
    """
    global _TYPECHECK
    _TYPECHECK = enabled


def typecheck_enabled() -> bool:
    """Whether batches check their shapes and dtypes at construction."""
    if _TYPECHECK is not None:
        return _TYPECHECK
    return os.environ.get("NEURALSET_TYPECHECK", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


#: dtype kinds a layout may start with (jaxtyping's dtype classes); ``Float`` when omitted.
DTYPE_KINDS = ("Float", "Int", "Integer", "Real", "Num", "Bool", "Shaped")


def split_layout(layout: str) -> tuple[str, str]:
    """``(dtype kind, dims)`` of a layout string (kind ``"Float"`` when not given)."""
    head, _, rest = layout.strip().partition(" ")
    if head in DTYPE_KINDS:
        return head, rest.strip()
    return "Float", layout.strip()


def _describe(value: Any) -> str:
    shape = tuple(getattr(value, "shape", ()))
    dtype = getattr(value, "dtype", type(value).__name__)
    return f"{type(value).__name__} of shape {shape} and dtype {dtype}"


def _jaxtyping_without_jax() -> None:
    """Keep jaxtyping's decorator from importing jax in a process that has not imported it.

    The first ``jaxtyped(...)`` call imports ``jax._src.traceback_util`` only to hide
    jaxtyping's own frames from jax tracebacks; in a torch (or numpy) pipeline that import costs
    about 0.6 s on the first batch and loads a framework the pipeline never uses. When jax is
    already loaded (a JAX pipeline) the hook is left alone.
    """
    if "jax" in sys.modules:
        return
    from jaxtyping import _decorator

    if getattr(_decorator, "_tb_flag", False):
        setattr(_decorator, "_tb_flag", False)  # noqa: B010 - a module flag, not a hook


@functools.lru_cache(maxsize=4)
def _checker(array_type: type) -> Callable[..., None]:
    """A jaxtyped function validating the fields of a batch (one dimension memo per call)."""
    import jaxtyping

    _jaxtyping_without_jax()
    from jaxtyping import Bool, Float64, Int, jaxtyped

    Arr = array_type
    meta_kinds: dict[str, Any] = {
        "start": Float64,
        "duration": Float64,
        "timeline": Int,
        "trigger": Int,
        "index": Int,
    }
    meta_types: dict[str, Any] = {name: kind[Arr, "batch"] for name, kind in meta_kinds.items()}

    @jaxtyped(typechecker=None)  # one dimension memo for the metadata and every field
    def check(
        meta: dict[str, Any],
        data: dict[str, Any],
        mask: dict[str, Any],
        layout: dict[str, str],
        times: dict[str, Any],
    ) -> None:
        for name, expected in meta_types.items():
            if not isinstance(meta.get(name), expected):
                raise _MetadataError(
                    f"{name}: expected {meta_kinds[name].__name__}[{Arr.__name__}, 'batch'] "
                    "with the batch size of the other fields"
                )
        # every field is checked in the same memo, so "batch" and "*_time" dims must agree
        for name, value in data.items():
            kind, dims = split_layout(layout.get(name, f"batch *{name}_features"))
            if not isinstance(value, getattr(jaxtyping, kind)[Arr, dims]):
                raise BatchTypeError(
                    f"Batch field {name!r}: expected {kind}[{Arr.__name__}, {dims!r}] "
                    f"(batch axis first), got {_describe(value)}"
                )
        for name, value in mask.items():
            dims = split_layout(layout.get(name, ""))[1]
            last = (
                dims.split()[-1]
                if dims.split() and dims.split()[-1].endswith("time")
                else f"{name}_mask_width"
            )
            mdims = f"batch {last}"
            if not isinstance(value, Bool[Arr, mdims]):  # type: ignore[misc,arg-type]
                raise BatchTypeError(
                    f"Batch mask {name!r}: expected Bool[{Arr.__name__}, {mdims!r}], got {_describe(value)}"
                )
        for name, value in times.items():
            tdims = split_layout(layout.get(name, ""))[1].split()
            tdim = tdims[-1] if tdims and tdims[-1].endswith("time") else f"{name}_time"
            if not isinstance(value, Float64[Arr, tdim]):  # type: ignore[misc,arg-type]
                raise BatchTypeError(
                    f"Batch times {name!r}: expected Float64[{Arr.__name__}, {tdim!r}] (one time "
                    f"per sample of the field), got {_describe(value)}"
                )

    return check


def run_check(
    array_type: type,
    data: Mapping[str, Any],
    mask: Mapping[str, Any],
    meta: Mapping[str, Any],
    layout: Mapping[str, str],
    times: Mapping[str, Any] | None = None,
) -> None:
    """Check a batch's fields (shared by :class:`Batch` and the JAX batch).

    The checks depend only on the fields' types, shapes and dtypes: a signature that passed
    once is remembered, so a stream of same-shaped batches pays one dictionary lookup each.
    """
    times = times or {}
    unknown = set(mask) - set(data)
    if unknown:
        raise BatchTypeError(f"Batch masks {sorted(unknown)} have no matching data field")
    unknown = set(times) - set(data)
    if unknown:
        raise BatchTypeError(f"Batch times {sorted(unknown)} have no matching data field")
    try:
        signature = (
            array_type,
            tuple((k, type(v), tuple(v.shape), v.dtype) for k, v in meta.items()),
            tuple((k, type(v), tuple(v.shape), v.dtype) for k, v in data.items()),
            tuple((k, type(v), tuple(v.shape), v.dtype) for k, v in mask.items()),
            tuple((k, type(v), tuple(v.shape), v.dtype) for k, v in times.items()),
            tuple(layout.items()),
        )
    except AttributeError:  # not arrays: let the checker say what is wrong
        signature = None
    if signature is not None and signature in _PASSED:
        return
    try:
        _checker(array_type)(dict(meta), dict(data), dict(mask), dict(layout), dict(times))
    except BatchTypeError:
        raise
    except _MetadataError as err:
        fields = ", ".join(f"{k}: {_describe(v)}" for k, v in meta.items())
        raise BatchTypeError(
            f"Batch metadata does not match its declared types (start/duration float64, "
            f"timeline/trigger/index integer, one value per segment): {fields}\n{err}"
        ) from None
    if signature is not None:
        if len(_PASSED) > 4096:
            _PASSED.clear()
        _PASSED.add(signature)


class Batch(Mapping[str, "Tensor"]):
    """The tensors of a batch of segments, keyed by extractor name.

    Parameters
    ----------
    data
        ``{extractor name: tensor}``; each ``Float[Tensor, "batch ..."]``; dynamic outputs
        ``Float[Tensor, "batch *features time"]``.
    start, duration
        ``Float64[Tensor, "batch"]``: window start and duration (s).
    timeline
        ``Int[Tensor, "batch"]``: timeline code (index into the events' timeline categories).
    trigger
        ``Int[Tensor, "batch"]``: row of the trigger event in the events table (-1: none).
    index
        ``Int[Tensor, "batch"]``: position of each segment in its dataset.
    mask
        ``{extractor name: Bool[Tensor, "batch time"]}`` for outputs read with
        ``out_of_bounds="pad"`` (True where samples are real).
    layout
        jaxtyping dimension string per extractor (see :func:`default_layout`).
    times
        ``{extractor name: Float64[Tensor, "time"]}`` for dynamic outputs: the time of each
        sample in seconds (relative to the trigger onset, or to the window start).
    check
        Check shapes and dtypes (also subject to :func:`set_typecheck`).

    Examples
    --------
    >>> import torch
    >>> b = Batch(
    ...     {"meg": torch.zeros(2, 3, 5)},
    ...     start=torch.zeros(2, dtype=torch.float64), duration=torch.ones(2, dtype=torch.float64),
    ...     timeline=torch.zeros(2, dtype=torch.int32), trigger=torch.arange(2),
    ...     index=torch.arange(2), layout={"meg": "batch channels time"})
    >>> b["meg"].shape, b.size
    (torch.Size([2, 3, 5]), 2)
    """

    __slots__ = (
        "data",
        "mask",
        "start",
        "duration",
        "timeline",
        "trigger",
        "index",
        "layout",
        "times",
    )

    data: dict[str, Float[Tensor, "batch ..."]]
    mask: dict[str, Bool[Tensor, "batch time"]]
    start: Float64[Tensor, "batch"]
    duration: Float64[Tensor, "batch"]
    timeline: Int[Tensor, "batch"]
    trigger: Int[Tensor, "batch"]
    index: Int[Tensor, "batch"]
    layout: dict[str, str]
    times: dict[str, Float64[Tensor, "time"]]

    def __init__(
        self,
        data: Mapping[str, Float[Tensor, "batch ..."]],
        *,
        start: Float64[Tensor, "batch"],
        duration: Float64[Tensor, "batch"],
        timeline: Int[Tensor, "batch"],
        trigger: Int[Tensor, "batch"],
        index: Int[Tensor, "batch"],
        mask: Mapping[str, Bool[Tensor, "batch time"]] | None = None,
        layout: Mapping[str, str] | None = None,
        times: Mapping[str, Float64[Tensor, "time"]] | None = None,
        check: bool = True,
    ) -> None:
        self.data = dict(data)
        self.times = dict(times or {})
        self.mask = dict(mask or {})
        self.start = start
        self.duration = duration
        self.timeline = timeline
        self.trigger = trigger
        self.index = index
        self.layout = dict(layout or {})
        if check and typecheck_enabled():
            import torch

            run_check(
                torch.Tensor, self.data, self.mask, self.metadata_tensors(), self.layout, self.times
            )

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_numpy(
        cls,
        arrays: Mapping[str, Any],
        *,
        layout: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Batch:
        """Build a batch from numpy arrays without copying (``torch.from_numpy``).

        ``arrays`` holds ``data``, ``mask`` and ``times`` dicts plus the :data:`META_FIELDS` arrays (the
        form returned by :meth:`SegmentDataset.read <neuralset.loaders.SegmentDataset.read>`).
        The shapes are checked on the numpy arrays (the tensors share their shapes and
        dtypes), where reading them costs a fraction of what it costs on tensors.
        """
        import torch

        def array(a: Any) -> np.ndarray:
            a = np.asarray(a)
            if not a.flags.writeable:  # torch warns on read-only arrays; the copy is small
                a = a.copy()
            return a

        data = {k: array(v) for k, v in arrays["data"].items()}
        mask = {k: array(v) for k, v in arrays.get("mask", {}).items()}
        times = {k: array(v) for k, v in arrays.get("times", {}).items()}
        meta = {k: array(arrays[k]) for k in META_FIELDS}
        if check and typecheck_enabled():
            run_check(np.ndarray, data, mask, meta, layout or {}, times)
        tensor = torch.from_numpy
        return cls(
            {k: tensor(v) for k, v in data.items()},
            mask={k: tensor(v) for k, v in mask.items()},
            times={k: tensor(v) for k, v in times.items()},
            layout=layout,
            check=False,
            **{k: tensor(v) for k, v in meta.items()},
        )

    @classmethod
    def concat(cls, batches: Sequence[Batch], *, check: bool = True) -> Batch:
        """Concatenate batches along the batch axis (same fields)."""
        import torch

        if not batches:
            raise ValueError("Batch.concat needs at least one batch")
        first = batches[0]
        for b in batches[1:]:
            if set(b.data) != set(first.data) or set(b.mask) != set(first.mask):
                raise ValueError(
                    f"cannot concatenate batches with fields {sorted(first.data)} and {sorted(b.data)}"
                )
        return cls(
            {k: torch.cat([b.data[k] for b in batches]) for k in first.data},
            mask={k: torch.cat([b.mask[k] for b in batches]) for k in first.mask},
            times=first.times,
            layout=first.layout,
            check=check,
            **{k: torch.cat([getattr(b, k) for b in batches]) for k in META_FIELDS},
        )

    # -- mapping ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Tensor:
        if not isinstance(name, str):
            raise TypeError(
                f"a Batch is keyed by extractor name ({', '.join(self.data)}), got {name!r}; "
                "with a torch DataLoader pass collate_fn=dataset.collate (or use dataset.loader())"
            )
        try:
            return self.data[name]
        except KeyError:
            raise KeyError(
                f"no field {name!r} in this batch; fields: {', '.join(self.data)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def size(self) -> int:
        """Number of segments in the batch."""
        return int(self.start.shape[0])

    def metadata_tensors(self) -> dict[str, Tensor]:
        """The metadata tensors by name (start, duration, timeline, trigger, index)."""
        return {k: getattr(self, k) for k in META_FIELDS}

    def metadata(self) -> dict[str, np.ndarray]:
        """The metadata as small numpy arrays (what identifies the segments of the batch)."""
        return {k: getattr(self, k).numpy() for k in META_FIELDS}

    # -- devices ---------------------------------------------------------------------------
    def _map(self, fn: Callable[[Any], Any]) -> Batch:
        return Batch(
            {k: fn(v) for k, v in self.data.items()},
            mask={k: fn(v) for k, v in self.mask.items()},
            times={k: fn(v) for k, v in self.times.items()},
            layout=self.layout,
            check=False,
            **{k: fn(v) for k, v in self.metadata_tensors().items()},
        )

    def to(self, device: Any, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor moved to ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def record_stream(self, stream: Any) -> None:
        """Tell torch's CUDA allocator that every tensor is used on ``stream`` (see
        ``torch.Tensor.record_stream``; for batches copied on a side stream)."""
        for group in (self.data, self.mask, self.times, self.metadata_tensors()):
            for t in group.values():
                t.record_stream(stream)

    def pin_memory(self) -> Batch:
        """A copy in pinned memory (called by ``DataLoader(pin_memory=True)``)."""
        return self._map(lambda t: t.pin_memory())

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "times", {})  # batches pickled before ``times`` existed
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
            for k, v in self.data.items()
        )
        masks = f", masks: {', '.join(self.mask)}" if self.mask else ""
        return f"Batch(size={self.size}, {fields}{masks})"
