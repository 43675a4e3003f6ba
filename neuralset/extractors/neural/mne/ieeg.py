"""Intracranial EEG (sEEG depth shanks and ECoG grids/strips) through MNE.

:class:`IeegExtractor` reads ``Ieeg`` recording events with the M/EEG pipeline of
:class:`~neuralset.extractors.neural.mne.base.MneExtractor` and adds, in :meth:`IeegExtractor.preprocess`:

1. ``reference``: ``"bipolar"`` - each contact minus its next neighbour on the same shank
   (``mne.set_bipolar_reference``, see :func:`bipolar_pairs`), ``"average"`` - common average
   of the iEEG channels (``raw.set_eeg_reference("average")``), or ``"none"``;
2. ``notch`` (before the envelope, since line harmonics fall in the high-gamma band);
3. ``envelope``: band-pass ``raw.filter(low, high)`` then the amplitude of the analytic signal
   ``raw.apply_hilbert(envelope=True)`` - the high-gamma envelope with ``(70, 150)``.

then the base's ``filter`` (e.g. a low-pass that smooths the envelope), crop and ``resample``.

Channel sets differ per subject: see ``channels`` (per-recording lists or their union with a
mask of missing channels, :mod:`neuralset.extractors.neural.channel_sets`).

EDF and BrainVision files store no channel types: MNE reads their channels as ``"eeg"``, which
the default ``picks`` include; non-iEEG channels (``misc``, ``stim``...) are left out unless picked,
and are never re-referenced.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from ....config import config, register
from ....validation import require
from .headers import RecordingHeader
from .variable_channels import VariableChannelsExtractor

__all__ = ["IeegExtractor", "bipolar_pairs", "shank_contacts", "IEEG_TYPES"]

#: Channel types re-referenced and enveloped (MNE types; EDF/BrainVision channels read as "eeg").
IEEG_TYPES: tuple[str, ...] = ("seeg", "ecog", "dbs", "eeg")
_CONTACT = re.compile(r"^(?P<shank>.*?\D)?\s*(?P<number>\d+)$")


def shank_contacts(ch_names: list[str] | tuple[str, ...]) -> dict[str, list[tuple[int, str]]]:
    """Contacts per shank from channel names: a shank prefix then a contact number.

    ``"LA1"``, ``"LA 2"``, ``"LA03"`` are contacts 1, 2, 3 of shank ``"LA"``; names without a
    trailing number belong to no shank and are left out.

    Returns
    -------
    dict
        Shank name -> ``[(contact number, channel name), ...]`` sorted by contact number.
    """
    shanks: dict[str, list[tuple[int, str]]] = {}
    for name in ch_names:
        match = _CONTACT.match(name.strip())
        if match is None or not match.group("shank"):
            continue
        shank = match.group("shank").strip().rstrip("-_ ")
        shanks.setdefault(shank, []).append((int(match.group("number")), name))
    return {k: sorted(v) for k, v in shanks.items()}


def bipolar_pairs(ch_names: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Anodes and cathodes of the bipolar montage: neighbouring contacts of each shank.

    Contact ``n`` is paired with contact ``n + 1`` of the same shank when both are present
    (``"LA1"``, ``"LA2"`` -> ``"LA1-LA2"``); a contact whose neighbour is missing (e.g. dropped as
    bad) forms no pair across the gap.

    Returns
    -------
    anodes, cathodes
        Channel names, in shank order of first appearance then contact order.
    """
    anodes: list[str] = []
    cathodes: list[str] = []
    for contacts in shank_contacts(ch_names).values():
        for (n1, a), (n2, c) in zip(contacts, contacts[1:]):
            if n2 == n1 + 1:
                anodes.append(a)
                cathodes.append(c)
    return anodes, cathodes


@register("ieeg")
@config
class IeegExtractor(VariableChannelsExtractor):
    """Intracranial EEG recordings (``Ieeg`` events): re-referencing and high-gamma envelope.

    Parameters
    ----------
    reference
        ``"bipolar"`` (neighbouring contacts of a shank, see :func:`bipolar_pairs`; unpaired
        iEEG contacts are dropped), ``"average"`` (common average over the iEEG channels;
        ``info["bads"]`` left out of the mean) or ``"none"``.
    envelope
        ``(low, high)`` band in Hz whose Hilbert amplitude envelope replaces each iEEG channel
        (e.g. ``(70.0, 150.0)`` for high gamma); ``None`` keeps the signal. ``high`` must lie
        below the file's Nyquist frequency. Not with ``causal=True`` (the band-pass and the
        Hilbert transform are zero-phase).
    picks
        Default ``("seeg", "ecog", "dbs", "eeg")``.

    Examples
    --------
    >>> ieeg = IeegExtractor(reference="bipolar", envelope=(70.0, 150.0), frequency=50.0,
    ...                      notch=(50.0, 100.0, 150.0), channels="union")  # doctest: +SKIP
    >>> out = ieeg.read(segments, store)  # doctest: +SKIP
    >>> out.channels, out.channel_mask.shape  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Ieeg"
    default_picks: ClassVar[tuple[str, ...]] = IEEG_TYPES

    reference: Literal["bipolar", "average", "none"] = "none"
    envelope: tuple[float, float] | None = None

    def _check(self) -> None:
        require(
            self.envelope is None or 0 < self.envelope[0] < self.envelope[1],
            self,
            "envelope",
            "expected (low, high) with 0 < low < high Hz, e.g. (70.0, 150.0) for high gamma, "
            f"got {self.envelope}",
        )
        require(
            not (self.causal and self.envelope is not None),
            self,
            "causal",
            f"envelope={self.envelope} has no causal form (its zero-phase band-pass and the "
            "Hilbert transform use later samples), so causal=True would store non-causal values; "
            "use envelope=None or causal=False",
        )

    def notch_first(self) -> bool:
        return self.envelope is not None

    def _ieeg_picks(self, raw: Any) -> list[str]:
        types = raw.get_channel_types()
        return [n for n, t in zip(raw.ch_names, types) if t in IEEG_TYPES]

    def source_cutoffs(self) -> tuple[tuple[str, float | None], ...]:
        """``filter``'s cut-offs and the high cut-off of ``envelope``."""
        own = (("envelope[1] (high cut-off)", self.envelope[1]),) if self.envelope else ()
        return super().source_cutoffs() + own

    def select_channels(self, header: RecordingHeader, where: str) -> list[str]:
        """The base selection, checked against ``reference`` (before any work)."""
        selected = super().select_channels(header, where)
        types = dict(zip(header.names, header.types))
        ieeg = [n for n in selected if types[n] in IEEG_TYPES]
        self._check_reference(selected, ieeg, [n for n in ieeg if n not in header.bads], where)
        return selected

    def _check_reference(
        self, selected: list[str], ieeg: list[str], good: list[str], where: str
    ) -> None:
        """``reference`` needs iEEG channels (and, bipolar, neighbouring good contacts)."""
        if self.reference != "none" and not ieeg:
            raise ValueError(
                f"IeegExtractor.reference={self.reference!r}: no iEEG channel (types "
                f"{', '.join(IEEG_TYPES)}) among the selected channels {', '.join(selected[:8])} "
                f"of {where}; pick iEEG channels or use reference='none'"
            )
        if self.reference == "bipolar" and not bipolar_pairs(good)[0]:
            raise ValueError(
                f"IeegExtractor.reference='bipolar': no neighbouring contacts among "
                f"{', '.join(good[:8])}{'...' if len(good) > 8 else ''} of {where} (names must "
                "end with the contact number of their shank, e.g. LA1, LA2); use "
                "reference='average' or 'none'"
            )

    def preprocess(self, raw: Any) -> Any:
        import mne

        ieeg = self._ieeg_picks(raw)
        good = [n for n in ieeg if n not in raw.info["bads"]]
        self._check_reference(list(raw.ch_names), ieeg, good, "the recording")
        if self.reference == "bipolar":
            anodes, cathodes = bipolar_pairs(good)
            unpaired = [n for n in ieeg if n not in set(anodes) | set(cathodes)]
            raw = mne.set_bipolar_reference(
                raw, anodes, cathodes, drop_refs=True, copy=False, on_bad="ignore", verbose="error"
            )
            if unpaired:
                raw.drop_channels(unpaired)
        elif self.reference == "average":
            types = set(raw.get_channel_types(picks=ieeg))
            for ch_type in sorted(types):  # one common average per channel type
                raw.set_eeg_reference("average", ch_type=ch_type, projection=False, verbose="error")
        raw = self.apply_notch(raw)
        if self.envelope is not None:
            low, high = self.envelope
            nyquist = raw.info["sfreq"] / 2
            if high >= nyquist:
                raise ValueError(
                    f"IeegExtractor.envelope: high cut-off {high} Hz is not below the Nyquist "
                    f"frequency ({nyquist:g} Hz) of the recording; lower it"
                )
            picks = self._ieeg_picks(raw)
            raw.filter(low, high, picks=picks, verbose="error")
            raw.apply_hilbert(picks=picks, envelope=True, verbose="error")
        return raw
