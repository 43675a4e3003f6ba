"""A built-in synthetic study: real MEG/EEG FIF files with known structure, written from a seed.

:class:`SyntheticStudy` writes, once and deterministically, one timeline per subject
(``"sub-01"``, ...) into its ``path``:

* ``sub-XX/sub-XX_meg.fif`` - channel 0 is a ``misc`` channel named ``"RAMP"`` whose value at
  every sample is exactly that sample's time in seconds since the recording start (``k / sfreq``,
  as stored in float32 by FIF); then ``meg_channels`` MEG sensors in Neuromag-like triplets
  (``mag``, ``grad``, ``grad``), named ``"MEG 001"`` ...
* ``sub-XX/sub-XX_eeg.fif`` - channel 0 is the same ``"RAMP"`` channel; then ``eeg_channels``
  EEG channels with standard 10-20 names (the first ones are the classic 10-20 set), a 10-20
  montage, and one bad channel per subject (20x noisier, listed in ``info["bads"]``; channel
  ``(seed + 5 * subject) % eeg_channels``, so neighbouring subjects differ).

Every signal has a known response: a Gaussian bump peaking :data:`RESPONSE_LATENCY` s after each
word onset (width :data:`RESPONSE_WIDTH` s) on the first :data:`N_RESPONSE_CHANNELS` sensors of
each modality, with amplitudes given by :data:`MEG_AMPLITUDE` (mag, T), :data:`GRAD_AMPLITUDE`
(grad, T/m) and :data:`EEG_AMPLITUDE` (V), sign alternating per channel; plus a small 50 Hz line
component and seeded Gaussian noise (:data:`NOISE_RATIO` of the amplitude). Word onsets lie on
a grid that is an exact multiple of ``1/meg_sfreq`` and ``1/eeg_sfreq``.

Events per timeline: ``Word`` (text from a small vocabulary, its ``sentence``, language
``"en"``), ``Sentence`` (every 8-12 words), ``Stimulus`` (one per word: ``code`` and
``description`` give the word's category) and one recording event per modality (``Meg``,
``Eeg``; ``filepath`` relative to ``path``, ``start=0``, ``duration = n_samples / sfreq``).
Every event carries its ``subject`` (``"01"``, ...): the link to the subject's entities.

The ``anatomy`` modality (:mod:`neuralset.synthetic.anatomy`) writes no events but each
subject's anatomy (head<->MRI transform, a volume atlas, an empty-room MEG recording) and gives
the MEG files a sensor geometry and a digitisation, so source imaging runs offline
(:meth:`SyntheticStudy.entities` lists the files).

Modalities are pluggable: :data:`SYNTHETIC_WRITERS` maps a modality name to a
``"module:function"`` writer ``fn(study, subject, folder, rng, words) -> events`` that writes its
files if they do not exist yet (atomically: temporary name, then :func:`os.replace`) and returns
the modality's events. ``subject`` is 0-based, ``folder`` is ``path / "sub-XX"``, ``rng`` is a
generator private to (seed, subject, modality) and ``words`` holds the subject's ``Word``,
``Sentence`` and ``Stimulus`` events (filter on ``type``). Writers run on every
:meth:`SyntheticStudy.timeline_events` call, so the events they return must not need the files.
``synthetic.json`` in ``path`` records the generation parameters: a study with other parameters
at the same path is an error, never a mix of files.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from ..store import Store
from ..studies.base import Study
from ..validation import at_least, in_range, one_of, require, required, unique
from .files import dry_run, is_dry_run

__all__ = [
    "SyntheticStudy",
    "SYNTHETIC_WRITERS",
    "EEG_NAMES",
    "VOCABULARY",
]

#: modality name -> "module:function" writer (imported lazily).
SYNTHETIC_WRITERS: dict[str, str] = {
    "meg": "neuralset.synthetic.meeg:write_meg",
    "eeg": "neuralset.synthetic.meeg:write_eeg",
    "ieeg": "neuralset.synthetic.recordings:write_ieeg",
    "emg": "neuralset.synthetic.recordings:write_emg",
    "fnirs": "neuralset.synthetic.recordings:write_fnirs",
    "spikes": "neuralset.synthetic.recordings:write_spikes",
    "fmri": "neuralset.synthetic.fmri:write_fmri",
    "anatomy": "neuralset.synthetic.anatomy:write_anatomy",
    "audio": "neuralset.synthetic.stimuli:write_audio",
    "image": "neuralset.synthetic.stimuli:write_image",
    "video": "neuralset.synthetic.stimuli:write_video",
}

#: word -> (category code, category name)
VOCABULARY: dict[str, tuple[int, str]] = {
    **{w: (1, "animal") for w in ("cat", "dog", "horse", "bird", "fish", "mouse", "lion", "bear")},
    **{
        w: (2, "food") for w in ("bread", "apple", "cheese", "rice", "soup", "cake", "pear", "milk")
    },
    **{
        w: (3, "tool")
        for w in ("hammer", "knife", "saw", "spoon", "brush", "needle", "rope", "axe")
    },
    **{w: (4, "function") for w in ("the", "a", "and", "of", "to", "with", "in", "on")},
}

# classic 10-20 first, then the remaining 10-10 positions of the standard 10-20 montage
EEG_NAMES: tuple[str, ...] = tuple(
    (
        "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2 "
        "Fpz AF9 AF7 AF5 AF3 AF1 AFz AF2 AF4 AF6 AF8 AF10 F9 F5 F1 F2 F6 F10 FT9 FT7 FC5 FC3 "
        "FC1 FCz FC2 FC4 FC6 FT8 FT10 T9 C5 C1 C2 C6 T10 TP9 TP7 CP5 CP3 CP1 CPz CP2 CP4 CP6 "
        "TP8 TP10 P9 P5 P1 P2 P6 P10 PO9 PO7 PO5 PO3 PO1 POz PO2 PO4 PO6 PO8 PO10 Oz O9 Iz O10"
    ).split()
)

RAMP_CHANNEL = "RAMP"
RESPONSE_LATENCY = 0.1  # s after word onset
RESPONSE_WIDTH = 0.025  # s (Gaussian sigma)
N_RESPONSE_CHANNELS = 8
MEG_AMPLITUDE = 2e-12  # T, mag
GRAD_AMPLITUDE = 2e-11  # T/m, grad
EEG_AMPLITUDE = 5e-6  # V
NOISE_RATIO = 0.05  # noise std relative to the amplitude
LINE_RATIO = 0.05  # 50 Hz line amplitude relative to the amplitude
WORD_DURATION = 0.2  # s
FIRST_WORD = 1.0  # s: first onset; the last word starts at least 1 s before the end
_MANIFEST = "synthetic.json"


@register("synthetic")
@config
class SyntheticStudy(Study):
    """Deterministic synthetic MEG/EEG study written as real FIF files (see module docstring).

    Parameters
    ----------
    path
        Folder the files are written into (created on :meth:`build`).
    n_subjects
        Number of subjects (one timeline each).
    duration
        Length of each recording in seconds (>= 5).
    meg_channels, eeg_channels
        Number of MEG sensors (mag/grad triplets) and EEG channels (10-20 names; at most
        ``len(EEG_NAMES)``); the ``RAMP`` channel comes on top.
    meg_sfreq, eeg_sfreq
        Sampling frequencies in Hz (integer-valued).
    word_interval
        Mean interval between word onsets in seconds (each interval jittered by +-20%).
    seed
        Seed of everything random (each subject and modality draws from its own stream, so
        adding subjects or modalities never changes the files already written).
    modalities
        Which writers of :data:`SYNTHETIC_WRITERS` to run.

    Examples
    --------
    >>> study = SyntheticStudy(path=tmp / "synth", n_subjects=2, duration=30.0)  # doctest: +SKIP
    >>> events = study.events()  # writes the files on first use  # doctest: +SKIP
    """

    n_subjects: int = 2
    duration: float = 60.0
    meg_channels: int = 32
    meg_sfreq: float = 1000.0
    eeg_channels: int = 16
    eeg_sfreq: float = 500.0
    word_interval: float = 0.3
    seed: int = 0
    modalities: tuple[str, ...] = ("meg", "eeg")

    def creates_files(self) -> bool:
        return True

    def _check(self) -> None:
        at_least(self, "n_subjects", 1)
        at_least(self, "duration", 5, "seconds")
        at_least(self, "meg_channels", 1)
        in_range(
            self,
            "eeg_channels",
            1,
            len(EEG_NAMES),
            fix=f"there are {len(EEG_NAMES)} 10-20 positions",
        )
        for field in ("meg_sfreq", "eeg_sfreq"):
            value = getattr(self, field)
            require(
                value > 0 and value == int(value),
                self,
                field,
                f"must be a positive whole number of Hz, got {value}",
            )
        in_range(
            self,
            "word_interval",
            0.05,
            self.duration / 4,
            "seconds",
            fix="at most a quarter of duration",
        )
        required(self, "modalities", f"give at least one of {', '.join(SYNTHETIC_WRITERS)}")
        one_of(
            self,
            "modalities",
            sorted(SYNTHETIC_WRITERS),
            what="modality",
            plural="modalities",
            fix="add writers to SYNTHETIC_WRITERS",
        )
        unique(self, "modalities")

    # -- layout --------------------------------------------------------------------------
    def timelines(self) -> list[str]:
        return [f"sub-{s + 1:02d}" for s in range(self.n_subjects)]

    def subject_folder(self, subject: int) -> Path:
        """Folder of subject ``subject`` (0-based)."""
        return self.path / f"sub-{subject + 1:02d}"

    def onset_grid(self) -> float:
        """Frequency (Hz) of the grid word onsets lie on: a divisor of both sampling rates."""
        return float(math.gcd(int(self.meg_sfreq), int(self.eeg_sfreq)))

    def rng(self, subject: int, stream: str) -> np.random.Generator:
        """Independent random stream per (seed, subject, stream name)."""
        tag = int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng([self.seed, subject, tag])

    def words(self, subject: int) -> pd.DataFrame:
        """Word, Sentence and Stimulus events of a subject (deterministic, no file access)."""
        rng = self.rng(subject, "words")
        grid = self.onset_grid()
        vocab = list(VOCABULARY)
        tick = int(round(FIRST_WORD * grid))
        last = int(math.floor((self.duration - 1.0) * grid))
        lo, hi = 0.8 * self.word_interval * grid, 1.2 * self.word_interval * grid
        ticks = []
        while tick <= last:
            ticks.append(tick)
            tick += max(1, int(round(rng.uniform(lo, hi))))
        onsets = np.asarray(ticks, dtype=np.int64) / grid
        texts = [vocab[i] for i in rng.integers(0, len(vocab), size=len(onsets))]
        # sentences of 8-12 words
        sizes: list[int] = []
        while sum(sizes) < len(onsets):
            sizes.append(int(rng.integers(8, 13)))
        sizes[-1] -= sum(sizes) - len(onsets)
        sentence_of = np.repeat(np.arange(len(sizes)), sizes)
        sentences = [" ".join(texts[a:b]) for a, b in _spans(sizes)]
        tl = self.timelines()[subject]
        words = pd.DataFrame(
            {
                "type": "Word",
                "start": onsets,
                "duration": WORD_DURATION,
                "timeline": tl,
                "text": texts,
                "language": "en",
                "sentence": [sentences[i] for i in sentence_of],
            }
        )
        sent = pd.DataFrame(
            {
                "type": "Sentence",
                "start": [onsets[a] for a, _ in _spans(sizes)],
                "duration": [onsets[b - 1] + WORD_DURATION - onsets[a] for a, b in _spans(sizes)],
                "timeline": tl,
                "text": sentences,
                "language": "en",
            }
        )
        stim = pd.DataFrame(
            {
                "type": "Stimulus",
                "start": onsets,
                "duration": WORD_DURATION,
                "timeline": tl,
                "code": [VOCABULARY[t][0] for t in texts],
                "description": [VOCABULARY[t][1] for t in texts],
            }
        )
        return pd.concat([words, sent, stim], ignore_index=True)

    # -- building ------------------------------------------------------------------------
    def _manifest(self) -> dict[str, Any]:
        # what determines file contents (n_subjects and modalities only add files)
        manifest: dict[str, Any] = {
            "version": 1,
            "duration": self.duration,
            "meg_channels": self.meg_channels,
            "meg_sfreq": self.meg_sfreq,
            "eeg_channels": self.eeg_channels,
            "eeg_sfreq": self.eeg_sfreq,
            "word_interval": self.word_interval,
            "seed": self.seed,
        }
        if "anatomy" in self.modalities:  # MEG files then carry a sensor geometry
            manifest["anatomy"] = 1
        return manifest

    def _check_manifest(self) -> None:
        manifest = self._manifest()
        path = self.path / _MANIFEST
        if path.exists():
            existing = json.loads(path.read_text())
            if existing != manifest:
                diff = sorted(
                    k for k in set(manifest) | set(existing) if existing.get(k) != manifest.get(k)
                )
                raise ConfigError(
                    f"{type(self).__name__}.path: {self.path} holds a synthetic study written with "
                    f"other parameters ({', '.join(f'{k}={existing.get(k)!r}' for k in diff)}); "
                    "use another path or delete that folder"
                )
            return
        if is_dry_run():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{_MANIFEST}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, path)

    def preview_events(self, store: Store | None = None) -> pd.DataFrame:
        """The events of the files this study writes, writing none of them (see the base)."""
        with dry_run():
            return super().preview_events(store)

    def build(self) -> None:
        """Write every missing file (existing complete files are kept; resumes interrupted builds)."""
        self._check_manifest()
        for tl in self.timelines():
            self.timeline_events(tl)

    def timeline_events(self, timeline: str) -> pd.DataFrame:
        subject = self.timelines().index(timeline)
        self._check_manifest()
        words = self.words(subject)
        folder = self.subject_folder(subject)
        if not is_dry_run():
            folder.mkdir(parents=True, exist_ok=True)
        frames = [words]
        for modality in self.modalities:
            writer = _writer(modality)
            frames.append(writer(self, subject, folder, self.rng(subject, modality), words))
        events = pd.concat([f for f in frames if len(f)], ignore_index=True)
        events["subject"] = f"{subject + 1:02d}"  # the link to the subject's entities
        return events.sort_values("start", kind="stable", ignore_index=True)


def _spans(sizes: list[int]) -> list[tuple[int, int]]:
    ends = np.cumsum(sizes)
    return [(int(e - s), int(e)) for s, e in zip(sizes, ends)]


def _writer(modality: str) -> Callable[..., pd.DataFrame]:
    module, _, attr = SYNTHETIC_WRITERS[modality].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
