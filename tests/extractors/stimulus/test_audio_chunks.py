"""HuggingFaceAudio.chunk_duration: long sounds through wav2vec2-style models in chunks."""

from __future__ import annotations

import numpy as np
import pytest

from neuralset.config import ConfigError
from neuralset.extractors.stimulus.audio import HuggingFaceAudio
from neuralset.extractors.stimulus.audio_chunks import chunk_plan, first_group_norm
from neuralset.store import Store
from tests.extractors.stimulus import hf_models
from tests.extractors.stimulus.test_audio_timing import audio_event


@pytest.fixture(scope="module")
def long_sound(tmp_path_factory):  # noqa: ANN201
    """6 s of noise modulated at 4 Hz (quiet troughs, as between syllables)."""
    import soundfile

    path = tmp_path_factory.mktemp("sound") / "story.wav"
    t = np.arange(6 * 16000) / 16000
    noise = np.random.default_rng(0).normal(0, 0.1, len(t))
    soundfile.write(str(path), (noise * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32), 16000)
    return path


def _series(ex: HuggingFaceAudio, path) -> tuple[np.ndarray, dict]:  # noqa: ANN001
    (computed,) = ex.compute_many(ex.items(audio_event(path, duration=6.0)))
    return computed.arrays["data"], computed.meta


def test_chunk_plan_by_hand():
    # 3520 samples: frames (3520 - 400) // 320 + 1 = 10; a 1360-sample chunk holds 4 frames,
    # 2 kept between 1 frame of context on each side (fewer at the sound's edges)
    assert chunk_plan(3520, 400, 320, 1360, 1) == [
        (0, 1040, 0, 2),  # frames 0-2 computed: 2 * 320 + 400 samples
        (320, 1680, 2, 4),  # frames 1-4
        (960, 2320, 4, 6),
        (1600, 2960, 6, 8),
        (2240, 3520, 8, 10),  # frames 7-9, and the sound's last samples
    ]
    assert chunk_plan(3520, 400, 320, None, 1) == [(0, 3520, 0, 10)]
    assert chunk_plan(3520, 400, 320, 3520, 1) == [(0, 3520, 0, 10)]
    for n in range(400, 20000, 97):  # the kept runs tile the frames; chunks stay in the sound
        plan = chunk_plan(n, 400, 320, 3000, 2)
        assert [p[2] for p in plan[1:]] == [p[3] for p in plan[:-1]]
        assert plan[0][2] == 0 and plan[-1][3] == (n - 400) // 320 + 1
        assert all(0 <= a < e <= n and e - a < 3000 + 320 for a, e, _, _ in plan)
    with pytest.raises(ValueError) as err:
        chunk_plan(3520, 400, 320, 1039, 1)
    assert str(err.value) == (
        "a chunk of 1039 samples gives 2 frames (receptive field 400, stride 320), none left "
        "once 1 frame of context is set aside on each side"
    )


@pytest.mark.parametrize("folder", ["wav2vec2_layer_norm_dir", "wav2vec2_dir"])
def test_chunks_stitch_to_the_single_pass(long_sound, folder):
    """Layer 0 (the convolutions, the positional convolution and a per-frame norm) equals
    the single pass to float rounding, with the first group norm's statistics of the whole
    sound (the tiny wav2vec2_dir); the transformer layers are close (measured: at most
    0.0061 and 0.0062 for features whose standard deviation is 1)."""
    model = str(getattr(hf_models, folder)())
    whole = HuggingFaceAudio(model=model, store_all_layers=True, device="cpu")
    ref, meta = _series(whole, long_sound)
    assert ref.shape == (299, 3, 32)  # (96000 - 400 or 336) // 320 + 1 frames, 3 hidden states
    same, same_meta = _series(whole.replace(chunk_duration=6.5, chunk_context=1.0), long_sound)
    np.testing.assert_array_equal(same, ref)  # one chunk: the single pass itself
    assert same_meta == meta
    got, got_meta = _series(whole.replace(chunk_duration=2.0, chunk_context=0.5), long_sound)
    assert got.shape == ref.shape and got_meta == meta  # the frames and times of one pass
    np.testing.assert_allclose(got[:, 0], ref[:, 0], atol=5e-6)
    assert 1e-4 < np.abs(got[:, 1:] - ref[:, 1:]).max() < 0.01
    assert ref[:, 1:].std() == pytest.approx(1.0, abs=0.05)


def test_group_norm_of_the_whole_sound_matters(long_sound, monkeypatch):
    """Without the whole sound's statistics, chunks of the group-normalised model differ."""
    import neuralset.extractors.stimulus.audio as audio

    assert first_group_norm(load_model_of(hf_models.wav2vec2_layer_norm_dir())) is None
    whole = HuggingFaceAudio(model=str(hf_models.wav2vec2_dir()), layers=0, device="cpu")
    ref, _ = _series(whole, long_sound)
    chunked = whole.replace(chunk_duration=2.0, chunk_context=0.5)
    monkeypatch.setattr(audio, "first_group_norm", lambda model: None)
    per_chunk, _ = _series(chunked, long_sound)
    assert np.abs(per_chunk - ref).max() > 0.5  # measured: 1.88


def load_model_of(folder):  # noqa: ANN001, ANN201
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder)


def test_chunk_fields_are_checked_at_construction():
    model = str(hf_models.wav2vec2_dir())
    cases = {
        (0.0, 5.0): "HuggingFaceAudio.chunk_duration: must be > 0 seconds (or None), got 0.0",
        (float("inf"), 5.0): "HuggingFaceAudio.chunk_duration: must be a finite number of "
        "seconds (or None), got inf",
        (30.0, -1.0): "HuggingFaceAudio.chunk_context: must be a finite number >= 0 seconds, "
        "got -1.0",
        (None, 2.0): "HuggingFaceAudio.chunk_context: only used with chunk_duration, got "
        "chunk_context=2.0 with chunk_duration=None; set chunk_duration (seconds per forward "
        "pass) or leave chunk_context out",
        (8.0, 5.0): "HuggingFaceAudio.chunk_context: 5.0 s on each side leaves no frame of a "
        "8.0 s chunk; give chunk_context below half of chunk_duration, or a longer "
        "chunk_duration",
    }
    for (duration, context), message in cases.items():
        with pytest.raises(ConfigError) as err:
            HuggingFaceAudio(model=model, chunk_duration=duration, chunk_context=context)
        assert str(err.value) == message
    assert HuggingFaceAudio(model=model).key != HuggingFaceAudio(model=model, chunk_duration=30).key


def test_a_chunk_without_kept_frames_fails_at_preflight(long_sound, tmp_path):
    events = audio_event(long_sound, duration=6.0)
    # 0.05 s = 800 samples: 2 frames of the tiny model, and 0.02 s of context is 1 frame a side
    ex = HuggingFaceAudio(
        model=str(hf_models.wav2vec2_dir()), chunk_duration=0.05, chunk_context=0.02, device="cpu"
    )
    message = (
        "HuggingFaceAudio.chunk_duration: 0.05 s at 16000 Hz with chunk_context=0.02 s: a chunk "
        "of 800 samples gives 2 frames (receptive field 336, stride 320), none left once 1 "
        "frame of context is set aside on each side; lengthen chunk_duration or shorten "
        "chunk_context"
    )
    store = Store(tmp_path)
    with pytest.raises(ValueError) as err:
        ex.prepare(events, store, progress=False)
    assert str(err.value) == message
    assert not list(store.keys())
    with pytest.raises(ValueError) as err:  # also when compute_many runs without preflight
        ex.compute_many(ex.items(events))
    assert str(err.value) == message


def test_whisper_refuses_chunk_duration(long_sound, tmp_path):
    ex = HuggingFaceAudio(model=str(hf_models.whisper_dir()), chunk_duration=30.0, device="cpu")
    with pytest.raises(ValueError) as err:
        ex.prepare(audio_event(long_sound, duration=6.0), Store(tmp_path), progress=False)
    assert str(err.value) == (
        "HuggingFaceAudio.chunk_duration: Whisper encoders run on their feature extractor's "
        "fixed windows, got chunk_duration=30.0; leave chunk_duration out for Whisper models"
    )


def test_whisper_covers_a_sound_longer_than_its_window(long_sound):
    """The tiny Whisper's window is 2 s: a 6 s sound gives 300 frames, 3 windows, not 100."""
    ex = HuggingFaceAudio(model=str(hf_models.whisper_dir()), layers=-1, device="cpu")
    data, meta = _series(ex, long_sound)
    assert data.shape == (300, 32) and meta == {"sfreq": 50.0, "start": 0.0}
    assert np.abs(data[200:]).min(axis=1).max() > 0  # the third window is computed


def test_chunks_of_several_sounds_batched_together(long_sound, tmp_path):
    """Equal-length chunks of two sounds share a batch, each normalised by its own sound."""
    import pandas as pd
    import soundfile

    from neuralset.events import validate_events

    t = np.arange(5 * 16000) / 16000
    tone = np.sin(2 * np.pi * 300 * t) + np.random.default_rng(1).normal(0, 0.01, len(t))
    soundfile.write(str(tmp_path / "tone.wav"), tone.astype(np.float32), 16000)
    one = audio_event(long_sound, duration=6.0)
    two = audio_event(tmp_path / "tone.wav", start=20.0, duration=5.0)
    events = validate_events(pd.concat([one, two], ignore_index=True))
    ex = HuggingFaceAudio(
        model=str(hf_models.wav2vec2_dir()),
        layers=(0, -1),
        chunk_duration=2.0,
        chunk_context=0.5,
        batch_size=8,
        device="cpu",
    )
    items = ex.items(events)
    assert len(items) == 2
    together = ex.compute_many(items)
    for item, got in zip(items, together):
        (alone,) = ex.replace(batch_size=1).compute_many([item])
        np.testing.assert_allclose(got.arrays["data"], alone.arrays["data"], atol=1e-5)
        assert got.meta == alone.meta
