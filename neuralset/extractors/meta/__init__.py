"""Extractors built on other extractors: PCA, concatenation, crops, time aggregation, HRF.

Each wrapper is keyed by its inner extractors' keys and prepares them under their own keys, so
an inner extractor prepared alone is found in the store, never recomputed::

    wrapper.py      the shared base (keys, prepare, windows, time aggregation)
    pca.py          PCA fitted on the training events (sklearn), applied at read
    concat.py       several extractors stacked along the feature axis
    crop.py         a sub-window of each segment
    aggregate.py    time aggregation over the window (Aggregate) or the trigger event (ToStatic)
    hrf.py          convolution with a haemodynamic response on the fMRI grid (nilearn's models)
    runs.py         reading windows of per-run arrays a wrapper stored
"""

from .aggregate import Aggregate, ToStatic
from .concat import Concat
from .crop import Crop
from .hrf import HrfConvolve
from .pca import PCA
from .wrapper import Wrapper

__all__ = ["Aggregate", "Concat", "Crop", "HrfConvolve", "PCA", "ToStatic", "Wrapper"]
