"""Shared pytest configuration: the local SLURM cluster plugin and the synthetic-study fixtures."""

pytest_plugins = ["tests.slurm_cluster", "tests.fixtures_synthetic"]
