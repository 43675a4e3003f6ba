"""Recordings read and preprocessed with MNE-Python, one module per modality.

``base`` holds the shared pipeline (:class:`MneExtractor`), ``headers`` what is read of a file
before its data, ``preflight`` the checks of every recording before ``prepare``, ``read_steps``
the read-time steps (channel intersection, baseline), ``variable_channels`` the base of
modalities whose channels differ between recordings, ``causal`` the causal filters shared with
streaming, ``head_models`` and ``source`` the source-space extractors;
``ecg`` the electrocardiogram, ``positions`` the sensor positions of another extractor's channels.
"""

from .base import CHANNEL_TYPES, MneExtractor, RecordingMismatchError
from .ecg import EcgExtractor
from .emg import EmgExtractor
from .fnirs import FnirsExtractor
from .ieeg import IeegExtractor
from .meeg import EegExtractor, MegExtractor
from .positions import ChannelPositions
from .source import EegSourceExtractor, MegSourceExtractor, NoiseCovariance, SourceExtractor
from .variable_channels import VariableChannelsExtractor

__all__ = [
    "CHANNEL_TYPES",
    "ChannelPositions",
    "EcgExtractor",
    "EegExtractor",
    "EegSourceExtractor",
    "EmgExtractor",
    "FnirsExtractor",
    "IeegExtractor",
    "MegExtractor",
    "MegSourceExtractor",
    "MneExtractor",
    "NoiseCovariance",
    "RecordingMismatchError",
    "SourceExtractor",
    "VariableChannelsExtractor",
]
