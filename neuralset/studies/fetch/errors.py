"""Errors of :mod:`neuralset.studies.fetch`."""

from __future__ import annotations

__all__ = ["FetchError"]


class FetchError(RuntimeError):
    """Fetching failed: a tool is missing, a server is unreachable, or content is corrupt.

    The message names the files and what to do.
    """
