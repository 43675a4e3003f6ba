"""The ``kind`` names of neuralset's built-in configs, registered lazily (nothing imported here).

YAML files name configs by ``kind`` (``kind: meg``, ``kind: slurm``). This module maps each
built-in kind to its ``"module:Class"`` so that a configuration can be read without importing
every extractor's heavy dependencies; the module is imported when the kind is first resolved.
The CLI and :mod:`neuralset.pipeline` import it. Third-party classes register themselves with
the ``@register("my_kind")`` decorator of :mod:`neuralset.config`.
"""

from __future__ import annotations

from .config import register

__all__ = ["BUILTIN_KINDS"]

#: kind -> "module:Class" of the built-in configs.
BUILTIN_KINDS: dict[str, str] = {
    # studies
    "synthetic": "neuralset.synthetic.study:SyntheticStudy",
    "bids": "neuralset.studies.bids:BidsStudy",
    # transforms
    "query": "neuralset.events.transforms:Query",
    "assign_splits": "neuralset.events.transforms:AssignSplits",
    "add_context": "neuralset.events.transforms:AddContext",
    "chunk_events": "neuralset.events.transforms:ChunkEvents",
    "chain": "neuralset.events.transforms:Chain",
    # segmenters
    "trigger": "neuralset.segments:TriggerSegmenter",
    "sliding": "neuralset.segments:SlidingSegmenter",
    # extractors
    "meg": "neuralset.extractors.neural.mne.meeg:MegExtractor",
    "eeg": "neuralset.extractors.neural.mne.meeg:EegExtractor",
    "ieeg": "neuralset.extractors.neural.mne.ieeg:IeegExtractor",
    "emg": "neuralset.extractors.neural.mne.emg:EmgExtractor",
    "fnirs": "neuralset.extractors.neural.mne.fnirs:FnirsExtractor",
    "spikes": "neuralset.extractors.neural.spikes:SpikesExtractor",
    "fmri": "neuralset.extractors.neural.fmri:FmriExtractor",
    "noop": "neuralset.synthetic.debug_extractors:NoopExtractor",
    "sleep": "neuralset.synthetic.debug_extractors:SleepExtractor",
    "hf_text": "neuralset.extractors.stimulus.text:HuggingFaceText",
    "hf_audio": "neuralset.extractors.stimulus.audio:HuggingFaceAudio",
    "hf_image": "neuralset.extractors.stimulus.image:HuggingFaceImage",
    "hf_video": "neuralset.extractors.stimulus.video:HuggingFaceVideo",
    "mel_spectrogram": "neuralset.extractors.stimulus.audio_features:MelSpectrogram",
    "speech_envelope": "neuralset.extractors.stimulus.audio_features:SpeechEnvelope",
    "word_length": "neuralset.extractors.stimulus.text_features:WordLength",
    "word_frequency": "neuralset.extractors.stimulus.text_features:WordFrequency",
    "image_statistics": "neuralset.extractors.stimulus.image_features:ImageStatistics",
    # executors
    "inline": "neuralset.execution.executors:InlineExecutor",
    "local": "neuralset.execution.executors:LocalExecutor",
    "slurm": "neuralset.execution.slurm:SlurmExecutor",
    "auto": "neuralset.execution.slurm:AutoExecutor",
}

for _kind, _target in BUILTIN_KINDS.items():
    register(_kind, _target)
