"""Shared test wiring: the test bed plugin (markers ssh, slurm, pbs and their fixtures) and the
file system with one-second timestamps (`coarse_dir`)."""

pytest_plugins = ["tests.testbed.plugin", "tests.coarse_fs"]
