"""Shared test wiring: the test bed plugin (markers ssh, slurm, pbs and their fixtures)."""

pytest_plugins = ["tests.testbed.plugin"]
