"""Real-time streaming: an extractor config applied online, sample for sample as offline.

* :mod:`~neuralset.streaming.source` - chunks of samples with timestamps, markers on their own
  stream, an in-process replay (:class:`ArraySource`);
* :mod:`~neuralset.streaming.causal` - causal preprocessing with state carried across chunks
  (:class:`OnlinePreprocessor`);
* :mod:`~neuralset.streaming.windows` - windows cut as soon as their last sample arrives, and
  their typed batches (torch or JAX);
* :mod:`~neuralset.streaming.online` - :class:`OnlinePipeline`, the three together;
* :mod:`~neuralset.streaming.lsl` - Lab Streaming Layer through ``mne-lsl``, kept on the
  loopback interface.

Names are imported lazily (no scipy, torch, jax or mne at import).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "StreamInfo": "neuralset.streaming.source",
    "Chunk": "neuralset.streaming.source",
    "Marker": "neuralset.streaming.source",
    "ArraySource": "neuralset.streaming.source",
    "markers_from_events": "neuralset.streaming.source",
    "OnlinePreprocessor": "neuralset.streaming.causal",
    "SosFilter": "neuralset.streaming.causal",
    "Window": "neuralset.streaming.windows",
    "WindowEmitter": "neuralset.streaming.windows",
    "WindowOverrunError": "neuralset.streaming.windows",
    "to_batch": "neuralset.streaming.windows",
    "OnlinePipeline": "neuralset.streaming.online",
    "stored_scaling": "neuralset.streaming.online",
    "LslSource": "neuralset.streaming.lsl",
    "LslMarkers": "neuralset.streaming.lsl",
    "loopback_config": "neuralset.streaming.lsl",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
