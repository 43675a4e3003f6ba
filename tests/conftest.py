"""Shared pytest configuration: the local SLURM cluster and git-annex plugins, synthetic fixtures."""

pytest_plugins = ["tests.slurm_cluster", "tests.annex_tools", "tests.fixtures_synthetic"]
