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

Both wavelengths of a source-detector pair go together (the index and the Beer-Lambert law
need them all): a pair with one wavelength in ``info["bads"]`` is bad as a whole (dropped with
``drop_bads``), and ``ch_names`` must name whole pairs. The preflight checks each file against
``signal`` (``"od"`` needs intensities or optical density, ``"hbo"``/``"hbr"`` intensities or
channels of that kind) and ``sci_threshold`` (the cardiac band must lie below the file's
Nyquist frequency: above 3 Hz sampling); at lower rates, with ``sci_threshold=None``, no index
is computed (``sci`` is empty).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import numpy as np

from ....config import config, register
from ....validation import positive, require
from .headers import RecordingHeader
from .variable_channels import VariableChannelsExtractor

__all__ = ["FnirsExtractor"]

_TEMP_KEY = "neuralset_fnirs"
#: Channel types measured per wavelength (before the Beer-Lambert law).
_WAVELENGTH_TYPES = ("fnirs_cw_amplitude", "fnirs_od")
#: Top of the cardiac band (Hz) that ``scalp_coupling_index`` band-passes.
_CARDIAC_HIGH = 1.5


def _pair(name: str) -> str:
    """Source-detector pair of an fNIRS channel name (``"S1_D1 760"`` -> ``"S1_D1"``)."""
    return name.rsplit(" ", 1)[0]


def _pair_bads(names: Any, types: Any, bads: Any) -> list[str]:
    """``bads`` plus the other wavelengths of every pair with a bad wavelength (file order)."""
    bad_pairs = {_pair(b) for b, t in zip(names, types) if b in bads and t in _WAVELENGTH_TYPES}
    extra = {n for n, t in zip(names, types) if t in _WAVELENGTH_TYPES and _pair(n) in bad_pairs}
    return [n for n in names if n in bads or n in extra]


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

    def select_channels(self, header: RecordingHeader, where: str) -> list[str]:
        """The base selection with whole source-detector pairs, checked against ``signal`` and
        ``sci_threshold`` (see the module docstring)."""
        header = dataclasses.replace(
            header, bads=tuple(_pair_bads(header.names, header.types, header.bads))
        )
        selected = super().select_channels(header, where)
        types = dict(zip(header.names, header.types))
        kinds = {types[n] for n in selected}
        kept = {_pair(n) for n in selected if types[n] in _WAVELENGTH_TYPES}
        chosen = set(selected)
        left = [
            n
            for n, t in zip(header.names, header.types)
            if t in _WAVELENGTH_TYPES and _pair(n) in kept and n not in chosen
        ]
        if left:
            raise ValueError(
                f"FnirsExtractor.ch_names: {', '.join(left[:6])} of {where} left out while the "
                "other wavelengths of their source-detector pairs are kept; the scalp-coupling "
                "index and the Beer-Lambert law need every wavelength of a pair: name whole pairs "
                "in ch_names"
            )
        if self.signal == "od" and kinds & {"hbo", "hbr"}:
            raise ValueError(
                f"FnirsExtractor.signal='od': {where} holds haemoglobin (hbo/hbr), not intensities "
                "or optical density; use signal='hb' (or 'hbo', 'hbr')"
            )
        measured = kinds & set(_WAVELENGTH_TYPES)  # Beer-Lambert gives both hbo and hbr
        if self.signal in ("hbo", "hbr") and not measured and self.signal not in kinds:
            raise ValueError(
                f"FnirsExtractor.signal={self.signal!r}: no {self.signal} channel among the "
                f"selected channels of {where} (types {', '.join(sorted(kinds))}); pick "
                f"{self.signal} channels (picks, ch_names) or change signal"
            )
        nyquist = header.sfreq / 2
        if self.sci_threshold is not None and measured:
            if _CARDIAC_HIGH >= nyquist:
                raise ValueError(
                    f"FnirsExtractor.sci_threshold: the scalp-coupling index band-passes the "
                    f"cardiac band (0.7-{_CARDIAC_HIGH:g} Hz), at or above the Nyquist frequency "
                    f"({nyquist:g} Hz) of {where}, recorded at {header.sfreq:g} Hz; use "
                    "sci_threshold=None (no rejection) for this file"
                )
        return selected

    def preprocess(self, raw: Any) -> Any:
        from mne.preprocessing import nirs

        raw.info["bads"] = _pair_bads(raw.ch_names, raw.get_channel_types(), raw.info["bads"])
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
        sci: dict[str, float] = {}
        if raw.info["sfreq"] / 2 > _CARDIAC_HIGH:  # below, sci_threshold is None (preflight)
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
