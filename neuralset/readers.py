"""Opening recording files with MNE, with the reader options some formats need.

Every recording header and every recording read goes through :func:`open_raw`, which calls
``mne.io.read_raw(path, preload=False, **reader_options)``. Most formats need no option. Some
files do not describe themselves fully and MNE asks the reader for what is missing: a Neuroscan
``.cnt`` file does not always say whether its samples are 16- or 32-bit integers, and MNE then
refuses to guess (``data_format``). Neuroscan ``.cnt`` files (recognised by their first bytes)
are opened with ``mne.io.read_raw_cnt`` directly, so that its own error reaches the user
(``mne.io.read_raw`` would also try the ANT Neuro reader and report only that both failed).
Any other ``.cnt`` (an ANT Neuro file, a RIFF container) goes through ``mne.io.read_raw``, which
reads it with ``mne.io.read_raw_ant`` (the ``antio`` package, in the ``meg`` extra). The same options must then be given where the file is
listed (:class:`~neuralset.studies.recordings.RecordingsStudy` ``reader_options``) and where it
is read (:class:`~neuralset.extractors.neural.mne.base.MneExtractor` ``reader_options``); a
mismatch shows up as a header that disagrees with the events (another length), which prepare
refuses before any work.

:func:`reader_hint` turns MNE's errors about a missing option into the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "ReaderOptions",
    "open_raw",
    "reader_hint",
    "unreadable_error",
    "is_split_part",
]

#: Keyword arguments of ``mne.io.read_raw`` (and of the format's own reader it calls).
ReaderOptions = dict[str, str | int | float | bool]

#: (words in MNE's error, what is wrong, the option to set) for the options MNE asks for.
_OPTION_FIXES = (
    (
        "data_format",
        "this Neuroscan CNT file does not record how its samples are stored, and MNE will not "
        "guess",
        "reader_options={'data_format': 'int16'} (or 'int32'; 16-bit is the most common)",
    ),
)


def open_raw(path: Path | str, reader_options: ReaderOptions | None = None, **extra: Any) -> Any:
    """``mne.io.read_raw(path, preload=False)`` with ``reader_options`` (and ``extra``).

    Parameters
    ----------
    path
        The recording file (or folder, for CTF ``.ds`` and EGI ``.mff``).
    reader_options
        Keyword arguments for ``mne.io.read_raw`` and the format's reader (e.g.
        ``{"data_format": "int16"}`` for a Neuroscan ``.cnt``).
    **extra
        More keyword arguments, set by the caller (e.g. ``stim_channel`` for EDF).

    Returns
    -------
    mne.io.BaseRaw
        The raw, data not loaded.
    """
    import mne

    kwargs: dict[str, Any] = {**(reader_options or {}), **extra}
    if _is_neuroscan_cnt(path):  # read_raw would hide the CNT reader's error behind ANT's
        return mne.io.read_raw_cnt(path, preload=False, verbose="error", **kwargs)
    return mne.io.read_raw(path, preload=False, verbose="error", **kwargs)


def _is_neuroscan_cnt(path: Path | str) -> bool:
    """Whether ``path`` is a Neuroscan ``.cnt`` (its header opens with ``Version 3.0``; an ANT
    Neuro ``.cnt`` is a RIFF file)."""
    if not str(path).lower().endswith(".cnt"):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(11) == b"Version 3.0"
    except OSError:
        return False


def reader_hint(err: BaseException, owner: str) -> str | None:
    """What is wrong and the fix, for a reading error in which MNE asks for an option by name
    (else ``None``). ``owner`` is the config that takes the option (``"RecordingsStudy"``)."""
    text = str(err)
    for words, what, option in _OPTION_FIXES:
        if words in text:
            return f"{what}; set {owner}.{option}"
    return None


def unreadable_error(owner: str, path: Path | str, label: str, err: BaseException) -> ValueError:
    """The error of an extractor that cannot open ``path`` (the event ``label``): MNE's reason,
    or what is wrong and the option to set when MNE asks for one."""
    hint = reader_hint(err, owner)
    reason = hint if hint else str(err)
    return ValueError(f"{owner}: cannot read {path} ({label}): {reason}")


_LEGACY_PART = re.compile(r"^(.+)-\d+(\.fif(?:\.gz)?)$", re.IGNORECASE)
_BIDS_PART = re.compile(r"_split-0*([2-9]|[1-9]\d+)_")


def is_split_part(path: Path) -> bool:
    """Whether ``path`` continues a split FIF file, to be read with its first part: a BIDS
    ``_split-NN_`` part other than the first, or ``name-N.fif`` beside a ``name.fif`` (MNE's
    own split naming; without that first part, ``run-1.fif`` is a recording of its own)."""
    if _BIDS_PART.search(path.name):
        return True
    legacy = _LEGACY_PART.match(path.name)
    return legacy is not None and (path.parent / (legacy.group(1) + legacy.group(2))).exists()
