"""HuggingFaceAudio (tiny wav2vec2 and Whisper) against direct transformers forward passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.stimulus.audio import HuggingFaceAudio
from neuralset.extractors.stimulus.hf import ModelNotAvailableError, load_model
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return hf_models.stimulus_events()


@pytest.fixture(scope="module")
def audio_rows(events) -> pd.DataFrame:
    return events[events["type"] == "Audio"]


def _n_valid(events: pd.DataFrame, audio_rows: pd.DataFrame, i: int, rate: float, n: int) -> int:
    """Samples of the window at ``rate`` from Audio event ``i``'s onset that it owns."""
    start = audio_rows["start"].to_numpy()
    stop = start + audio_rows["duration"].to_numpy()
    end = min(stop[i], start[i + 1] if i + 1 < len(start) else np.inf) - start[i]
    return min(n, int(np.ceil(end * rate - 1e-6)))


def _sound(path: str, rate: float = 16000.0) -> np.ndarray:
    import soundfile
    from scipy.signal import resample_poly

    x, sr = soundfile.read(path, dtype="float32")
    if sr != rate:
        x = resample_poly(x, int(rate), int(sr)).astype(np.float32)
    return x


def direct_wav2vec2(path: str, layers: list[int], rate: float = 16000.0) -> np.ndarray:
    import torch
    from transformers import AutoFeatureExtractor, AutoModel

    folder = hf_models.wav2vec2_dir()
    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    inputs = fe(_sound(path, rate), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs, output_hidden_states=True).hidden_states
    return np.stack([hidden[i][0].numpy() for i in layers])  # (layers, frames, features)


#: the tiny wav2vec2's receptive field: 336 samples (kernels 32, 20; strides 16, 20), so frame i
#: is centred 168 samples = 10.5 ms after the start of its window, i * 320 samples
TINY_START = 168 / 16000


def at_times(frames: np.ndarray, times: np.ndarray, start: float = TINY_START) -> np.ndarray:
    """``frames`` ``(..., n, features)`` at 50 Hz from ``start``, linearly interpolated at
    ``times`` (nearest frame outside them): ``(..., len(times), features)``."""
    grid = start + np.arange(frames.shape[-2]) / 50.0
    flat = frames.reshape(-1, *frames.shape[-2:])
    out = [
        np.stack([np.interp(times, grid, f[:, c]) for c in range(f.shape[1])], axis=-1)
        for f in flat
    ]
    return np.stack(out).reshape(*frames.shape[:-2], len(times), frames.shape[-1])


def direct_whisper(path: str, layer: int) -> np.ndarray:
    import torch
    from transformers import AutoFeatureExtractor, WhisperModel

    folder = hf_models.whisper_dir()
    fe = AutoFeatureExtractor.from_pretrained(folder)
    encoder = WhisperModel.from_pretrained(folder).get_encoder().eval()
    x = _sound(path)
    parts = []
    for a in range(0, len(x), fe.n_samples):  # consecutive chunks of the extractor's length
        chunk = x[a : a + fe.n_samples]
        feats = fe(chunk, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(feats["input_features"], output_hidden_states=True).hidden_states
        n = int(np.ceil(len(chunk) / 16000 * 50))
        parts.append(hidden[layer][0, :n].numpy())
    return np.concatenate(parts)


def test_wav2vec2_series_at_latent_rate(events, audio_rows, tmp_path):
    ex = HuggingFaceAudio(
        model=str(hf_models.wav2vec2_dir()), layers=(1, -1), layer_aggregation="none", device="cpu"
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Audio", duration=2.0)
    out = ex.read(segments, store).data  # frequency None -> 50 Hz latent rate
    assert out.shape == (len(audio_rows), 2, 32, 100)
    for i, path in enumerate(audio_rows["filepath"]):
        ref = direct_wav2vec2(str(hf_models.stimulus_study().path / path), [1, -1])
        n = _n_valid(events, audio_rows, i, 50.0, 100)
        assert n > 90
        expected = at_times(ref, np.arange(n) / 50.0)  # frames stamped at their centres
        np.testing.assert_allclose(out[i, ..., :n], expected.transpose(0, 2, 1), atol=2e-5)
    # static: the mean over the whole series of each event
    static = ex.replace(output="static", aggregation="trigger").read(segments, store).data
    ref = direct_wav2vec2(
        str(hf_models.stimulus_study().path / audio_rows["filepath"].iloc[0]), [1, -1]
    )
    np.testing.assert_allclose(static[0], ref.mean(axis=1), atol=2e-5)


def test_interpolated_to_frequency(events, audio_rows, tmp_path):
    ex = HuggingFaceAudio(
        model=str(hf_models.wav2vec2_dir()), layers=0.5, frequency=200.0, device="cpu"
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Audio", duration=1.0)
    out = ex.read(segments, store).data  # (events, features, 200)
    ref = direct_wav2vec2(
        str(hf_models.stimulus_study().path / audio_rows["filepath"].iloc[0]), [1]
    )[0]
    expected = at_times(ref, np.arange(200) / 200.0)
    np.testing.assert_allclose(out[0], expected.T, atol=2e-5)


def test_whisper_encoder_chunks(events, audio_rows, tmp_path):
    ex = HuggingFaceAudio(model=str(hf_models.whisper_dir()), layers=-1, device="cpu", batch_size=3)
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Audio", duration=2.5)  # past the first 2 s chunk
    out = ex.read(segments, store).data
    for i, path in enumerate(audio_rows["filepath"]):
        ref = direct_whisper(str(hf_models.stimulus_study().path / path), -1)
        n = _n_valid(events, audio_rows, i, 50.0, 125)
        assert n > 100
        np.testing.assert_allclose(out[i, :, :n], ref[:n].T, atol=3e-5)


def test_whisper_encoder_class_trap_is_detected():
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    with pytest.raises(
        ModelNotAvailableError, match="the checkpoint lacks .* weights of WhisperEncoder"
    ):
        load_model(
            str(hf_models.whisper_dir()),
            "main",
            device="cpu",
            dtype="float32",
            loader=WhisperEncoder.from_pretrained,
            processor_loader=None,
            tag="trap",
        )


def test_resampled_to_model_rate(tmp_path):
    import soundfile

    rng = np.random.default_rng(0)
    path = tmp_path / "low.wav"
    soundfile.write(str(path), rng.normal(0, 0.1, 8000).astype(np.float32), 8000, subtype="FLOAT")
    events = validate_events(
        pd.DataFrame(
            {
                "type": ["Audio"],
                "start": [0.5],
                "duration": [1.0],
                "timeline": ["t"],
                "filepath": [str(path)],
                "frequency": [8000.0],
            }
        )
    )
    ex = HuggingFaceAudio(
        model=str(hf_models.wav2vec2_dir()), layers=2, output="static", device="cpu"
    )
    store = Store(tmp_path / "store")
    ex.prepare(events, store, progress=False)
    got = ex.replace(aggregation="trigger").read(segment_on_triggers(events, "Audio"), store).data
    ref = direct_wav2vec2(str(path), [2])[0].mean(axis=0)
    np.testing.assert_allclose(got[0], ref, atol=2e-5)


def test_unsupported_audio_model_fails_at_preflight(events, tmp_path):
    """An Audio Spectrogram Transformer has neither a waveform front end nor Whisper's chunks."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(0)
    folder = tmp_path / "ast"
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        num_mel_bins=16,
    )
    ASTModel(config).save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=16, max_length=100).save_pretrained(folder)
    ex = HuggingFaceAudio(model=str(folder), device="cpu")
    store = Store(tmp_path / "store")
    message = (
        "HuggingFaceAudio.model: a 'audio-spectrogram-transformer' model (ASTConfig) is not "
        "supported: the extractor runs wav2vec2-style encoders (a convolutional front end on the "
        "waveform: wav2vec2, HuBERT, WavLM, data2vec-audio) and Whisper encoders; give one of "
        "those"
    )
    # was: a PrepareError per item, "AttributeError: 'ASTConfig' object has no attribute ..."
    with pytest.raises(ValueError) as err:
        ex.prepare(events, store, progress=False)
    assert str(err.value) == message
    assert not list(store.keys())
    with pytest.raises(ValueError) as err:  # also when compute_many runs without preflight
        ex.compute_many(ex.items(events)[:1])
    assert str(err.value) == message
