"""Neural recordings: the MNE family (``mne/``: MEG, EEG, iEEG, EMG, fNIRS, source space), fMRI and spikes."""

from .channel_sets import ChannelOutput
from .fmri import FmriExtractor
from .fmri_spaces import FmriSpace
from .mne import (
    ChannelPositions,
    EcgExtractor,
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
    "ChannelPositions",
    "EcgExtractor",
    "FmriSpace",
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
