"""Neural recordings: the MNE family (``mne/``: MEG, EEG, iEEG, EMG, fNIRS), fMRI and spikes."""

from .channel_sets import ChannelOutput
from .fmri import FmriExtractor
from .mne import (
    EegExtractor,
    EmgExtractor,
    FnirsExtractor,
    IeegExtractor,
    MegExtractor,
    MneExtractor,
)
from .spikes import SpikesExtractor, bin_spikes

__all__ = [
    "ChannelOutput",
    "EegExtractor",
    "EmgExtractor",
    "FmriExtractor",
    "FnirsExtractor",
    "IeegExtractor",
    "MegExtractor",
    "MneExtractor",
    "SpikesExtractor",
    "bin_spikes",
]
