"""The Slurm and PBS parsers, fed with real output captured from the test bed (tests/data/hpc/capture.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.proc import Result
from hsm.sources.hpc import pbs, slurm

DATA = Path(__file__).resolve().parents[1] / "data" / "hpc"


def data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def result(rc: int, stdout: str = "", stderr: str = "") -> Result:
    return Result(("x",), rc, stdout, stderr)


# --- Slurm -----------------------------------------------------------------------------------------


def test_sbatch_job_id() -> None:
    assert slurm.parse_job_id(data("sbatch_parsable.txt")) == "109"
    assert slurm.parse_job_id("4242;cluster\n") == "4242"
    with pytest.raises(ValueError):
        slurm.parse_job_id("sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    with pytest.raises(ValueError):
        slurm.parse_job_id("")


def test_squeue_while_an_array_runs_throttled() -> None:
    table = slurm.parse_squeue(data("squeue_running.txt"))
    assert table["109_0"] == table["109_1"] == "RUNNING"
    assert [table[f"109_{i}"] for i in range(2, 6)] == ["PENDING"] * 4
    assert (table["106"], table["107"], table["105"]) == ("FAILED", "COMPLETED", "RUNNING")


def test_squeue_pending_remainder_printed_as_a_range() -> None:
    table = slurm.parse_squeue(data("squeue_collapsed.txt"))
    assert [table[f"109_{i}"] for i in range(2, 6)] == ["PENDING"] * 4
    assert table == slurm.parse_squeue(data("squeue_running.txt"))


def test_squeue_keeps_final_states_for_a_while() -> None:
    table = slurm.parse_squeue(data("squeue_final.txt"))
    assert (table["105"], table["106"], table["108"]) == ("TIMEOUT", "FAILED", "CANCELLED")
    assert all(table[f"109_{i}"] == "COMPLETED" for i in range(6))
    assert slurm.parse_squeue(data("squeue_node_fail.txt")) == {"115": "NODE_FAIL"}
    for state in table.values():
        assert state in slurm.FINAL


def test_squeue_of_a_forgotten_job_is_an_answer_not_a_failure() -> None:
    stderr = data("squeue_unknown_id.stderr")
    assert slurm.status_error(result(1, "", stderr)) is None
    assert slurm.status_error(result(1, "", "squeue: error: Unable to contact slurm controller (connect failure)")) \
        is not None
    assert slurm.status_error(result(0)) is None


def test_sacct_states_and_exit_codes() -> None:
    table = slurm.parse_sacct(data("sacct_final.txt"))
    assert table["105"] == ("TIMEOUT", 0)
    assert table["106"] == ("FAILED", 3)
    assert table["108"] == ("CANCELLED", 0)  # "CANCELLED by 0"
    assert table["109_5"] == ("COMPLETED", 0)
    assert slurm.parse_sacct(data("sacct_node_fail.txt")) == {"115": ("NODE_FAIL", 0)}
    # Not producible on the test bed (no memory enforcement): the line sacct prints for an OOM kill.
    assert slurm.parse_sacct("77_2|OUT_OF_MEMORY|0:125\n") == {"77_2": ("OUT_OF_MEMORY", 253)}
    assert slurm.FINAL["OUT_OF_MEMORY"] == ("failed", "oom")


def test_sacct_disabled_gives_nothing() -> None:
    assert "accounting storage is disabled" in data("sacct_disabled.stderr")
    assert slurm.parse_sacct("") == {}


def test_exit_codes() -> None:
    assert slurm.parse_exit_code("3:0") == 3
    assert slurm.parse_exit_code("0:15") == 143
    assert slurm.parse_exit_code("0:0") == 0
    assert slurm.parse_exit_code("") is None


def test_slurm_state_of_a_task() -> None:
    table = slurm.parse_squeue(data("squeue_running.txt"))
    assert slurm.Slurm().task_state("109_3", None, table) == "PENDING"
    assert slurm.Slurm().task_state("109_9", None, table) is None
    assert slurm.element("109", 3) == "109_3" and slurm.array_of("109_3") == "109"


def test_lookup_by_job_name() -> None:
    rows = slurm.parse_lookup(data("squeue_lookup.txt"))
    assert ("93", "hsm-sweep_20261122_071529-slurm-39f48b22fb", "FAILED") in rows
    assert ("109", "cap-array", "PENDING") in rows and ("109", "cap-array", "RUNNING") in rows


def test_sinfo_health() -> None:
    assert slurm.parse_sinfo(data("sinfo_idle.txt")) == [("debug", "up", 1, "idle")]
    assert slurm.health_of(result(0, data("sinfo_idle.txt")), None)["status"] == "healthy"
    assert slurm.health_of(result(0, data("sinfo_idle.txt")), "debug")["ok"]
    assert slurm.health_of(result(0, data("sinfo_idle.txt")), "gpu")["status"] == "unhealthy"
    assert slurm.health_of(result(0, data("sinfo_down.txt")), None)["status"] == "degraded"
    down = slurm.health_of(result(1, "", "sinfo: error: Unable to contact slurm controller"), None)
    assert (down["status"], down["ok"]) == ("unhealthy", False)


def test_slurm_argv() -> None:
    assert slurm.status_argv(["71", "72"]) == ["squeue", "-h", "-r", "-t", "all", "-j", "71,72", "-o", "%i|%T|%r"]
    assert slurm.accounting_argv(["71"]) == ["sacct", "-n", "-X", "-P", "-j", "71", "-o", "JobID,State,ExitCode"]
    assert slurm.cancel_argv(["71", "72"]) == ["scancel", "71", "72"]


# --- PBS -------------------------------------------------------------------------------------------


def test_qsub_job_id() -> None:
    assert pbs.parse_job_id(data("qsub.txt")) == "116"
    assert pbs.parse_job_id("7.server\n") == "7.server"
    assert pbs.parse_job_id("7[].pbs01.cluster\n") == "7[].pbs01.cluster"
    with pytest.raises(ValueError):
        pbs.parse_job_id("There was an error running the Slurm sbatch command.\n")


def test_pbs_job_ids() -> None:
    assert pbs.element("116", 3) == "116[3]" and pbs.array_of("116[3]") == "116"
    assert pbs.element("7[].server", 2) == "7[2].server" and pbs.array_of("7[2].server") == "7[].server"
    assert pbs.normalize("7[2].server") == "7[2]" and pbs.normalize("7.server") == "7"


def test_qstat_lists_elements_under_their_own_ids() -> None:
    table = pbs.parse_qstat(data("qstat_running.txt"))
    assert (table["116"], table["117"], table["118"]) == ("Q", "R", "R")
    assert table["105"] == "C"


def test_pbs_state_of_a_task() -> None:
    table = pbs.parse_qstat(data("qstat_running.txt"))
    # Started elements wrote their own ids; the rest wait in the array's pending remainder.
    assert pbs.task_state("116[0]", "117", table) == "RUNNING"
    assert pbs.task_state("116[3]", None, table) == "PENDING"
    assert pbs.task_state("105[0]", "105", table) is None  # C: finished, outcome unknown
    assert pbs.task_state("999[0]", None, table) is None
    # Torque without -t lists only the array.
    torque = pbs.parse_qstat("123[].server   hsm-x   alice   0 R batch\n")
    assert pbs.task_state("123[4].server", "123[4].server", torque) == "RUNNING"


def test_qstat_unknown_id_is_an_answer() -> None:
    assert pbs.status_error(result(153)) is None
    assert pbs.status_error(result(1, "", "Cannot connect to server")) is not None


def test_qstat_full_names() -> None:
    rows = pbs.parse_qstat_full(data("qstat_full.txt"))
    assert ("117", "cap-pbs-array", "R") in rows and ("116", "cap-pbs-array", "Q") in rows
    lookup = pbs.parse_lookup(data("qstat_full.txt"))
    assert ("116", "cap-pbs-array", "PENDING") in lookup and ("105", "cap-timeout", "COMPLETED") in lookup


def test_qstat_q_health() -> None:
    text = data("qstat_q.txt")
    assert pbs.health_of(result(153, text), None)["status"] == "healthy"
    assert pbs.health_of(result(0, text), "debug")["ok"]
    assert pbs.health_of(result(0, text), "gpu")["status"] == "unhealthy"
    assert pbs.health_of(result(1, "", "Connection refused"), None)["status"] == "unhealthy"


def test_qdel_of_finished_jobs_is_not_an_error() -> None:
    assert pbs.cancel_error(result(1)) is None
    assert pbs.cancel_error(result(1, "", "qdel: Server could not connect")) is not None


def test_pbs_walltime() -> None:
    assert pbs.walltime_seconds("12:00:00") == 43200
    assert pbs.walltime_seconds("01:30") == 90
    assert pbs.walltime_seconds(None) == 0
    with pytest.raises(ValueError):
        pbs.walltime_seconds("1-00:00:00")
