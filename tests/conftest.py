"""Shared pytest configuration: the local SLURM cluster plugin."""

pytest_plugins = ["tests.slurm_cluster"]
