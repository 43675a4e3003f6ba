"""fNIRS through MNE's fNIRS functions: optical density, scalp coupling, Beer-Lambert law.

:class:`FnirsExtractor` reads ``Fnirs`` recording events (SNIRF files through
``mne.io.read_raw_snirf``, or any MNE-readable fNIRS file) with the pipeline of
:class:`~neuralset.extractors.neural.mne.base.MneExtractor`, and in :meth:`FnirsExtractor.preprocess`:

1. continuous-wave intensities to optical density: ``mne.preprocessing.nirs.optical_density``;
2. scalp-coupling index on the optical density (``scalp_coupling_index``, cardiac band
   0.7-1.5 Hz): channels whose index is below ``sci_threshold`` are dropped (both wavelengths of a
   source-detector pair share one index, so pairs stay whole); the indices and the dropped channels
   go to the stored entry's meta (``sci``, ``rejected``);
3. haemoglobin concentrations: ``mne.preprocessing.nirs.beer_lambert_law(od, ppf=ppf)`` giving
   ``"S1_D1 hbo"``, ``"S1_D1 hbr"``... (or stop at optical density with ``signal="od"``);

then the base's ``filter`` (e.g. ``(0.01, 0.5)``), crop and ``resample``. Recordings already in
optical density (``fnirs_od``) skip step 1; recordings of ``hbo``/``hbr`` skip 1-3.

Rejection makes channel lists differ between recordings: see ``channels``
(:mod:`neuralset.extractors.neural.channel_sets`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from ....config import config, register
from ....validation import positive, require
from .variable_channels import VariableChannelsExtractor

__all__ = ["FnirsExtractor"]

_TEMP_KEY = "neuralset_fnirs"


@register("fnirs")
@config
class FnirsExtractor(VariableChannelsExtractor):
    """fNIRS recordings (``Fnirs`` events) to haemoglobin concentrations or optical density.

    Parameters
    ----------
    signal
        ``"hb"`` (HbO and HbR channels), ``"hbo"`` or ``"hbr"`` only, or ``"od"`` (optical
        density, no Beer-Lambert step).
    ppf
        Partial pathlength factor of the modified Beer-Lambert law.
    sci_threshold
        Channels whose scalp-coupling index is below this value are dropped; ``None`` keeps all.
    picks
        Default ``("fnirs_cw_amplitude", "fnirs_od", "hbo", "hbr")`` (whatever the file holds).

    Examples
    --------
    >>> nirs = FnirsExtractor(sci_threshold=0.7, filter=(0.01, 0.5), frequency=5.0)  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Fnirs"
    default_picks: ClassVar[tuple[str, ...]] = ("fnirs_cw_amplitude", "fnirs_od", "hbo", "hbr")

    signal: Literal["hb", "hbo", "hbr", "od"] = "hb"
    ppf: float = 6.0
    sci_threshold: float | None = 0.5

    def _check(self) -> None:
        positive(self, "ppf", what="partial pathlength factor", fix="6.0 is usual for adults")
        require(
            self.sci_threshold is None or -1.0 <= self.sci_threshold <= 1.0,
            self,
            "sci_threshold",
            "the scalp-coupling index is a correlation in [-1, 1]; "
            f"got {self.sci_threshold} (use e.g. 0.5, or None for no rejection)",
        )

    def preprocess(self, raw: Any) -> Any:
        from mne.preprocessing import nirs

        types = set(raw.get_channel_types())
        if types & {"hbo", "hbr"}:
            if self.signal == "od":
                raise ValueError(
                    "FnirsExtractor.signal='od': the recording holds haemoglobin (hbo/hbr), not "
                    "intensities; use signal='hb'"
                )
            return self._keep_signal(raw, {}, [])
        if "fnirs_cw_amplitude" in types:
            raw = nirs.optical_density(raw, verbose="error")
        elif "fnirs_od" not in types:
            raise ValueError(
                f"FnirsExtractor: no fNIRS channel among the picked types ({', '.join(sorted(types))})"
            )
        sci_values = nirs.scalp_coupling_index(raw, verbose="error")
        sci = {name: float(v) for name, v in zip(raw.ch_names, sci_values)}
        rejected: list[str] = []
        if self.sci_threshold is not None:
            rejected = [n for n, v in sci.items() if not v >= self.sci_threshold]
            if len(rejected) == len(raw.ch_names):
                raise ValueError(
                    f"FnirsExtractor.sci_threshold: every channel has a scalp-coupling index below "
                    f"{self.sci_threshold} (max {max(sci.values()):.2f}); lower the threshold or "
                    "check the recording"
                )
            if rejected:
                raw.drop_channels(rejected)
        if self.signal != "od":
            raw = nirs.beer_lambert_law(raw, ppf=self.ppf)
        return self._keep_signal(raw, sci, rejected)

    def _keep_signal(self, raw: Any, sci: dict[str, float], rejected: list[str]) -> Any:
        if self.signal in ("hbo", "hbr"):
            raw.pick(self.signal)
        raw.info["temp"] = {_TEMP_KEY: {"sci": sci, "rejected": rejected}}
        return raw

    def to_array(self, raw: Any) -> tuple[np.ndarray, float, dict[str, Any]]:
        data, sfreq, meta = super().to_array(raw)
        temp = raw.info.get("temp") or {}
        meta.update(temp.get(_TEMP_KEY, {}))
        return data, sfreq, meta
