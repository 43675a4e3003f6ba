"""Neural recordings: the MNE family (``mne/``: MEG, EEG, iEEG, EMG, fNIRS, source space), fMRI and spikes."""

from .channel_sets import ChannelOutput
from .fmri import FmriExtractor
from .mne import (
    EegExtractor,
    EegSourceExtractor,
    EmgExtractor,
    FnirsExtractor,
    IeegExtractor,
    MegExtractor,
    MegSourceExtractor,
    MneExtractor,
)
from .spikes import SpikesExtractor, bin_spikes

__all__ = [
    "ChannelOutput",
    "EegExtractor",
    "EegSourceExtractor",
    "EmgExtractor",
    "FmriExtractor",
    "FnirsExtractor",
    "IeegExtractor",
    "MegExtractor",
    "MegSourceExtractor",
    "MneExtractor",
    "SpikesExtractor",
    "bin_spikes",
]
