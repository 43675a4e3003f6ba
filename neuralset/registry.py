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
    "synthetic": "neuralset.studies.synthetic:SyntheticStudy",
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
    "meg": "neuralset.extractors.meeg:MegExtractor",
    "eeg": "neuralset.extractors.meeg:EegExtractor",
    "ieeg": "neuralset.extractors.ieeg:IeegExtractor",
    "emg": "neuralset.extractors.emg:EmgExtractor",
    "fnirs": "neuralset.extractors.fnirs:FnirsExtractor",
    "spikes": "neuralset.extractors.spikes:SpikesExtractor",
    "fmri": "neuralset.extractors.fmri:FmriExtractor",
    "noop": "neuralset.extractors.debug:NoopExtractor",
    "sleep": "neuralset.extractors.debug:SleepExtractor",
    "hf_text": "neuralset.extractors.text:HuggingFaceText",
    "hf_audio": "neuralset.extractors.audio:HuggingFaceAudio",
    "hf_image": "neuralset.extractors.image:HuggingFaceImage",
    "hf_video": "neuralset.extractors.video:HuggingFaceVideo",
    "mel_spectrogram": "neuralset.extractors.features:MelSpectrogram",
    "speech_envelope": "neuralset.extractors.features:SpeechEnvelope",
    "word_length": "neuralset.extractors.features:WordLength",
    "word_frequency": "neuralset.extractors.features:WordFrequency",
    "image_statistics": "neuralset.extractors.features:ImageStatistics",
    # executors
    "inline": "neuralset.execution.executors:InlineExecutor",
    "local": "neuralset.execution.executors:LocalExecutor",
    "slurm": "neuralset.execution.slurm:SlurmExecutor",
    "auto": "neuralset.execution.slurm:AutoExecutor",
}

for _kind, _target in BUILTIN_KINDS.items():
    register(_kind, _target)
