"""Griffe extension: config classes show every field, with its type and default, inherited ones too.

neuralset's configs are dataclasses made by ``@config`` (which calls ``dataclasses.dataclass``),
so griffe's static analysis sees no ``__init__``: the API pages showed an empty signature, no
types, and every documented parameter as "required". For each class of the package that is a
:class:`neuralset.config.Config` dataclass, this extension imports the class and

* gives it an ``__init__`` whose keyword-only parameters are the dataclass fields, inherited ones
  included, in dataclass order, with their annotation and default (``field(default_factory=f)``
  shows ``f()``'s value);
* completes the docstring's "Parameters" section with the fields it does not document, taking
  each description from the nearest base class that documents it (marked "inherited from
  ``Base``"), so e.g. ``MegExtractor`` lists ``frequency`` and ``HuggingFaceText`` lists
  ``model``, ``layers`` and ``device``.

It runs after :mod:`rst_markdown` (``on_package``: the whole package is loaded), so the base
classes' descriptions are already Markdown.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Any

import griffe

_HEADER = re.compile(r"^(\w[\w ]*)\n-{3,}\n", re.M)


def _live_class(path: str) -> Any:
    """The imported class at griffe path ``package.module.Class``, or None."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception:  # a module that cannot be imported here is documented as griffe sees it
        return None


def _is_config(live: Any) -> bool:
    try:
        from neuralset.config import Config
    except ImportError:
        return False
    return isinstance(live, type) and issubclass(live, Config) and dataclasses.is_dataclass(live)


def _default(field: dataclasses.Field[Any]) -> str | None:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return None


def _sections(text: str) -> list[tuple[str, int, int]]:
    """``(title, start, end)`` of each numpydoc section of a docstring (end: next section)."""
    heads = list(_HEADER.finditer(text))
    return [
        (m.group(1), m.start(), heads[i + 1].start() if i + 1 < len(heads) else len(text))
        for i, m in enumerate(heads)
    ]


def parameter_entries(text: str) -> dict[str, str]:
    """Name -> full entry text (name line + indented description) of a "Parameters" section.

    A grouped entry (``start, duration``) is returned under each of its names.
    """
    out: dict[str, str] = {}
    for title, start, end in _sections(text):
        if title != "Parameters":
            continue
        body = text[start:end].split("\n", 2)[2] if text[start:end].count("\n") >= 2 else ""
        entry: list[str] = []
        for line in [*body.split("\n"), "<end>"]:
            if line and not line[0].isspace() and entry:
                names = entry[0].split(":")[0]
                for name in (n.strip() for n in names.split(",")):
                    out[name] = "\n".join(entry).rstrip()
                entry = []
            if line == "<end>":
                break
            if line and not line[0].isspace():
                entry = [line]
            elif entry:
                entry.append(line)
    return out


def _own_entry(name: str, entry: str, base: str) -> str:
    """``entry`` documenting only ``name``, marked as inherited from ``base``."""
    lines = entry.split("\n")
    body = list(lines[1:])
    while body and not body[-1].strip():
        body.pop()
    indent = re.match(r"\s*", body[0]).group(0) if body else "    "  # type: ignore[union-attr]
    body.append(f"{indent}(Inherited from `{base}`.)")
    return "\n".join([name, *body])


def _with_parameters(text: str, entries: list[str]) -> str:
    """``text`` with its "Parameters" section replaced by ``entries`` (created if absent)."""
    if not entries:
        return text
    new = "Parameters\n----------\n" + "\n".join(entries) + "\n"
    sections = _sections(text)
    for title, start, end in sections:
        if title == "Parameters":
            tail = text[end:]
            return text[:start] + new + (f"\n{tail}" if tail else "")
    at = sections[0][1] if sections else len(text)
    head, tail = text[:at].rstrip("\n"), text[at:]
    return f"{head}\n\n{new}" + (f"\n{tail}" if tail else "")


def document_config(cls: griffe.Class, live: Any, originals: dict[str, str]) -> None:
    """Give ``cls`` its dataclass ``__init__`` and complete its Parameters section.

    ``originals`` holds the docstrings as written (before this extension completed any), by
    class path: descriptions are taken from those only.
    """
    fields = [f for f in dataclasses.fields(live) if f.init]
    parameters = [
        griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
        *(
            griffe.Parameter(
                f.name,
                annotation=f.type
                if isinstance(f.type, str)
                else getattr(f.type, "__name__", str(f.type)),
                kind=griffe.ParameterKind.keyword_only,
                default=_default(f),
            )
            for f in fields
        ),
    ]
    init = griffe.Function(
        "__init__", parameters=griffe.Parameters(*parameters), returns="None", parent=cls
    )
    init.labels.add("dataclass-init")
    cls.set_member("__init__", init)
    if cls.docstring is None:
        return
    own = parameter_entries(cls.docstring.value)
    entries: list[str] = []
    for f in fields:  # in the order of the signature
        if f.name in own:
            if own[f.name] not in entries:  # a grouped entry ("duration, stride") once
                entries.append(own[f.name])
            continue
        for base in live.__mro__[1:]:
            written = originals.get(f"{base.__module__}.{base.__qualname__}", "")
            entry = parameter_entries(written).get(f.name)
            if entry:
                entries.append(_own_entry(f.name, entry, base.__name__))
                break
        else:
            entries.append(f"{f.name}\n    (No description: see its type and default.)")
    entries += [e for name, e in own.items() if e not in entries]  # names that are not fields
    cls.docstring.value = _with_parameters(cls.docstring.value, entries)


def _classes(obj: griffe.Object) -> list[griffe.Class]:
    out = []
    for member in obj.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Class):
            out.append(member)
            out += _classes(member)
        elif isinstance(member, griffe.Module):
            out += _classes(member)
    return out


class ConfigFields(griffe.Extension):
    """Dataclass ``__init__`` and inherited parameters for the config classes (see the module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "neuralset":
            return
        configs = [(c, live) for c in _classes(pkg) if _is_config(live := _live_class(c.path))]
        originals = {c.path: c.docstring.value for c, _ in configs if c.docstring is not None}
        for cls, live in configs:
            document_config(cls, live, originals)
