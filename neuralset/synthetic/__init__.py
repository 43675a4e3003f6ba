"""Synthetic data for tests, demos and benchmarks (outside the library's data flow).

:class:`SyntheticStudy` writes a small study in real formats (FIF, BrainVision, EDF, SNIRF,
NWB, NIfTI, wav, png) with signals of known value, and the debug extractors
(:class:`NoopExtractor`, :class:`SleepExtractor`) stand for real work when measuring the
execution machinery. Names are imported lazily.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "SyntheticStudy": "neuralset.synthetic.study",
    "SYNTHETIC_WRITERS": "neuralset.synthetic.study",
    "VOCABULARY": "neuralset.synthetic.study",
    "EEG_NAMES": "neuralset.synthetic.study",
    "write_meg": "neuralset.synthetic.meeg",
    "write_eeg": "neuralset.synthetic.meeg",
    "response_kernel": "neuralset.synthetic.meeg",
    "atomic_save_raw": "neuralset.synthetic.meeg",
    "write_anatomy": "neuralset.synthetic.anatomy",
    "subject_trans": "neuralset.synthetic.anatomy",
    "NoopExtractor": "neuralset.synthetic.debug_extractors",
    "SleepExtractor": "neuralset.synthetic.debug_extractors",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
