"""MkDocs hook: render the pictures of the docs with the demo, at build time.

The pages show ``figures/demo*.png`` (one per :mod:`neuralset.plotting` function, and the demo
figure). They are not committed: :func:`on_files` runs the demo's figure code
(:func:`neuralset.demo.write_figures`) on a small synthetic study, once per build, and adds
the PNGs to the site as generated files. The study, its store and the PNGs are cached under
``.neuralset-cache/docs-figures`` (git-ignored), so a second build reuses the preprocessed MEG
and only draws (a cache left by an older store format is deleted and drawn again). Set
``NEURALSET_DOCS_FIGURES`` to another folder to move that cache.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def figures_folder() -> Path:
    """Where the docs' demo study and pictures are cached."""
    env = os.environ.get("NEURALSET_DOCS_FIGURES")
    return Path(env) if env else ROOT / ".neuralset-cache" / "docs-figures"


def render(folder: Path) -> dict[str, Path]:
    """Run the demo without training epochs; return the PNG paths by figure name."""
    from neuralset import demo

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        code = demo.main(
            [
                "--cache",
                str(folder),
                "--subjects",
                "2",
                "--duration",
                "30",
                "--quiet",
                "--no-torch",
                "--no-jax",
            ]
        )
    if code != 0:
        raise RuntimeError(f"the demo failed while drawing the docs' figures:\n{quiet.getvalue()}")
    return {
        name: folder / ("demo.png" if name == "demo" else f"demo-{name}.png")
        for name in demo.FIGURES
    }


def on_files(files: Any, config: Any) -> Any:
    """Add ``figures/*.png`` to the site, drawn by the demo."""
    import shutil

    from mkdocs.structure.files import File

    from neuralset.store.format import StoreFormatError

    folder = figures_folder()
    try:
        paths = render(folder)
    except StoreFormatError:  # a cache written by another store format: it is disposable
        shutil.rmtree(folder)
        paths = render(folder)
    for path in paths.values():
        uri = f"figures/{path.name}"
        files.append(File.generated(config, uri, content=path.read_bytes()))
    return files
