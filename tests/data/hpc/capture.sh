#!/usr/bin/env bash
# Captures the scheduler output that tests/unit/test_hpc_parsers.py parses, from the test bed's
# real Slurm and PBS commands. Run with the test bed up:
#
#   eval "$(tests/testbed/testbed env)" && tests/data/hpc/capture.sh
#
# It takes about two minutes (one job has to reach its time limit) and sets node1 down and up
# again at the end. Job ids differ from run to run; the tests read them from the files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
testbed=$here/../../testbed/testbed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

job() {  # job SECONDS EXIT_CODE
  printf '#!/bin/bash\nsleep %s\nexit %s\n' "$1" "$2" > "job_$1_$2.sh"
  echo "job_$1_$2.sh"
}

# Phase 1: a throttled array, a failure, a cancel, a success and a walltime kill.
timeout=$(sbatch --parsable --no-requeue --time=1 -J cap-timeout -o /dev/null "$(job 300 0)")
failed=$(sbatch --parsable --no-requeue -J cap-failed -o /dev/null "$(job 0 3)")
ok=$(sbatch --parsable --no-requeue -J cap-ok -o /dev/null "$(job 0 0)")
cancel=$(sbatch --parsable --no-requeue -J cap-cancel -o /dev/null "$(job 300 0)")
sbatch --parsable --no-requeue --array=0-5%2 -J cap-array -o /dev/null "$(job 20 0)" > "$here/sbatch_parsable.txt"
array=$(cat "$here/sbatch_parsable.txt")
ids=$timeout,$failed,$ok,$cancel,$array
sleep 2
squeue -h -r -t all -j "$ids" -o '%i|%T|%r' > "$here/squeue_running.txt"
squeue -h -t all -j "$ids" -o '%i|%T|%r' > "$here/squeue_collapsed.txt"
squeue -h -t all --me -o '%F|%j|%T' > "$here/squeue_lookup.txt"
scancel "$cancel"
until [[ $(squeue -h -t all -j "$timeout" -o %T) == TIMEOUT ]]; do sleep 5; done
sleep 6  # sacct lags squeue by a few seconds
squeue -h -r -t all -j "$ids" -o '%i|%T|%r' > "$here/squeue_final.txt"
sacct -n -X -P -j "$ids" -o JobID,State,ExitCode > "$here/sacct_final.txt"
squeue -h -j 999999 -o '%i|%T|%r' > /dev/null 2> "$here/squeue_unknown_id.stderr" || echo "exit $?" >> "$here/squeue_unknown_id.stderr"

# Accounting switched off: the same sacct against a slurm.conf without slurmdbd.
grep -v '^AccountingStorage' "$SLURM_CONF" > "$work/slurm.conf"
SLURM_CONF=$work/slurm.conf sacct -n -X -P -j "$failed" -o JobID,State,ExitCode > /dev/null \
  2> "$here/sacct_disabled.stderr" || echo "exit $?" >> "$here/sacct_disabled.stderr"

# Phase 2: a node failure under a running job, then the node back.
sinfo -h -o '%P|%a|%D|%t' > "$here/sinfo_idle.txt"
nodefail=$(sbatch --parsable --no-requeue -J cap-nodefail -o /dev/null "$(job 300 0)")
until [[ $(squeue -h -j "$nodefail" -o %T) == RUNNING ]]; do sleep 0.2; done
"$testbed" node-down
sinfo -h -o '%P|%a|%D|%t' > "$here/sinfo_down.txt"
sleep 6
squeue -h -r -t all -j "$nodefail" -o '%i|%T|%r' > "$here/squeue_node_fail.txt"
sacct -n -X -P -j "$nodefail" -o JobID,State,ExitCode > "$here/sacct_node_fail.txt"
"$testbed" node-up

# The PBS commands: qsub's answer, qstat while an array runs, in full, and the queues.
printf '#!/bin/bash\n#PBS -N cap-pbs-array\nsleep 15\n' > pbs.sh
qsub -t 0-3%2 -r n pbs.sh > "$here/qsub.txt"
sleep 2
qstat > "$here/qstat_running.txt" || true
qstat -f > "$here/qstat_full.txt" || true
qstat -q > "$here/qstat_q.txt" || true
qdel "$(cat "$here/qsub.txt")" || true
echo "captured into $here" >&2
