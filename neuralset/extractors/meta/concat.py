"""Several extractors stacked into one tensor: :class:`Concat`.

Registered YAML kind: ``concat``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...config import ConfigError, config, register
from ...segments import Segments
from ...store import Store
from ..base import Extractor, OutOfBounds, Output
from .wrapper import Wrapper

__all__ = ["Concat"]


@register("concat")
@config
class Concat(Wrapper):
    """The outputs of several extractors concatenated along one feature axis.

    Every extractor is read on the same segments; each output's features are flattened and
    the flattened features are concatenated in the order given: ``(batch, sum of features)``
    for static outputs, ``(batch, sum of features, time)`` for dynamic ones (all dynamic
    extractors must share one ``frequency``, so the time axis is shared). With
    ``out_of_bounds="pad"`` the mask is the conjunction of the masks; with ``"drop"`` a segment
    dropped by any extractor is dropped.

    Each inner extractor keeps its own store entries (preparing a ``Concat`` prepares each of
    them under its own keys).

    Parameters
    ----------
    extractors
        Two or more extractors, all static or all dynamic at the same frequency.

    Examples
    --------
    >>> Concat(extractors=(WordLength(frequency=0.5), WordFrequency(frequency=0.5)))  # doctest: +SKIP
    """

    inner_fields: ClassVar[tuple[str, ...]] = ("extractors",)

    extractors: tuple[Extractor, ...] = ()

    def _check(self) -> None:
        if len(self.extractors) < 2:
            raise ConfigError(
                f"Concat.extractors: give at least two extractors to concatenate, got {len(self.extractors)}"
            )
        outputs = {e.output for e in self.extractors}
        if len(outputs) > 1:
            raise ConfigError(
                "Concat.extractors: mix static and dynamic outputs "
                f"({', '.join(f'{type(e).__name__}={e.output}' for e in self.extractors)}); "
                "make them all static or all dynamic"
            )
        if outputs == {"dynamic"}:
            freqs = [e.frequency for e in self.extractors]
            if None in freqs or len(set(freqs)) > 1:
                raise ConfigError(
                    "Concat.extractors: dynamic outputs need one shared frequency, got "
                    f"{', '.join(f'{type(e).__name__}={e.frequency}' for e in self.extractors)}; "
                    "set the same frequency on each"
                )

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        outs = [e.read(segments, store, out_of_bounds=out_of_bounds) for e in self.extractors]
        n = len(segments)
        keep = np.ones(n, dtype=bool)
        for out in outs:
            if out.keep is not None:
                keep &= out.keep
        dynamic = self.output == "dynamic"
        parts, masks = [], []
        for out in outs:
            data = out.data
            if out.keep is not None:  # rows of this output are the segments it kept
                data = data[keep[out.keep]]
            elif not keep.all():
                data = data[keep]
            flat_shape: tuple[Any, ...] = (
                (len(data), -1, data.shape[-1]) if dynamic else (len(data), -1)
            )
            parts.append(np.asarray(data, dtype=np.float32).reshape(flat_shape))
            if out.mask is not None:
                masks.append(out.mask)
        data = np.concatenate(parts, axis=1)
        if out_of_bounds == "drop":
            return Output(data=data, keep=keep)
        if out_of_bounds == "pad" and masks:
            mask = masks[0].copy()
            for m in masks[1:]:
                mask &= m if m.shape == mask.shape else m.all(axis=1, keepdims=True)
            return Output(data=data, mask=mask)
        return Output(data=data)
