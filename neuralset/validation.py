"""Small validators for config checks: one line per rule, one message format.

A config states its rules in its ``_check`` method, one call per rule::

    def _check(self) -> None:
        positive(self, "frequency", "Hz", optional=True)
        at_least(self, "batch_size", 1)
        one_of(self, "picks", CHANNEL_TYPES, what="channel type")
        require(self.low < self.high, self, "low", f"must be below high ({self.high}), ...")

Every failure raises :class:`~neuralset.config.ConfigError` with the same shape,
``Class.field: <what> <rule>[ (or None)], got <value>[; <fix>]``, e.g.
``MegExtractor.frequency: must be > 0 Hz (or None), got -1.0``. The class named is the
config's own class (a subclass inherits its parents' rules and messages name it). Each class
checks only its own rules: :class:`~neuralset.config.Config` runs the ``_check`` of every
class of the hierarchy, base first (never call ``super()._check()``).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Literal

from .config import ConfigError

__all__ = [
    "require",
    "positive",
    "finite",
    "at_least",
    "in_range",
    "one_of",
    "unique",
    "required",
    "existing_path",
]

_MISSING: Any = object()


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _fail(cfg: Any, field: str, text: str, fix: str = "") -> ConfigError:
    return ConfigError(f"{type(cfg).__name__}.{field}: {text}" + (f"; {fix}" if fix else ""))


def _value(cfg: Any, field: str, value: Any) -> Any:
    return getattr(cfg, field) if value is _MISSING else value


def require(ok: bool, cfg: Any, field: str, message: str) -> None:
    """A cross-field rule: raise ``Class.field: message`` unless ``ok``.

    The message states the rule, the value(s) and the fix (this function cannot know them).
    """
    if not ok:
        raise _fail(cfg, field, message)


def _bound(
    cfg: Any,
    field: str,
    ok: Any,
    rule: str,
    unit: str,
    what: str,
    optional: bool,
    fix: str,
    value: Any,
) -> None:
    value = _value(cfg, field, value)
    if value is None and optional:
        return
    if value is not None and ok(value):
        return
    text = f"{what} {rule}" if what else rule
    text += f" {unit}" if unit else ""
    text += " (or None)" if optional else ""
    raise _fail(cfg, field, f"{text}, got {_show(value)}", fix)


def positive(
    cfg: Any,
    field: str,
    unit: str = "",
    *,
    what: str = "",
    optional: bool = False,
    fix: str = "",
    value: Any = _MISSING,
) -> None:
    """``cfg.field > 0`` (``None`` accepted when ``optional``).

    Parameters
    ----------
    cfg, field
        The config and the name of the field checked (``value`` replaces ``getattr``).
    unit
        Shown after the bound (``"Hz"``, ``"seconds"``).
    what
        What the value is, before the rule (``"low-pass cut-off"``).
    optional
        ``None`` is valid (and the message says so).
    fix
        What to do, appended after the value.
    value
        The value checked, when it is not ``getattr(cfg, field)`` (e.g. one item of a tuple).
    """
    _bound(cfg, field, lambda v: v > 0, "must be > 0", unit, what, optional, fix, value)


def finite(
    cfg: Any,
    field: str,
    unit: str = "",
    *,
    optional: bool = False,
    fix: str = "",
    value: Any = _MISSING,
) -> None:
    """``cfg.field`` is a finite number, not ``inf`` or ``nan`` (see :func:`positive`)."""
    rule = "must be a finite number" + (" of" if unit else "")
    _bound(cfg, field, math.isfinite, rule, unit, "", optional, fix, value)


def at_least(
    cfg: Any,
    field: str,
    minimum: float,
    unit: str = "",
    *,
    what: str = "",
    optional: bool = False,
    fix: str = "",
    value: Any = _MISSING,
) -> None:
    """``cfg.field >= minimum`` (see :func:`positive` for the parameters)."""
    rule = f"must be >= {minimum}"
    _bound(cfg, field, lambda v: v >= minimum, rule, unit, what, optional, fix, value)


def in_range(
    cfg: Any,
    field: str,
    low: float,
    high: float,
    unit: str = "",
    *,
    what: str = "",
    optional: bool = False,
    fix: str = "",
    value: Any = _MISSING,
) -> None:
    """``low <= cfg.field <= high`` (see :func:`positive` for the parameters)."""
    rule = f"must be between {low} and {high}"
    _bound(cfg, field, lambda v: low <= v <= high, rule, unit, what, optional, fix, value)


def one_of(
    cfg: Any,
    field: str,
    allowed: Iterable[Any],
    *,
    what: str = "value",
    plural: str = "",
    fix: str = "",
    value: Any = _MISSING,
) -> None:
    """``cfg.field`` (or each of its entries, for a tuple) is one of ``allowed``.

    The message lists the allowed values: ``unknown channel type 'magg'; allowed channel
    types: mag, grad, ...``.
    """
    value = _value(cfg, field, value)
    options = list(allowed)
    for entry in value if isinstance(value, tuple | list) else (value,):
        if entry not in options:
            shown = ", ".join(_show(o) if not isinstance(o, str) else o for o in options)
            text = f"unknown {what} {entry!r}; allowed {plural or what + 's'}: {shown}"
            raise _fail(cfg, field, text, fix)


def unique(cfg: Any, field: str, *, fix: str = "give each once") -> None:
    """The entries of ``cfg.field`` (a tuple, or a mapping's keys) are distinct."""
    value: Collection[Any] = getattr(cfg, field)
    seen: set[Any] = set()
    repeated = [v for v in value if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
    if repeated:
        text = f"duplicated entries {', '.join(map(_show, dict.fromkeys(repeated)))}"
        raise _fail(cfg, field, f"{text} in {_show(value)}", fix)


def required(cfg: Any, field: str, fix: str, *, value: Any = _MISSING) -> None:
    """``cfg.field`` is not empty (``""``, ``()``, ``None``): ``Class.field: <fix> (got '')``."""
    value = _value(cfg, field, value)
    if value is None or (isinstance(value, str | tuple | list | dict) and not value):
        raise _fail(cfg, field, f"{fix} (got {_show(value)})")


def existing_path(
    cfg: Any,
    field: str,
    kind: Literal["file", "folder"] = "file",
    *,
    fix: str = "",
    value: Any = _MISSING,
) -> None:
    """``cfg.field`` (a path, or None to skip) is an existing file or folder."""
    value = _value(cfg, field, value)
    if value is None:
        return
    path = Path(value)
    if not path.exists():
        raise _fail(cfg, field, f"{kind} {path} does not exist", fix)
    if (kind == "file") != path.is_file():
        other = "folder" if kind == "file" else "file"
        raise _fail(cfg, field, f"{path} is a {other}, not a {kind}", fix)
