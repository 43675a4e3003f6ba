"""Docstrings describe the parameters that exist.

numpydoc ``Parameters`` sections are compared with the real signatures: a section names every
parameter and nothing else (prose left under the section renders as bogus parameters on the
API pages), each public name of ``neuralset`` documents its parameters, and every field of a
config class is described in its docstring or in a base class's.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from typing import Any

import pytest

import neuralset
from neuralset.config import Config
from tests.api_pages import PARSER_OPTIONS, ROOT, load_api


def _names(sections: list[Any], kinds: tuple[str, ...] = ("parameters",)) -> list[str]:
    """Names listed in the sections of those kinds (``a, b`` and ``*args`` split and bare)."""
    return [
        name.strip().lstrip("*")
        for section in sections
        if section.kind.value in kinds
        for item in section.value
        for name in item.name.split(",")
    ]


def _parse(doc: str | None) -> list[Any]:
    import griffe

    if not doc:
        return []
    return griffe.Docstring(inspect.cleandoc(doc), parser="numpy").parse(**PARSER_OPTIONS)


def _has_section(doc: str | None, kind: str = "parameters") -> bool:
    return any(s.kind.value == kind for s in _parse(doc))


def test_names_splits_grouped_and_starred_parameters() -> None:
    doc = "Sum.\n\nParameters\n----------\na, b\n    Terms.\n*rest\n    More.\n"
    assert _names(_parse(doc)) == ["a", "b", "rest"]
    prose = "Sum.\n\nParameters\n----------\na\n    Term.\n\nThe sum is exact.\n"
    assert _names(_parse(prose)) == ["a", "The"]  # what the check below catches


@pytest.fixture(scope="module")
def package() -> Any:
    """The package as the API pages see it (griffe with the docs' extensions)."""
    return load_api()


def _documented_callables(obj: Any) -> Any:
    """Functions, methods and classes (not aliases, not private) with a docstring."""
    for name, member in obj.members.items():
        if member.is_alias or (name.startswith("_") and name != "__init__"):
            continue
        if member.is_module:
            yield from _documented_callables(member)
        elif member.is_function or member.is_class:
            if member.docstring is not None:
                yield member
            if member.is_class:
                yield from _documented_callables(member)


def test_parameters_sections_match_the_signatures(package: Any) -> None:
    """Every ``Parameters`` section lists exactly the parameters of its function or class."""
    wrong = []
    checked = 0
    for obj in _documented_callables(package):
        documented = _names(obj.docstring.parsed)
        if not documented:
            continue
        real = [p.name for p in obj.parameters]
        bound = obj.is_class or (obj.parent.is_class and "staticmethod" not in obj.labels)
        if bound and real and real[0] in ("self", "cls"):
            real = real[1:]
        extra = [n for n in documented if n not in real]
        missing = [n for n in real if n not in documented]
        if extra or missing:
            wrong.append(f"{obj.path}: documents {extra} that it lacks, lacks {missing}")
        checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked > 150


def _public() -> list[tuple[str, Any]]:
    out = []
    for name in neuralset.__all__:
        obj = getattr(neuralset, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue
        out.append((name, obj))
    return out


def _documented_fields(cls: type, kinds: tuple[str, ...]) -> set[str]:
    return {
        n for klass in cls.__mro__ for n in _names(_parse(klass.__dict__.get("__doc__")), kinds)
    }


def test_public_names_document_their_parameters() -> None:
    """Each public function and class of ``neuralset`` has a numpydoc section for its inputs."""
    wrong = []
    for name, obj in _public():
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            kinds = ("parameters",) if issubclass(obj, Config) else ("parameters", "attributes")
            fields = [f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
            missing = [f for f in fields if f not in _documented_fields(obj, kinds)]
        else:
            func = obj.__init__ if isinstance(obj, type) else obj
            params = [p for p in inspect.signature(func).parameters if p not in ("self",)]
            docs = [obj.__doc__] + ([func.__doc__] if isinstance(obj, type) else [])
            names = {n for doc in docs for n in _names(_parse(doc))}
            missing = [p for p in params if p not in names]
        if missing:
            wrong.append(f"neuralset.{name}: {missing} not documented")
    assert not wrong, "\n".join(wrong)


def test_every_config_field_is_described() -> None:
    """Every field of a config class on an API page is in a ``Parameters`` section."""
    api = "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "api").glob("*.md")))
    wrong = []
    checked = 0
    for module in sorted(set(re.findall(r"^::: ([\w.]+)$", api, re.M))):
        for name, obj in vars(importlib.import_module(module)).items():
            if not (isinstance(obj, type) and issubclass(obj, Config) and obj.__module__ == module):
                continue
            if name.startswith("_") or obj.__doc__ is None:
                continue
            documented = _documented_fields(obj, ("parameters",))
            missing = [f.name for f in dataclasses.fields(obj) if f.name not in documented]
            if missing:
                wrong.append(f"{module}.{name}: {missing}")
            checked += 1
    assert not wrong, "fields without a description:\n" + "\n".join(wrong)
    assert checked > 75
