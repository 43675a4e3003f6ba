"""Frozen, validated configuration dataclasses and their YAML form.

Every configurable object of neuralset (studies, transforms, segmenters, extractors, executors)
is a frozen, keyword-only dataclass deriving from :class:`Config`. Construction checks each
field against its annotation and runs the ``_check()`` of every class of its hierarchy (base
first), so bad input fails at once with a message that names the field and the fix.
``to_dict``/``from_dict`` and ``to_yaml``/``from_yaml`` round-trip through plain data (YAML),
with a ``kind`` tag on polymorphic entries (declared by :func:`register`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, dataclass_transform, get_args, get_origin

from .fieldwise import Fieldwise
from .hashing import legacy_mode, structural_key
from .memo import Slot, frozen_memo
from .registry import did_you_mean, kind_of, polymorphic_kinds, register, registered, resolve_kind
from .yaml_data import apply_overrides, dump_yaml, load_yaml, yaml_error_message

__all__ = [
    "Config",
    "ConfigError",
    "config",
    "register",
    "resolve_kind",
    "from_dict",
    "to_yaml",
    "from_yaml",
    "kind_of",
    "registered",
    "polymorphic_kinds",
    "load_yaml",
    "dump_yaml",
    "apply_overrides",
]

C = TypeVar("C", bound="Config")

#: :attr:`Config.key`, computed once per (frozen) instance.
_KEY: Slot[str] = Slot("structural key")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field path and the fix."""


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_HINTS: dict[type, dict[str, Any]] = {}
_CHECKS: dict[type, tuple[Callable[[Any], None], ...]] = {}


def _checks(cls: type) -> tuple[Callable[[Any], None], ...]:
    """The ``_check`` functions defined by ``cls`` and its bases, base first (cached)."""
    found = _CHECKS.get(cls)
    if found is None:
        found = tuple(
            klass.__dict__["_check"]
            for klass in reversed(cls.__mro__)
            if "_check" in klass.__dict__ and klass is not Config
        )
        _CHECKS[cls] = found
    return found


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def check_value(value: Any, annotation: Any, path: str) -> Any:
    """Check ``value`` against ``annotation`` and return it, lightly coerced.

    Coercions: int to float, list to tuple, str to Path, mapping to a nested config.

    Raises
    ------
    ConfigError
        ``"<path>: expected <type>, got <value>"``.
    """
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise ConfigError(
                f"{path}: expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}"
            )
        return value
    if origin in (Union, types.UnionType):
        return _check_union(value, annotation, path)
    if origin is tuple:
        return _check_tuple(value, annotation, path)
    if origin in (dict, Mapping, typing.Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        args = get_args(annotation) or (Any, Any)
        return {
            check_value(k, args[0], f"{path}"): check_value(v, args[1], f"{path}.{k}")
            for k, v in value.items()
        }
    if origin is Callable or origin is typing.Callable:  # type: ignore[comparison-overlap]
        if not callable(value):
            raise ConfigError(f"{path}: expected a callable, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected float, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected int, got {value!r}")
        return value
    if annotation is Path:
        if isinstance(value, str | Path):
            return Path(value).expanduser()
        raise ConfigError(f"{path}: expected a path, got {value!r}")
    if isinstance(annotation, type) and issubclass(annotation, Config):
        if isinstance(value, annotation):
            return value
        if isinstance(value, Mapping):
            return from_dict(value, annotation, path=path)
        raise ConfigError(f"{path}: expected {annotation.__name__} config, got {value!r}")
    if isinstance(annotation, type):
        if not isinstance(value, annotation):
            raise ConfigError(f"{path}: expected {annotation.__name__}, got {value!r}")
        return value
    return value


def _check_union(value: Any, annotation: Any, path: str) -> Any:
    """:func:`check_value` for ``X | Y``: the first option that accepts the value."""
    options = get_args(annotation)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        try:
            return check_value(value, option, path)
        except ConfigError:
            pass
    configs = [o for o in options if isinstance(o, type) and issubclass(o, Config)]
    if len(configs) == 1 and isinstance(value, Mapping):  # Config | None: the nested error
        return check_value(value, configs[0], path)
    raise ConfigError(f"{path}: expected {_type_name(annotation)}, got {value!r}")


def _check_tuple(value: Any, annotation: Any, path: str) -> tuple[Any, ...]:
    """:func:`check_value` for ``tuple[X, ...]`` and ``tuple[X, Y]`` (a list is accepted)."""
    args = get_args(annotation)
    if not isinstance(value, tuple | list):
        raise ConfigError(f"{path}: expected {_type_name(annotation)}, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(check_value(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if args and len(args) != len(value):
        raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}: {value!r}")
    return tuple(check_value(v, a, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Config(Fieldwise):
    """Base class of every neuralset configuration: frozen, keyword-only, validated.

    Subclasses are declared with ``@config`` (a frozen keyword-only dataclass). Fields are
    checked against their annotations at construction, then the ``_check`` of every class of
    the hierarchy runs, base first (see :meth:`_check`). Fields declared with
    ``field(metadata={"key": False})`` do not change results and stay out of the cache key.
    Bump the class attribute ``_version`` when the computation behind a class changes.
    """

    kind: ClassVar[str] = ""
    _version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__}: declare the YAML kind with @register({cls.kind!r}) "
                "above @config, not as a class attribute"
            )
        cls.kind = ""  # a subclass does not inherit its parent's kind (nor its keys)

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        name = type(self).__name__
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            checked = check_value(value, hints[f.name], f"{name}.{f.name}")
            if checked is not value:
                object.__setattr__(self, f.name, checked)
        for check in _checks(type(self)):
            check(self)

    def _check(self) -> None:
        """This class's own rules; raise :class:`ConfigError` naming the field and the fix.

        Every class of the hierarchy that defines ``_check`` has it run at construction, base
        classes first, so a subclass states only its new rules and never calls
        ``super()._check()``. The validators of :mod:`neuralset.validation` state a rule in
        one line with the standard message.
        """

    @property
    def key(self) -> str:
        """Structural key of this config (fields marked ``key: False`` excluded)."""
        if legacy_mode():
            return structural_key(self)
        return frozen_memo(self).get_or_set(_KEY, lambda: structural_key(self))

    def replace(self: C, **changes: Any) -> C:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML), with a ``kind`` tag when the class is registered."""
        out: dict[str, Any] = {}
        if kind_of(type(self)):
            out["kind"] = kind_of(type(self))
        for f in dataclasses.fields(self):
            out[f.name] = _to_plain(getattr(self, f.name))
        return out

    def to_yaml(self) -> str:
        """YAML text that :func:`from_yaml` reads back to an equal config (same key).

        Raises
        ------
        ConfigError
            When a nested entry of a polymorphic field (an extractor, a study...) has a class
            without a kind: it could not be read back. Register the class with ``@register``.
        """
        return to_yaml(self)


@dataclass_transform(
    frozen_default=True, kw_only_default=True, field_specifiers=(dataclasses.field,)
)
def config(cls: type[C]) -> type[C]:
    """Declare a :class:`Config` subclass: a frozen, keyword-only dataclass.

    A misspelt keyword names the closest fields (``MegExtractor(frequncy=100.0)`` says "did
    you mean 'frequency'?").
    """
    cls = dataclasses.dataclass(frozen=True, kw_only=True, repr=False, eq=False)(cls)
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except TypeError as err:
            better = _signature_error(type(self), err, kwargs)
            if better is None:
                raise
            raise better from None

    cls.__init__ = __init__  # type: ignore[assignment]
    return cls


def _signature_error(cls: type, err: TypeError, kwargs: dict[str, Any]) -> TypeError | None:
    """``err`` (raised by a config's ``__init__``) for an unknown keyword, with the closest
    field names; None for any other ``TypeError``."""
    text = str(err)
    if "__init__() got an unexpected keyword argument" not in text:
        return None
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = next((k for k in kwargs if k not in names), None)
    if unknown is None:
        return None
    return TypeError(
        f"{cls.__name__}: {unknown!r} is not a field{did_you_mean(unknown, names)}; fields: "
        f"{', '.join(sorted(names))}"
    )


def _to_plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def from_dict(data: Mapping[str, Any], cls: type[C] | None = None, *, path: str = "") -> C:
    """Build a config from plain data, resolving a ``kind`` tag when present.

    Unknown keys and values of the wrong type raise :class:`ConfigError` naming their path.

    Parameters
    ----------
    data
        Plain data (a mapping of field names to values, with a ``kind`` for polymorphic ones).
    cls
        The class built; ``None``: the one ``data["kind"]`` names.
    path
        Where ``data`` sits in a larger document, for the messages (``"extractors.meg"``).
    """
    data = dict(data)
    kind = data.pop("kind", None)
    target: type[Config]
    if kind is not None:
        try:
            target = resolve_kind(str(kind))
        except ConfigError as err:
            message = str(err)
            allowed = polymorphic_kinds(cls) if cls is not None else []
            if allowed and cls is not None:  # name the kinds that fit here, not all of them
                message = (
                    f"unknown kind {kind!r}{did_you_mean(str(kind), allowed)}; "
                    f"{_a(cls.__name__)} entry names its class with one of: {', '.join(allowed)}"
                )
            raise ConfigError(f"{path}: {message}" if path else message) from None
        if cls is not None and not issubclass(target, cls):
            allowed = polymorphic_kinds(cls)
            raise ConfigError(
                f"{path or 'config'}: kind {kind!r} is not {_a(cls.__name__)}"
                + (f"; expected one of: {', '.join(allowed)}" if allowed else "")
            )
    elif cls is not None and (kind_of(cls) or not _is_polymorphic(cls)):
        target = cls
    else:
        allowed = polymorphic_kinds(cls or Config)
        what = _a(cls.__name__ if cls is not None else "config")
        raise ConfigError(
            f"{path or 'config'}: missing 'kind'; {what} entry names its class with one of: "
            f"{', '.join(allowed)}"
        )
    names = {f.name for f in dataclasses.fields(target) if f.init}
    prefix = f"{path}." if path else ""
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key for {target.__name__}"
            f"{did_you_mean(unknown[0], names)}; allowed keys: {', '.join(sorted(names))}"
        )
    hints = _hints(target)
    missing = [f.name for f in dataclasses.fields(target) if f.init and f.name not in data
               and f.default is f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        raise ConfigError(
            f"{prefix}{missing[0]}: missing; {target.__name__} requires it "
            f"({_type_name(hints[missing[0]])}); add `{missing[0]}:` to the entry"
        )
    values = {k: check_value(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return target(**values)  # type: ignore[return-value]
    except TypeError as err:
        raise ConfigError(f"{path or target.__name__}: {err}") from None
    except ConfigError as err:
        if not path:
            raise
        raise ConfigError(f"{path}: {err}") from None


def _a(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _is_polymorphic(cls: type[Config]) -> bool:
    """Whether ``cls`` is a base that YAML entries must name a subclass of (by ``kind``)."""
    return cls is Config or bool(polymorphic_kinds(cls))


def to_yaml(cfg: Config) -> str:
    """YAML text of a config (see :meth:`Config.to_yaml`); :func:`from_yaml` reads it back.

    Parameters
    ----------
    cfg
        The config.
    """
    _check_writable(cfg, type(cfg).__name__, type(cfg))
    return dump_yaml(cfg)


def from_yaml(text: str, cls: type[C] | None = None) -> C:
    """The config written in YAML ``text`` (its ``kind`` names the class, or give ``cls``).

    Parameters
    ----------
    text
        YAML text.
    cls
        The class built; ``None``: the one the text's ``kind`` names.
    """
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(yaml_error_message(err, "YAML config")) from None
    if not isinstance(data, Mapping):
        raise ConfigError("YAML config: expected a mapping at the top level")
    return from_dict(data, cls)


def _check_writable(value: Any, path: str, declared: Any) -> None:
    """Raise if a config nested under a polymorphic annotation has no kind (no read back)."""
    if isinstance(value, Config):
        cls = type(value)
        exact = cls is declared or (
            get_origin(declared) in (Union, types.UnionType) and cls in get_args(declared)
        )
        if not exact and not kind_of(cls):
            raise ConfigError(
                f"{path}: {cls.__module__}.{cls.__qualname__} has no kind, so its YAML would not read back; "
                "declare one with @register('my_kind') above @config"
            )
        hints = _hints(cls)
        for f in dataclasses.fields(value):
            _check_writable(getattr(value, f.name), f"{path}.{f.name}", hints.get(f.name))
    elif isinstance(value, tuple | list):
        inner = _element_type(declared, tuple)
        for i, v in enumerate(value):
            _check_writable(v, f"{path}[{i}]", inner)
    elif isinstance(value, Mapping):
        inner = _element_type(declared, dict)
        for k, v in value.items():
            _check_writable(v, f"{path}.{k}", inner)


def _element_type(annotation: Any, container: type) -> Any:
    """The element annotation of ``tuple[X, ...]`` / ``dict[str, X]`` (``Any`` otherwise)."""
    union = get_origin(annotation) in (Union, types.UnionType)
    for option in get_args(annotation) if union else (annotation,):
        args = get_args(option)
        if container is tuple and get_origin(option) is tuple and args:
            return args[0]
        if container is dict and get_origin(option) in (dict, Mapping) and len(args) == 2:
            return args[1]
    return Any
