"""The package as the API pages see it, for the tests that check those pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: griffe's numpydoc options of the docs build (``mkdocs.yml``).
PARSER_OPTIONS = {"warn_unknown_params": False, "warn_missing_types": False}


def load_api() -> Any:
    """``neuralset`` loaded by griffe with the docs' two extensions and parser options."""
    import griffe

    extensions = griffe.load_extensions(
        str(ROOT / "docs/_ext/rst_markdown.py") + ":RstToMarkdown",
        str(ROOT / "docs/_ext/config_fields.py") + ":ConfigFields",
    )
    return griffe.load(
        "neuralset",
        extensions=extensions,
        search_paths=[str(ROOT)],
        docstring_parser="numpy",
        docstring_options=PARSER_OPTIONS,
        resolve_aliases=False,
    )
