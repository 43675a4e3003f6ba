"""How to run ``prepare``: inline, in local processes or on SLURM (never part of a cache key)."""

from .prepare import InlineExecutor, PrepareError, PrepareReport, run_prepare

__all__ = ["InlineExecutor", "PrepareError", "PrepareReport", "run_prepare"]
