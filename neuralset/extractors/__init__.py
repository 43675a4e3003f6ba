"""Extractors: frozen configs that turn the events of segments into arrays, in three phases.

The package is laid out by family; every public extractor is importable from here (lazily:
``import neuralset.extractors`` imports none of the families)::

    base.py, recording.py, event_features.py   the interface and the two storage families
    neural/          recordings: mne/ (MEG, EEG, iEEG, EMG, fNIRS, MEG/EEG source space),
                     fmri, spikes
    stimulus/        HuggingFace text/audio/image/video, classic audio/text/image features
    events/          values read from the events table: pulses, fields, labels, window labels,
                     detection targets
    meta/            wrappers over other extractors: PCA, Concat, Crop, Aggregate, ToStatic,
                     HrfConvolve
"""

from __future__ import annotations

from .._lazy import lazy_exports

_NEURAL = "neuralset.extractors.neural"
_MNE = "neuralset.extractors.neural.mne"
_STIMULUS = "neuralset.extractors.stimulus"
_META = "neuralset.extractors.meta"

_EXPORTS: dict[str, str] = {
    # interface and storage families
    "Extractor": "neuralset.extractors.base",
    "Item": "neuralset.extractors.base",
    "Computed": "neuralset.extractors.base",
    "Output": "neuralset.extractors.base",
    "ExtractorNotPreparedError": "neuralset.extractors.base",
    "OutOfBoundsError": "neuralset.extractors.base",
    "RecordingExtractor": "neuralset.extractors.recording",
    "EventFeatureExtractor": "neuralset.extractors.event_features",
    # neural recordings
    "MneExtractor": f"{_MNE}.base",
    "MegExtractor": f"{_MNE}.meeg",
    "EegExtractor": f"{_MNE}.meeg",
    "IeegExtractor": f"{_MNE}.ieeg",
    "EmgExtractor": f"{_MNE}.emg",
    "FnirsExtractor": f"{_MNE}.fnirs",
    "MegSourceExtractor": f"{_MNE}.source",
    "EegSourceExtractor": f"{_MNE}.source",
    "NoiseCovariance": f"{_MNE}.source",
    "EcgExtractor": f"{_MNE}.ecg",
    "ChannelPositions": f"{_MNE}.positions",
    "FmriExtractor": f"{_NEURAL}.fmri",
    "FmriSpace": f"{_NEURAL}.fmri_spaces",
    "SpikesExtractor": f"{_NEURAL}.spikes",
    "ChannelOutput": f"{_NEURAL}.channel_sets",
    # stimuli
    "HuggingFaceText": f"{_STIMULUS}.text",
    "HuggingFaceAudio": f"{_STIMULUS}.audio",
    "HuggingFaceImage": f"{_STIMULUS}.image",
    "HuggingFaceVideo": f"{_STIMULUS}.video",
    "MelSpectrogram": f"{_STIMULUS}.audio_features",
    "SpeechEnvelope": f"{_STIMULUS}.audio_features",
    "WordLength": f"{_STIMULUS}.text_features",
    "WordFrequency": f"{_STIMULUS}.text_features",
    "ImageStatistics": f"{_STIMULUS}.image_features",
    "ImageHog": f"{_STIMULUS}.image_texture",
    "ImageLbp": f"{_STIMULUS}.image_texture",
    "FourierEnergy": f"{_STIMULUS}.image_texture",
    "SentenceEmbedding": f"{_STIMULUS}.sentence",
    "BagOfWords": f"{_STIMULUS}.bag_of_words",
    # wrappers over other extractors
    "Wrapper": f"{_META}.wrapper",
    "PCA": f"{_META}.pca",
    "Concat": f"{_META}.concat",
    "Crop": f"{_META}.crop",
    "Aggregate": f"{_META}.aggregate",
    "ToStatic": f"{_META}.aggregate",
    "HrfConvolve": f"{_META}.hrf",
    # events table
    "Pulse": "neuralset.extractors.events.table_values",
    "EventField": "neuralset.extractors.events.table_values",
    "LabelEncoder": "neuralset.extractors.events.labels",
    "VocabularyExtractor": "neuralset.extractors.events.vocabulary",
    "WindowLabel": "neuralset.extractors.events.window_label",
    "DetectionTarget": "neuralset.extractors.events.detection",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
