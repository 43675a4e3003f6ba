"""HuggingFaceAudio frame timing: each wav2vec2-style frame at the centre of its receptive field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuralset.events import validate_events
from neuralset.extractors.event_features import Series, resample_series
from neuralset.extractors.stimulus.audio import HuggingFaceAudio, min_samples, receptive_field
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models
from tests.extractors.stimulus.test_audio import direct_wav2vec2


def audio_event(path, start: float = 1.0, duration: float = 1.0) -> pd.DataFrame:  # noqa: ANN001
    return validate_events(
        pd.DataFrame(
            {
                "type": ["Audio"],
                "start": [start],
                "duration": [duration],
                "timeline": ["t"],
                "filepath": [str(path)],
                "frequency": [16000.0],
            }
        )
    )


def write_noise(path, seconds: float, seed: int = 0) -> None:  # noqa: ANN001
    import soundfile

    x = np.random.default_rng(seed).normal(0, 0.1, int(seconds * 16000)).astype(np.float32)
    soundfile.write(str(path), x, 16000, subtype="FLOAT")


def test_receptive_field_by_hand():
    # wav2vec2-base: a 10-sample kernel at stride 5, then 4 layers (3, 2) and 2 layers (2, 2):
    # field = 10 + 2*5 + 2*10 + 2*20 + 2*40 + 1*80 + 1*160 = 400, stride = 5 * 2**6 = 320
    assert receptive_field([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]) == (400, 320)
    assert receptive_field([3, 3], [2, 2]) == (7, 4)  # frame 0 sees layer-1 frames 0-2: 0..6
    assert receptive_field([32, 20], [16, 20]) == (336, 320)  # the tiny test model
    from transformers import HubertConfig, Wav2Vec2Config

    assert min_samples(Wav2Vec2Config()) == min_samples(HubertConfig()) == 400


def test_series_start_shifts_the_stored_samples():
    data = np.arange(10.0, dtype=np.float32)[:, None] * np.array([[1.0, -2.0]], np.float32)
    shifted = Series(data=data, sfreq=50.0, start=0.0125)
    centres = 0.0125 + np.arange(10) / 50.0
    np.testing.assert_array_equal(resample_series(shifted, centres), data)
    # between two centres: the linear interpolant; before the first: the first sample
    np.testing.assert_allclose(
        resample_series(shifted, np.array([0.0225, 0.0])), data[[0, 0]] + [[0.5, -1.0], [0.0, 0.0]]
    )
    assert resample_series(Series(data=data, sfreq=50.0), centres)[0, 0] == pytest.approx(0.625)


def test_stored_frames_are_stamped_at_window_centres(tmp_path):
    """Read at 50 Hz from the first frame's centre (10.5 ms after onset for the tiny model:
    field 336 samples), the painted samples are the model's frames themselves."""
    write_noise(tmp_path / "a.wav", 1.0)
    events = audio_event(tmp_path / "a.wav")
    ex = HuggingFaceAudio(model=str(hf_models.wav2vec2_dir()), layers=-1, device="cpu")
    store = Store(tmp_path / "store")
    ex.prepare(events, store, progress=False)
    (key,) = ex.row_keys(events, np.array([0]))
    assert store.meta(key) == {"sfreq": 50.0, "start": 168 / 16000}
    ref = direct_wav2vec2(str(tmp_path / "a.wav"), [-1])[0]  # (49 frames, 32)
    assert ref.shape[0] == (16000 - 336) // 320 + 1 == 49
    segments = segment_on_triggers(events, "Audio", offset=168 / 16000, duration=49 / 50)
    out = ex.read(segments, store).data[0]  # (32, 49): sample s at 10.5 ms + s * 20 ms
    np.testing.assert_allclose(out, ref.T, atol=2e-5)


def test_whisper_frames_stay_centred(tmp_path):
    write_noise(tmp_path / "a.wav", 1.0)
    events = audio_event(tmp_path / "a.wav")
    ex = HuggingFaceAudio(model=str(hf_models.whisper_dir()), layers=-1, device="cpu")
    (computed,) = ex.compute_many(ex.items(events))
    assert computed.meta == {"sfreq": 50.0, "start": 0.0}


def test_a_click_peaks_in_the_frame_whose_centre_is_nearest(tmp_path):
    """A click at sample n changes exactly the convolutional frames whose window holds n
    (the model's own features, normalised per frame), and the frame stamped nearest the
    click is always one of them; the window starts (the old stamps) miss some clicks."""
    import torch
    from transformers import AutoModel

    folder = hf_models.wav2vec2_layer_norm_dir()
    model = AutoModel.from_pretrained(folder).eval()
    write_noise(tmp_path / "a.wav", 0.5)
    ex = HuggingFaceAudio(model=str(folder), layers=0, device="cpu")
    (computed,) = ex.compute_many(ex.items(audio_event(tmp_path / "a.wav", duration=0.5)))
    start, rate = computed.meta["start"], computed.meta["sfreq"]
    assert start == 200 / 16000  # field 400: 12.5 ms, as wav2vec2-base
    field, stride = receptive_field(model.config.conv_kernel, model.config.conv_stride)
    silence = np.zeros((1, 8000), np.float32)
    with torch.no_grad():
        base = model.feature_extractor(torch.from_numpy(silence))[0].numpy()  # (channels, 24)
    centres = start + np.arange(base.shape[1]) / rate
    missed_by_starts = 0
    for n in range(1000, 7000, 37):
        click = silence.copy()
        click[0, n] = 1.0
        with torch.no_grad():
            feats = model.feature_extractor(torch.from_numpy(click))[0].numpy()
        changed = set(np.flatnonzero(np.abs(feats - base).max(axis=0) > 0).tolist())
        assert changed == {i for i in range(base.shape[1]) if i * stride <= n < i * stride + field}
        t = n / 16000
        assert int(np.argmin(np.abs(centres - t))) in changed
        missed_by_starts += int(np.argmin(np.abs(centres - start - t))) not in changed
    assert missed_by_starts == 81  # of 163 clicks: the old stamps named a frame blind to them


def test_whisper_frame_k_is_centred_on_sample_320k():
    """Mel frame j is centred on sample 160 j (a click peaks there), and the encoder's two
    convolutions (kernel 3, padding 1; strides 1 and 2) centre frame k on mel frame 2 k."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    folder = hf_models.whisper_dir()
    fe = WhisperFeatureExtractor.from_pretrained(folder)
    for n in (8000, 8003, 8079, 8081, 12345):
        click = np.zeros(32000, np.float32)
        click[n] = 1.0
        mel = fe(click, sampling_rate=16000, return_tensors="np")["input_features"][0]
        assert int(np.argmax(mel.max(axis=0))) == round(n / 160)
    encoder = WhisperModel.from_pretrained(folder).get_encoder()
    for conv, stride in ((encoder.conv1, 1), (encoder.conv2, 2)):
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3,), (stride,), (1,))
