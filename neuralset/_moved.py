"""Old module paths of neuralset 0.1, kept importable after the move to family subpackages.

``import neuralset.extractors.meeg`` (0.1) keeps working: a meta-path finder answers with the
module that now holds those names, under a :class:`DeprecationWarning` naming the new path.
Pickles that reference an old path load too. :data:`DEFINED_IN` records where each module's
classes were defined in 0.1, for reading stores whose keys were derived from module paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED_MODULES", "DEFINED_IN", "install"]

#: 0.1 module path -> the module (or package) that now exports every name it had.
MOVED_MODULES: dict[str, str] = {
    "neuralset.extractors.channels": "neuralset.extractors.neural.channel_sets",
    "neuralset.extractors.fmri": "neuralset.extractors.neural.fmri",
    "neuralset.extractors.spikes": "neuralset.extractors.neural.spikes",
    "neuralset.extractors.meeg": "neuralset.extractors.neural.mne.meeg",
    "neuralset.extractors.meeg_read": "neuralset.extractors.neural.mne.read_steps",
    "neuralset.extractors.mne_files": "neuralset.extractors.neural.mne.headers",
    "neuralset.extractors.mne_channels": "neuralset.extractors.neural.mne.variable_channels",
    "neuralset.extractors.ieeg": "neuralset.extractors.neural.mne.ieeg",
    "neuralset.extractors.emg": "neuralset.extractors.neural.mne.emg",
    "neuralset.extractors.fnirs": "neuralset.extractors.neural.mne.fnirs",
    "neuralset.extractors.hf": "neuralset.extractors.stimulus.hf",
    "neuralset.extractors.media": "neuralset.extractors.stimulus.media",
    "neuralset.extractors.text": "neuralset.extractors.stimulus.text",
    "neuralset.extractors.audio": "neuralset.extractors.stimulus.audio",
    "neuralset.extractors.image": "neuralset.extractors.stimulus.image",
    "neuralset.extractors.video": "neuralset.extractors.stimulus.video",
    "neuralset.extractors.features": "neuralset.extractors.stimulus",
    "neuralset.extractors.debug": "neuralset.synthetic.debug_extractors",
    "neuralset.studies.synthetic": "neuralset.synthetic",
    "neuralset.studies._synthetic_files": "neuralset.synthetic.files",
    "neuralset.studies.synthetic_modalities": "neuralset.synthetic.recordings",
    "neuralset.studies.synthetic_fmri": "neuralset.synthetic.fmri",
    "neuralset.studies.synthetic_stimuli": "neuralset.synthetic.stimuli",
}

#: Module defining a class now -> the module that defined it in 0.1 (where they differ).
DEFINED_IN: dict[str, str] = {
    **{new: old for old, new in MOVED_MODULES.items() if old.rsplit(".", 1)[-1] != "features"},
    "neuralset.extractors.neural.mne.base": "neuralset.extractors.meeg",
    "neuralset.extractors.stimulus.media_features": "neuralset.extractors.features",
    "neuralset.extractors.stimulus.audio_features": "neuralset.extractors.features",
    "neuralset.extractors.stimulus.image_features": "neuralset.extractors.features",
    "neuralset.extractors.stimulus.text_features": "neuralset.extractors.features",
    "neuralset.extractors.events.table_values": "neuralset.extractors.events",
    "neuralset.extractors.events.labels": "neuralset.extractors.events",
    "neuralset.synthetic.study": "neuralset.studies.synthetic",
    "neuralset.synthetic.meeg": "neuralset.studies.synthetic",
}
del DEFINED_IN["neuralset.synthetic"]


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.target}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module is already imported."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED_MODULES.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Put the finder of old module paths on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
