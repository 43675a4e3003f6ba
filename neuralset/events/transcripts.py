"""Words with timings from a transcript file: Praat TextGrid, CSV/TSV, Gentle or MFA JSON.

Every reader returns a table with ``start``, ``duration`` (seconds from the start of the audio)
and ``text``, one row per timed word, in time order. :class:`TranscriptWords` turns the
transcripts named by stimulus events (an ``Audio`` event with a ``transcript`` column) into
``Word`` events on the timeline.

The TextGrid reader is a small parser of Praat's text formats (the long "ooTextFile" form and the
short form, UTF-8 or UTF-16): both are a sequence of values once the keys are ignored, so one
tokenizer reads either.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "words.csv"
>>> _ = path.write_text("word,start,end\\nhello,0.10,0.42\\nworld,0.50,0.93\\n")
>>> read_transcript(path).round(3).values.tolist()
[[0.1, 0.32, 'hello'], [0.5, 0.43, 'world']]
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ConfigError, config, register
from .transforms import Transform

__all__ = [
    "TranscriptError",
    "read_textgrid",
    "read_word_table",
    "read_aligner_json",
    "read_transcript",
    "TranscriptWords",
    "SILENCES",
]

#: interval labels that mark silence or noise in aligners' output (dropped by default)
SILENCES = ("", "sp", "sil", "spn", "<eps>", "<unk>", "{SL}", "{LG}", "<sil>")

_TOKEN = re.compile(
    r'"(?P<string>(?:[^"]|"")*)"'  # a quoted string ("" escapes a quote)
    r"|(?P<index>\[\s*\d*\s*\])"  # item [1], intervals [3]: indices, ignored
    r"|(?P<flag><exists>|<absent>)"
    r"|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
)


class TranscriptError(ValueError):
    """A transcript file cannot be read; the message names the file and what is wrong."""


def _frame(start: Any, stop: Any, text: Any) -> pd.DataFrame:
    start = np.asarray(start, dtype=np.float64)
    stop = np.asarray(stop, dtype=np.float64)
    out = pd.DataFrame({"start": start, "duration": stop - start, "text": list(text)})
    return out.sort_values("start", kind="stable").reset_index(drop=True)


def _textgrid_values(path: Path) -> list[Any]:
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8-sig")
    values: list[Any] = []
    for match in _TOKEN.finditer(text):
        if match.group("string") is not None:
            values.append(match.group("string").replace('""', '"'))
        elif match.group("flag") is not None:
            values.append(match.group("flag"))
        elif match.group("number") is not None:
            values.append(float(match.group("number")))
    return values


def read_textgrid(path: str | Path, tier: str | None = "words") -> pd.DataFrame:
    """The intervals (or points) of one tier of a Praat TextGrid.

    Parameters
    ----------
    path
        A ``.TextGrid`` file (long or short text format, UTF-8 or UTF-16).
    tier
        Tier name (``"words"``); ``None``: the first tier. Point tiers give zero durations.

    Raises
    ------
    TranscriptError
        Not a TextGrid, or no such tier (the message lists the tiers).
    """
    path = Path(path)
    values = _textgrid_values(path)
    if len(values) < 6 or values[0] != "ooTextFile" or values[1] != "TextGrid":
        raise TranscriptError(f"{path}: not a Praat TextGrid text file")
    pos = 4 if values[4] in ("<exists>", "<absent>") else 3
    n_tiers = int(values[pos + 1]) if values[pos] == "<exists>" else 0
    pos += 2
    names: list[str] = []
    for _ in range(n_tiers):
        kind, name = values[pos], values[pos + 1]
        count = int(values[pos + 4])
        width = 3 if kind == "IntervalTier" else 2
        body = values[pos + 5 : pos + 5 + width * count]
        pos += 5 + width * count
        names.append(str(name))
        if tier is not None and name != tier:
            continue
        if width == 3:
            return _frame(body[0::3], body[1::3], body[2::3])
        return _frame(body[0::2], body[0::2], body[1::2])
    raise TranscriptError(f"{path}: no tier {tier!r}; tiers: {', '.join(names) or 'none'}")


_COLUMNS = {
    "text": ("word", "text", "token", "label", "transcript", "alignedword"),
    "start": ("start", "onset", "begin", "tmin", "start_time", "xmin"),
    "stop": ("end", "stop", "offset", "tmax", "end_time", "xmax"),
    "duration": ("duration", "dur"),
}


def read_word_table(path: str | Path, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Timed words from a CSV or TSV table.

    Columns are found by their usual names (``word``/``text``, ``start``/``onset``,
    ``end``/``stop`` or ``duration``, any case); ``columns`` maps ``text``, ``start``, ``stop``
    or ``duration`` to other names.
    """
    path = Path(path)
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    # every cell as written: pandas would read the words "None", "null", "NA" or "nan" as
    # missing (then the text "nan"); an empty label stays "" (a silence)
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    lower = {str(c).lower(): c for c in table.columns}
    found: dict[str, Any] = {}
    for role, names in _COLUMNS.items():
        if columns and role in columns:
            if columns[role] not in table.columns:
                raise TranscriptError(f"{path}: no column {columns[role]!r} (for {role})")
            found[role] = columns[role]
            continue
        found[role] = next((lower[n] for n in names if n in lower), None)
    if (
        found["text"] is None
        or found["start"] is None
        or (found["stop"] is None and found["duration"] is None)
    ):
        raise TranscriptError(
            f"{path}: needs a word, a start and an end (or duration) column; columns: "
            f"{', '.join(map(str, table.columns))}; name them with columns={{'text': ...}}"
        )
    start = _seconds(table, found["start"], path)
    stop = (
        _seconds(table, found["stop"], path)
        if found["stop"] is not None
        else start + _seconds(table, found["duration"], path)
    )
    return _frame(start, stop, table[found["text"]])


def _seconds(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """The times of ``column`` in seconds; an empty or non-numeric cell names the rows."""
    text = table[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        shown = ", ".join(f"{i} ({text.iloc[i]!r})" for i in bad[:5])
        raise TranscriptError(
            f"{path}: column {column!r} has no time (s) at {len(bad)} word(s), rows {shown}; "
            "give each word its times, or drop the untimed rows from the file"
        )
    return values


def read_aligner_json(path: str | Path, tier: str = "words") -> pd.DataFrame:
    """Timed words from the JSON of Gentle (``words`` with ``start``/``end``) or MFA.

    Gentle words that were not found in the audio (no timing) are left out; a timed word out
    of Gentle's dictionary (``alignedWord`` ``"<unk>"``) keeps its transcript form; MFA's JSON
    (``tiers -> words -> entries: [start, end, label]``) is read from ``tier``.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    if isinstance(data, dict) and isinstance(data.get("words"), list):  # Gentle
        timed = [w for w in data["words"] if "start" in w and "end" in w]
        return _frame(
            [w["start"] for w in timed],
            [w["end"] for w in timed],
            [_gentle_text(w) for w in timed],
        )
    if isinstance(data, dict) and isinstance(data.get("tiers"), dict):  # MFA
        tiers = data["tiers"]
        if tier not in tiers:
            raise TranscriptError(f"{path}: no tier {tier!r}; tiers: {', '.join(tiers)}")
        entries = tiers[tier].get("entries", [])
        return _frame([e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries])
    raise TranscriptError(f"{path}: neither Gentle JSON (words) nor MFA JSON (tiers)")


def _gentle_text(word: dict[str, Any]) -> str:
    """Gentle's ``alignedWord``, or the transcript's ``word`` where Gentle's dictionary lacks
    it (``alignedWord`` ``"<unk>"``: a timed word, often a name, not a silence)."""
    aligned = word.get("alignedWord")
    return str(word.get("word") or "" if aligned in (None, "", "<unk>") else aligned)


def read_transcript(path: str | Path, tier: str = "words") -> pd.DataFrame:
    """Timed words of a transcript file, by its suffix (TextGrid, CSV/TSV, JSON).

    Parameters
    ----------
    path
        The transcript file.
    tier
        Tier of the words in a TextGrid or an aligner's JSON (ignored for CSV/TSV).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise TranscriptError(f"transcript not found: {path}")
    if suffix == ".textgrid":
        return read_textgrid(path, tier)
    if suffix in (".csv", ".tsv", ".tab"):
        return read_word_table(path)
    if suffix == ".json":
        return read_aligner_json(path, tier)
    raise TranscriptError(
        f"{path}: unknown transcript format {suffix!r} (TextGrid, csv, tsv, json)"
    )


@register("transcript_words")
@config
class TranscriptWords(Transform):
    """Add the timed words of the transcripts named by stimulus events as ``Word`` events.

    Each event of ``event_type`` whose ``column`` names a transcript file (absolute, or relative
    to ``study_root``) gets the file's words at ``event.start + word.start - event.offset``;
    words outside the part of the audio the event plays are left out, and so are silence
    labels (:data:`SILENCES`) unless ``keep_silences``.

    Parameters
    ----------
    event_type
        Type of the events naming the transcripts (``"Audio"``).
    column
        Column holding the transcript path.
    tier
        TextGrid or MFA tier of the words.
    keep_silences
        Keep the silence labels as words.
    """

    # 1: CSV/TSV words "None", "null", "NA", "nan" and empty labels read as "nan"; Gentle's
    # timed words out of its dictionary ("<unk>") dropped as silences
    _version = 2

    event_type: str = "Audio"
    column: str = "transcript"
    tier: str = "words"
    keep_silences: bool = False

    def _apply(self, events: pd.DataFrame) -> pd.DataFrame:
        if self.column not in events.columns:
            raise ConfigError(
                f"TranscriptWords.column: no column {self.column!r} naming the transcript files"
            )
        rows = np.flatnonzero(
            (events["type"] == self.event_type).to_numpy() & events[self.column].notna().to_numpy()
        )
        if not len(rows):
            raise ConfigError(
                f"TranscriptWords: no {self.event_type} event has a {self.column!r} to read"
            )
        tables = []
        for row in rows:  # once per transcript file
            ev = events.iloc[int(row)]
            path = Path(str(ev[self.column]))
            root = ev.get("study_root")
            if not path.is_absolute() and isinstance(root, str) and root:
                path = Path(root) / path
            words = read_transcript(path, self.tier)
            if not self.keep_silences:
                words = words[~words["text"].astype(str).str.strip().isin(SILENCES)]
            offset = float(ev["offset"]) if "offset" in ev and ev["offset"] == ev["offset"] else 0.0
            inside = (words["start"] >= offset - 1e-9) & (
                words["start"] < offset + float(ev["duration"]) - 1e-9
            )
            words = words[inside]
            tables.append(
                words.assign(
                    type="Word",
                    start=float(ev["start"]) + words["start"] - offset,
                    timeline=ev["timeline"],
                    **({"study_root": root} if isinstance(root, str) else {}),
                )
            )
        return pd.concat([events, *tables], ignore_index=True).sort_values(
            ["timeline", "start"], kind="stable"
        )
