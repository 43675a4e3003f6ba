"""MOABB's BCI datasets (80+) through one adapter: :class:`MoabbStudy`.

MOABB (Mother of All BCI Benchmarks) knows where each of its datasets lives and downloads it
(into ``MNE_DATA``, MOABB's own cache); this study asks it for the raw recordings of the chosen
subjects once (``dataset.get_data``), writes each run as a FIF file under ``path`` (so the store
keys, the extractors and the executors work on it like on any recording), and turns MOABB's events
into ``Stimulus`` events the way MOABB's paradigms find them: the stim channel when the raw has
one (``mne.find_events(shortest_event=0)``), else the annotations named in the dataset's
``event_id`` (whose onsets MOABB places at the start of the trial interval, so the interval's
start is taken back off). ``description`` is the class name (``"left_hand"``, ``"Target"``),
``code`` its integer.

Files are written per subject, each run atomically, and a subject's ``manifest.json`` last: a crash
mid-way leaves that subject to be written again, and a later call with the files in place reads
only the manifests (nothing imported from MOABB).

Trials: :meth:`MoabbStudy.interval` gives the dataset's trial interval (seconds after the cue), so
``segment_on_triggers(events, "Stimulus", offset=tmin, duration=tmax - tmin + 1 / sfreq)`` makes
the windows of MOABB's epochs (both ends included, as in ``mne.Epochs``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from ..validation import require
from .base import Study
from .bids_files import stack_columns

__all__ = ["MoabbStudy", "moabb_events"]


def moabb_events(raw: Any, event_id: dict[str, Any], interval: tuple[float, float]) -> np.ndarray:
    """``(n, 2)`` samples (from the first sample) and codes of a raw's trials, as MOABB finds them."""
    import mne

    stim = mne.utils._get_stim_channel(None, raw.info, raise_error=False)
    if len(stim) > 0:
        found = mne.find_events(raw, shortest_event=0, verbose="error")
    else:
        codes = {k: v for k, v in event_id.items() if not isinstance(v, list)}
        try:
            found, _ = mne.events_from_annotations(raw, event_id=codes, verbose="error")
        except ValueError:
            found = np.zeros((0, 3), dtype=np.int64)
        found[:, 0] -= int(interval[0] * raw.info["sfreq"])
    wanted = set(_codes(event_id))
    found = found[np.isin(found[:, 2], list(wanted))]
    return np.stack([found[:, 0] - raw.first_samp, found[:, 2]], axis=1).astype(np.int64)


def _codes(event_id: dict[str, Any]) -> dict[int, str]:
    """code -> class name (P300 datasets list several codes per class)."""
    out: dict[int, str] = {}
    for name, value in event_id.items():
        for code in value if isinstance(value, list) else [value]:
            out[int(code)] = str(name)
    return out


@register("moabb")
@config
class MoabbStudy(Study):
    """A MOABB dataset, written as FIF files under ``path`` (see the module docstring).

    Parameters
    ----------
    path
        Folder for the FIF files and manifests (created; a sub-folder per dataset code).
    dataset
        Name of a class of ``moabb.datasets`` (``"BNCI2014_001"``, ``"Zhou2016"``...), or
        ``"FakeDataset"`` (``moabb.datasets.fake``, generated offline).
    dataset_params
        Keyword arguments of the dataset class (e.g. ``{"paradigm": "p300"}`` for FakeDataset).
    subjects
        Subject numbers to use (empty: all of the dataset's ``subject_list``).
    """

    tracks_files: ClassVar[bool] = True

    dataset: str
    dataset_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    subjects: tuple[int, ...] = ()

    def _check(self) -> None:
        require(
            self.dataset.isidentifier(),
            self,
            "dataset",
            f"expected the name of a moabb.datasets class such as 'BNCI2014_001', got "
            f"{self.dataset!r}",
        )

    def creates_files(self) -> bool:
        return True

    # -- MOABB (imported only to write files) ------------------------------------------------
    def moabb_dataset(self) -> Any:
        """The MOABB dataset object (imports moabb)."""
        try:
            import moabb.datasets as datasets
            from moabb.datasets import fake
        except ImportError as err:
            raise ConfigError(
                f"MoabbStudy needs the moabb package ({err}); pip install moabb"
            ) from None
        cls = getattr(fake if self.dataset == "FakeDataset" else datasets, self.dataset, None)
        if cls is None:
            known = sorted(n for n in dir(datasets) if not n.startswith("_") and n[0].isupper())
            raise ConfigError(
                f"MoabbStudy.dataset: moabb.datasets has no {self.dataset!r}; known: "
                f"{', '.join(known[:40])}..."
            )
        try:
            return cls(**self.dataset_params)
        except TypeError as err:
            raise ConfigError(f"MoabbStudy.dataset_params: {self.dataset}: {err}") from None

    def _folder(self) -> Path:
        return self.path / self.dataset

    def _manifest(self, subject: int) -> Path:
        return self._folder() / f"sub-{subject}" / "manifest.json"

    def _wanted_subjects(self, *, write: bool = True) -> list[int]:
        if self.subjects:
            return list(self.subjects)
        listing = self._folder() / "subjects.json"
        if listing.is_file():
            return [int(s) for s in json.loads(listing.read_text())]
        subjects = [int(s) for s in self.moabb_dataset().subject_list]
        if write:
            _write_json(listing, subjects)
        return subjects

    def build(self) -> None:
        """Write the FIF files and manifests of the subjects not written yet (MOABB downloads)."""
        todo = [s for s in self._wanted_subjects() if not self._manifest(s).is_file()]
        if not todo:
            return
        dataset = self.moabb_dataset()
        unknown = sorted(set(todo) - {int(s) for s in dataset.subject_list})
        if unknown:
            raise ConfigError(
                f"MoabbStudy.subjects: {unknown} not in {self.dataset}'s subject_list "
                f"{list(dataset.subject_list)}"
            )
        for subject in todo:
            self._write_subject(dataset, subject)

    def _write_subject(self, dataset: Any, subject: int) -> None:
        data = dataset.get_data([subject])[subject]
        folder = self._folder() / f"sub-{subject}"
        folder.mkdir(parents=True, exist_ok=True)
        interval = [float(v) for v in dataset.interval]
        runs = []
        for session, session_runs in data.items():
            for run, raw in session_runs.items():
                name = f"sub-{subject}_ses-{session}_run-{run}_eeg.fif"
                tmp = folder / f".tmp-{os.getpid()}-{name}"
                raw.save(tmp, overwrite=True, verbose="error")
                os.replace(tmp, folder / name)
                found = moabb_events(raw, dataset.event_id, dataset.interval)
                runs.append(
                    {
                        "session": str(session),
                        "run": str(run),
                        "file": name,
                        "sfreq": float(raw.info["sfreq"]),
                        "n_times": int(raw.n_times),
                        "events": found.tolist(),
                    }
                )
        manifest = {
            "dataset": self.dataset,
            "code": str(getattr(dataset, "code", self.dataset)),
            "paradigm": str(getattr(dataset, "paradigm", "")),
            "event_id": {k: v for k, v in dataset.event_id.items()},
            "interval": interval,
            "runs": runs,
        }
        _write_json(self._manifest(subject), manifest)

    # -- events (from the manifests) --------------------------------------------------------
    def _manifests(self) -> dict[int, dict[str, Any]]:
        """The manifests of the written subjects (nothing is written here: see :meth:`build`)."""
        wanted = self._wanted_subjects(write=False)
        missing = [s for s in wanted if not self._manifest(s).is_file()]
        if missing:
            raise ConfigError(
                f"MoabbStudy: subjects {missing} of {self.dataset} are not written under "
                f"{self.path} yet; study.events() (or `neuralset prepare`) has MOABB download "
                "them and writes their files"
            )
        return {s: json.loads(self._manifest(s).read_text()) for s in wanted}

    def interval(self) -> tuple[float, float]:
        """The dataset's trial interval in seconds after each cue (MOABB's ``interval``; from
        the manifests, so after ``events()``)."""
        manifests = self._manifests()
        first = next(iter(manifests.values()))
        return float(first["interval"][0]), float(first["interval"][1])

    def timelines(self) -> list[str]:
        """The runs of the written subjects (call :meth:`build`, or ``events()``, first)."""
        return [
            f"sub-{s}_ses-{r['session']}_run-{r['run']}"
            for s, m in self._manifests().items()
            for r in m["runs"]
        ]

    def timeline_events(self, timeline: str) -> pd.DataFrame:
        table = self.all_timeline_events()
        return table[table["timeline"] == timeline].reset_index(drop=True)

    def all_timeline_events(self) -> pd.DataFrame:
        parts: list[dict[str, Any]] = []
        for subject, manifest in self._manifests().items():
            names = _codes(manifest["event_id"])
            for run in manifest["runs"]:
                timeline = f"sub-{subject}_ses-{run['session']}_run-{run['run']}"
                sfreq = run["sfreq"]
                shared = {
                    "timeline": timeline,
                    "subject": str(subject),
                    "session": run["session"],
                    "run": run["run"],
                }
                parts.append(
                    {
                        "type": "Eeg",
                        "start": np.zeros(1),
                        "duration": run["n_times"] / sfreq,
                        "duration_source": "header",
                        "frequency": sfreq,
                        "offset": 0.0,
                        "filepath": f"{self.dataset}/sub-{subject}/{run['file']}",
                        **shared,
                    }
                )
                found = np.asarray(run["events"], dtype=np.int64).reshape(-1, 2)
                if len(found):
                    parts.append(
                        {
                            "type": "Stimulus",
                            "start": found[:, 0] / sfreq,
                            "duration": 0.0,
                            "code": found[:, 1],
                            "description": [names[int(c)] for c in found[:, 1]],
                            **shared,
                        }
                    )
        return stack_columns(parts)


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)
