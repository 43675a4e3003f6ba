"""How to run ``prepare``: inline, in local processes or on SLURM (never part of a cache key)."""

from .claims import Claims
from .executors import Executor, ExecutorError, InlineExecutor, LocalExecutor
from .prepare import PrepareError, PrepareReport, prepare_options, run_prepare
from .protocols import Preparable
from .records import ComputeSetupError, ItemError, read_errors
from .slurm import AutoExecutor, SlurmExecutor, slurm_available

__all__ = [
    "AutoExecutor",
    "Claims",
    "ComputeSetupError",
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "ItemError",
    "LocalExecutor",
    "PrepareError",
    "PrepareReport",
    "Preparable",
    "SlurmExecutor",
    "prepare_options",
    "read_errors",
    "run_prepare",
    "slurm_available",
]
