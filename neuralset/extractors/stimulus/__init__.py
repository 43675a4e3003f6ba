"""Stimulus extractors: HuggingFace embeddings and classic features of words, sounds, images
and videos. Nothing here imports transformers or torch until a model is loaded."""

from .audio import HuggingFaceAudio
from .audio_features import (
    MelSpectrogram,
    SpeechEnvelope,
    mel_filters,
    mel_spectrogram,
    speech_envelope,
)
from .bag_of_words import BagOfWords
from .hf import HuggingFaceExtractor, HuggingFaceMediaExtractor, ModelNotAvailableError
from .image import HuggingFaceImage
from .image_features import ImageStatistics, image_statistics
from .image_texture import FourierEnergy, ImageHog, ImageLbp
from .sentence import SentenceEmbedding
from .text import HuggingFaceText
from .text_features import WordFrequency, WordLength
from .video import HuggingFaceVideo

__all__ = [
    "BagOfWords",
    "FourierEnergy",
    "ImageHog",
    "ImageLbp",
    "SentenceEmbedding",
    "HuggingFaceAudio",
    "HuggingFaceExtractor",
    "HuggingFaceImage",
    "HuggingFaceMediaExtractor",
    "HuggingFaceText",
    "HuggingFaceVideo",
    "ImageStatistics",
    "MelSpectrogram",
    "ModelNotAvailableError",
    "SpeechEnvelope",
    "WordFrequency",
    "WordLength",
    "image_statistics",
    "mel_filters",
    "mel_spectrogram",
    "speech_envelope",
]
