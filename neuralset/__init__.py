"""neuralset: typed, functional pipelines from neuroscience experiments to PyTorch and JAX data.

The public names below are imported lazily (PEP 562): ``import neuralset`` imports none of
torch, jax, mne, nilearn or transformers, creates no folder and adds no log handler. A name's
module is imported on first access (``neuralset.SegmentDataset``).

Examples
--------
>>> import neuralset as ns
>>> ns.TriggerSegmenter(triggers="Word", offset=-0.2, duration=0.8, require=("Meg",))  # doctest: +ELLIPSIS
TriggerSegmenter(...)
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _moved

__version__ = "0.1.0"
_moved.install()  # old (0.1) module paths keep importing, with a DeprecationWarning

#: Public name -> module that defines it. A name equal to the module's last component (e.g.
#: ``"events": "neuralset.events"``) exports the module itself. Extend freely.
_LAZY: dict[str, str] = {
    # configs
    "Config": "neuralset.config",
    "ConfigError": "neuralset.config",
    "register": "neuralset.config",
    "from_dict": "neuralset.config",
    "from_yaml": "neuralset.config",
    "to_yaml": "neuralset.config",
    "load_yaml": "neuralset.config",
    "dump_yaml": "neuralset.config",
    "apply_overrides": "neuralset.config",
    "structural_key": "neuralset.hashing",
    # events
    "events": "neuralset.events",
    "validate_events": "neuralset.events",
    "register_event_type": "neuralset.events",
    "EventsError": "neuralset.events",
    # transforms
    "Transform": "neuralset.events.transforms",
    "Query": "neuralset.events.transforms",
    "AssignSplits": "neuralset.events.transforms",
    "AddContext": "neuralset.events.transforms",
    "ChunkEvents": "neuralset.events.transforms",
    "Chain": "neuralset.events.transforms",
    "chain": "neuralset.events.transforms",
    "KFoldSplits": "neuralset.events.splits",
    "SklearnSplits": "neuralset.events.splits",
    "StimulusSplits": "neuralset.events.stimulus_splits",
    "SplitChunks": "neuralset.events.split_chunks",
    "SentencesFromWords": "neuralset.events.text_alignment",
    "AlignTranscript": "neuralset.events.text_alignment",
    "align_words": "neuralset.events.text_alignment",
    "TranscriptWords": "neuralset.events.transcripts",
    "read_transcript": "neuralset.events.transcripts",
    "AlignRepetitions": "neuralset.events.repetitions",
    "StimulusTime": "neuralset.events.repetitions",
    "AddColumn": "neuralset.events.table_utils",
    "SelectRows": "neuralset.events.table_utils",
    "AudioFromVideo": "neuralset.events.video_audio",
    # studies
    "Study": "neuralset.studies.base",
    "SyntheticStudy": "neuralset.synthetic",
    "BidsStudy": "neuralset.studies.bids",
    "fill_durations": "neuralset.studies.headers",
    "RecordingsStudy": "neuralset.studies.recordings",
    "MoabbStudy": "neuralset.studies.moabb",
    "EventMap": "neuralset.studies.annotations",
    "to_bids": "neuralset.studies.bids_export",
    "EntityTable": "neuralset.entities",
    "EntityError": "neuralset.entities",
    # segments
    "Segments": "neuralset.segments",
    "Segment": "neuralset.segments",
    "Segmenter": "neuralset.segments",
    "TriggerSegmenter": "neuralset.segments",
    "SlidingSegmenter": "neuralset.segments",
    "segment_on_triggers": "neuralset.segments",
    "sliding_windows": "neuralset.segments",
    "window_labels": "neuralset.window_labels",
    "event_mask": "neuralset.events.selectors",
    # store
    "Store": "neuralset.store",
    "StoreError": "neuralset.store",
    "StoreFormatError": "neuralset.store",
    "migrate_store": "neuralset.migration",
    "finish_migration": "neuralset.migration",
    # extractors
    "Extractor": "neuralset.extractors.base",
    "RecordingExtractor": "neuralset.extractors.recording",
    "EventFeatureExtractor": "neuralset.extractors.event_features",
    "MegExtractor": "neuralset.extractors.neural.mne.meeg",
    "EegExtractor": "neuralset.extractors.neural.mne.meeg",
    "MegSourceExtractor": "neuralset.extractors.neural.mne.source",
    "EegSourceExtractor": "neuralset.extractors.neural.mne.source",
    "NoiseCovariance": "neuralset.extractors.neural.mne.source",
    "Pulse": "neuralset.extractors.events",
    "EventField": "neuralset.extractors.events",
    "LabelEncoder": "neuralset.extractors.events",
    "WindowLabel": "neuralset.extractors.events",
    "DetectionTarget": "neuralset.extractors.events",
    "MneExtractor": "neuralset.extractors.neural.mne.meeg",
    "IeegExtractor": "neuralset.extractors.neural.mne.ieeg",
    "EmgExtractor": "neuralset.extractors.neural.mne.emg",
    "FnirsExtractor": "neuralset.extractors.neural.mne.fnirs",
    "SpikesExtractor": "neuralset.extractors.neural.spikes",
    "ChannelOutput": "neuralset.extractors.neural.channel_sets",
    "bin_spikes": "neuralset.extractors.neural.spikes",
    "FmriExtractor": "neuralset.extractors.neural.fmri",
    "FmriSpace": "neuralset.extractors.neural.fmri_spaces",
    "EcgExtractor": "neuralset.extractors.neural.mne.ecg",
    "ChannelPositions": "neuralset.extractors.neural.mne.positions",
    "SentenceEmbedding": "neuralset.extractors.stimulus.sentence",
    "BagOfWords": "neuralset.extractors.stimulus.bag_of_words",
    "ImageHog": "neuralset.extractors.stimulus.image_texture",
    "ImageLbp": "neuralset.extractors.stimulus.image_texture",
    "FourierEnergy": "neuralset.extractors.stimulus.image_texture",
    "PCA": "neuralset.extractors.meta.pca",
    "Concat": "neuralset.extractors.meta.concat",
    "Crop": "neuralset.extractors.meta.crop",
    "Aggregate": "neuralset.extractors.meta.aggregate",
    "ToStatic": "neuralset.extractors.meta.aggregate",
    "HrfConvolve": "neuralset.extractors.meta.hrf",
    "HuggingFaceText": "neuralset.extractors.stimulus.text",
    "HuggingFaceAudio": "neuralset.extractors.stimulus.audio",
    "HuggingFaceImage": "neuralset.extractors.stimulus.image",
    "HuggingFaceVideo": "neuralset.extractors.stimulus.video",
    "MelSpectrogram": "neuralset.extractors.stimulus",
    "SpeechEnvelope": "neuralset.extractors.stimulus",
    "WordLength": "neuralset.extractors.stimulus",
    "WordFrequency": "neuralset.extractors.stimulus",
    "ImageStatistics": "neuralset.extractors.stimulus",
    # execution
    "InlineExecutor": "neuralset.execution",
    "LocalExecutor": "neuralset.execution",
    "SlurmExecutor": "neuralset.execution",
    "AutoExecutor": "neuralset.execution",
    "Executor": "neuralset.execution",
    "ExecutorError": "neuralset.execution",
    "PrepareReport": "neuralset.execution",
    "PrepareError": "neuralset.execution",
    "run_prepare": "neuralset.execution",
    "prepare_options": "neuralset.execution",
    "read_errors": "neuralset.execution",
    "NoopExtractor": "neuralset.synthetic.debug_extractors",
    "SleepExtractor": "neuralset.synthetic.debug_extractors",
    # pipelines
    "Pipeline": "neuralset.pipeline",
    "load_pipeline": "neuralset.pipeline",
    # loaders
    "SegmentDataset": "neuralset.loaders.dataset",
    "Batch": "neuralset.loaders.batch",
    "set_typecheck": "neuralset.loaders.batch",
    "collate_fn": "neuralset.loaders.dataset",
    "JaxBatchIterator": "neuralset.loaders.jax_iter",
    "LengthBucketSampler": "neuralset.loaders.sampling",
    "EpochBatchSampler": "neuralset.loaders.sampling",
    "GrainSource": "neuralset.loaders.grain_source",
    "GrainBatchSource": "neuralset.loaders.grain_source",
    "SegmentDataModule": "neuralset.loaders.lightning",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'neuralset' has no attribute {name!r}")
    module = importlib.import_module(target)
    if target.rsplit(".", 1)[-1] == name:
        value: Any = module
    else:
        value = getattr(module, name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
