"""Plain YAML data: read a file, write data or a config, apply dotted command-line overrides.

These work on plain data (dicts, lists, scalars), before :func:`neuralset.config.from_dict`
validates it into configs; :mod:`neuralset.config` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config

__all__ = ["load_yaml", "dump_yaml", "apply_overrides", "yaml_error_message"]


def _error(message: str) -> Exception:
    """A :class:`~neuralset.config.ConfigError` (imported here: config imports this module)."""
    from .config import ConfigError

    return ConfigError(message)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file into plain data.

    Parameters
    ----------
    path
        The YAML file.
    """
    import yaml

    with open(path) as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise _error(yaml_error_message(err, str(path))) from None
    if not isinstance(data, dict):
        raise _error(f"{path}: expected a mapping at the top level")
    return data


def yaml_error_message(err: Exception, where: str) -> str:
    """One line, ``FILE:LINE:COLUMN: YAML syntax error: what (context)``, for a PyYAML error."""
    mark = getattr(err, "problem_mark", None)
    position = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    return f"{where}{position}: YAML syntax error: {problem}" + (f" ({context})" if context else "")


def dump_yaml(data: Mapping[str, Any] | Config) -> str:
    """Write plain data or a config as YAML text.

    Parameters
    ----------
    data
        Plain data, or a config (written as :meth:`Config.to_dict` gives it).
    """
    import yaml

    if hasattr(data, "to_dict"):  # a Config
        data = data.to_dict()
    return yaml.safe_dump(dict(data), sort_keys=False)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted ``--a.b.c=value`` overrides (values parsed as YAML scalars) to plain data.

    Parameters
    ----------
    data
        Plain data (as read by :func:`load_yaml`); not modified, a changed copy is returned.
    overrides
        ``"--a.b.c=value"`` items (the leading ``--`` is optional); an integer part indexes
        a list.
    """
    import copy

    import yaml

    out = copy.deepcopy(data)
    for item in overrides:
        text = item[2:] if item.startswith("--") else item
        if "=" not in text:
            raise _error(f"override {item!r}: expected --dotted.path=value")
        dotted, _, raw = text.partition("=")
        node: Any = out
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            where = ".".join(parts[:i])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    fix = f"index it with 0 to {len(node) - 1}" if node else "set it whole"
                    raise _error(
                        f"override {item!r}: {where} is a list of {len(node)}; {fix}, got {part!r}"
                    )
                part = int(part)  # type: ignore[assignment]
            elif not isinstance(node, dict):
                raise _error(f"override {item!r}: {where} is {node!r}, not a mapping or list")
            if i == len(parts) - 1:
                node[part] = yaml.safe_load(raw)
            elif isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]
    return out
