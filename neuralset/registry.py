"""Where YAML kinds come from: the ``@register`` decorators of the config classes themselves.

A config class declares its YAML ``kind`` once, with ``@register("my_kind")`` above ``@config``
(:func:`neuralset.config.register`); nothing else lists kinds. Resolving a kind that no imported
module has registered yet calls :func:`discover`, which imports the modules of neuralset that
hold configs (the packages in :data:`CONFIG_PACKAGES`; never the loaders, so neither torch nor
jax) and then the ``neuralset.kinds`` entry points of installed packages. Heavy libraries (MNE,
nilearn, transformers) are imported inside the functions that use them, so the walk (about 65
modules) costs about 0.2 s beyond numpy and pandas, 0.1 s more than importing the one module
that defines the kind (``benchmarks/registry.py`` measures it); it runs once per process.

Third-party packages make their kinds resolvable without an import by declaring an entry point
in the ``neuralset.kinds`` group; its value names the module that registers them::

    [project.entry-points."neuralset.kinds"]
    my_package = "my_package.configs"

:func:`kinds` lists every kind (``neuralset kinds`` prints it; the docs page
``docs/reference/kinds.md`` is generated from it by ``scripts/gen_kinds_page.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import warnings
from collections.abc import Collection
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .config import Config

C = TypeVar("C", bound="Config")

__all__ = [
    "register",
    "resolve_kind",
    "kind_of",
    "registered",
    "polymorphic_kinds",
    "did_you_mean",
    "CONFIG_PACKAGES",
    "ENTRY_POINT_GROUP",
    "KindInfo",
    "discover",
    "kinds",
    "config_classes",
    "kinds_table",
]

_REGISTRY: dict[str, type[Config]] = {}


def register(kind: str, target: type[Config] | None = None) -> Any:
    """Declare the YAML ``kind`` of a config class: the one place a kind is named.

    Use as a decorator above ``@config`` (``@register("my_study")``), or call
    ``register("my_study", MyStudy)``. The kind tags the class's YAML entries
    (``{kind: my_study, ...}``) and, with the class's ``_version`` and fields, its structural
    key (see :mod:`neuralset.hashing`), so it must stay stable: renaming a kind changes keys.
    A class has one kind and a kind one class. Subclasses do not inherit their parent's kind.

    Parameters
    ----------
    kind
        A snake_case name (``[a-z][a-z0-9_]*``).
    target
        The class, when not used as a decorator.

    Raises
    ------
    ValueError
        For a malformed kind, a kind already taken by another class, or a class that already
        has another kind.
    """
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise ValueError(
            f"register: kind {kind!r} must be snake_case ([a-z][a-z0-9_]*), e.g. 'my_study'"
        )

    def deco(cls: type[C]) -> type[C]:
        from .config import Config

        if not (isinstance(cls, type) and issubclass(cls, Config)):
            raise TypeError(f"register({kind!r}): {cls!r} is not a Config subclass")
        taken = _REGISTRY.get(kind)
        if taken is not None and _qualified(taken) != _qualified(cls):
            raise ValueError(
                f"register: kind {kind!r} is already the kind of {_qualified(taken)}; "
                f"choose another kind for {_qualified(cls)}"
            )
        own = cls.__dict__.get("kind", "")
        if own and own != kind:
            raise ValueError(
                f"register: {_qualified(cls)} already has kind {own!r}; a class has one kind"
            )
        _REGISTRY[kind] = cls
        cls.kind = kind
        return cls

    if target is not None:
        return deco(target)
    return deco


_KIND_RE = re.compile(r"[a-z][a-z0-9_]*")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def kind_of(cls: type) -> str:
    """The kind a class itself was registered under (``""`` if none; never a parent's)."""
    return str(cls.__dict__.get("kind", "") or "")


def registered() -> dict[str, type[Config]]:
    """Kind -> class of the classes registered so far in this process (a copy)."""
    return dict(_REGISTRY)


def resolve_kind(kind: str) -> type[Config]:
    """Return the config class registered under ``kind``.

    A kind not registered yet makes :func:`discover` import the modules
    that hold neuralset's configs (cheap: heavy libraries are imported inside functions), then
    the ``neuralset.kinds`` entry points of installed packages.

    Raises
    ------
    ConfigError
        ``unknown kind 'x'; known kinds: ...``.
    """
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    discover()
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    from .config import ConfigError

    raise ConfigError(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(_REGISTRY))}")


def polymorphic_kinds(cls: type) -> list[str]:
    """Kinds of the registered classes deriving from ``cls`` (itself included), sorted."""
    discover()
    return sorted(k for k, c in _REGISTRY.items() if issubclass(c, cls))


#: Packages (and modules) of neuralset whose modules define config classes.
CONFIG_PACKAGES: tuple[str, ...] = (
    "neuralset.studies",
    "neuralset.events",
    "neuralset.segments",
    "neuralset.extractors",
    "neuralset.execution",
    "neuralset.synthetic",
    "neuralset.pipeline",
)

#: Entry-point group through which installed packages declare modules registering kinds.
ENTRY_POINT_GROUP = "neuralset.kinds"

_DISCOVERED: dict[str, bool] = {}


def _walk(package: str) -> list[str]:
    """``package`` and, for a package, every module below it (not imported yet)."""
    module = importlib.import_module(package)
    names = [package]
    path = getattr(module, "__path__", None)
    if path is not None:
        names += [info.name for info in pkgutil.walk_packages(path, f"{package}.")]
    return names


def discover(*, entry_points: bool = True) -> None:
    """Import every module of neuralset that holds configs, then the entry points (once).

    Parameters
    ----------
    entry_points
        Also load the modules named by the ``neuralset.kinds`` entry points of installed
        packages (a failing one is reported with a warning, not raised).
    """
    if not _DISCOVERED.get("package"):
        for package in CONFIG_PACKAGES:
            for name in _walk(package):
                importlib.import_module(name)
        _DISCOVERED["package"] = True
    if entry_points and not _DISCOVERED.get("entry_points"):
        _DISCOVERED["entry_points"] = True
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as err:  # a broken plug-in must not break neuralset itself
                warnings.warn(
                    f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} "
                    f"failed to load: {type(err).__name__}: {err}",
                    RuntimeWarning,
                    stacklevel=2,
                )


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """One registered kind: the class, where it lives and the first line of its docstring."""

    kind: str
    cls: type[Config]
    module: str
    summary: str

    @property
    def name(self) -> str:
        return self.cls.__qualname__

    @property
    def family(self) -> str:
        """The config base the kind belongs to (``Extractor``, ``Study``, ``Executor``, ...)."""
        for base in _FAMILIES:
            try:
                target = _resolve(base)
            except (ImportError, AttributeError):  # pragma: no cover - built-in families
                continue
            if issubclass(self.cls, target):
                return target.__name__
        return "Config"


_FAMILIES = (
    "neuralset.studies.base:Study",
    "neuralset.events.transforms:Transform",
    "neuralset.segments:Segmenter",
    "neuralset.extractors.base:Extractor",
    "neuralset.execution.executors:Executor",
    "neuralset.pipeline:Pipeline",
)


def _resolve(target: str) -> type:
    module, _, name = target.partition(":")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


_ROLE = re.compile(r":[a-z]+:`(~?)([^`<]*?)(?:\s*<[^>]*>)?`")


def _role(match: re.Match[str]) -> str:
    target = match.group(2).strip()
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def _summary(cls: type) -> str:
    """First line of the class docstring, with reST roles and double backquotes as `code`."""
    doc = (cls.__doc__ or "").strip()
    line = doc.splitlines()[0].strip() if doc else ""
    return _ROLE.sub(_role, line).replace("``", "`")


def kinds(*, entry_points: bool = True) -> list[KindInfo]:
    """Every kind known after :func:`discover`, sorted by family then kind."""
    discover(entry_points=entry_points)
    out = [
        KindInfo(kind=k, cls=c, module=c.__module__, summary=_summary(c))
        for k, c in registered().items()
    ]
    order = {_resolve(f).__name__: i for i, f in enumerate(_FAMILIES)}
    return sorted(out, key=lambda i: (order.get(i.family, len(order)), i.kind))


def config_classes(package: str = "neuralset") -> list[type[Config]]:
    """Every public config class defined in ``package`` (after :func:`discover`).

    Public: neither the class nor any module of its path starts with ``_``. Sorted by
    ``module.QualName``.
    """
    from .config import Config

    discover(entry_points=False)
    seen: dict[str, type[Config]] = {}
    stack: list[type[Config]] = [Config]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            parts = sub.__module__.split(".")
            if parts[0] != package or any(p.startswith("_") for p in parts):
                continue
            if sub.__name__.startswith("_") or "<locals>" in sub.__qualname__:
                continue
            seen[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return [seen[k] for k in sorted(seen)]


def kinds_table(*, entry_points: bool = True) -> str:
    """A Markdown table of :func:`kinds`: kind, class, module and one-line description."""
    rows = ["| Kind | Class | Family | Module | Description |", "| --- | --- | --- | --- | --- |"]
    for info in kinds(entry_points=entry_points):
        summary = info.summary.replace("|", "\\|")
        rows.append(
            f"| `{info.kind}` | `{info.name}` | {info.family} | `{info.module}` | {summary} |"
        )
    return "\n".join(rows)


def did_you_mean(name: str, options: Collection[str]) -> str:
    """``" (did you mean 'x'?)"`` for an unknown ``name`` close to one of ``options``, else ``""``."""
    import difflib

    lowered = {o.lower(): o for o in options}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close = close or difflib.get_close_matches(name, list(options), n=2, cutoff=0.75)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
