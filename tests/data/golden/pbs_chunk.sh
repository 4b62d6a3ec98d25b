#!/bin/bash
# hsm job script for PBS/Torque: one chunk of a sweep as a job array.
# Rendered by hsm from templates/pbs.sh; a project may keep its own copy in <project>/templates/.
#
# Array index i runs the task on line i+1 of the chunk's task list ("TASK_ID ATTEMPT ARG..."),
# through the same task wrapper as every other source. The array range and no-rerun are
# given on qsub's command line, where every qsub reads them.
#PBS -N hsm-sweep_20260101_000000-cluster-0123456789
#PBS -r n
#PBS -q gpu
#PBS -l walltime=12:00:00
#PBS -l select=1:ncpus=4:mem=64gb
set -euo pipefail

task_list=/scratch/p/sweeps/outputs/sweep_20260101_000000/scripts/job_scripts/chunk_0123456789.tasks
tasks_dir=/scratch/p/sweeps/outputs/sweep_20260101_000000/tasks
wrapper=/scratch/p/sweeps/outputs/sweep_20260101_000000/scripts/task_cluster.sh
walltime_seconds=43200
timeout_warning=60
# Torque names it PBS_ARRAYID, PBS Pro PBS_ARRAY_INDEX.
index=${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:?not started as an array job}}}

line=$(sed -n "$((index + 1))p" "$task_list")
# "TASK_ID ATTEMPT ARG...": each ARG as printf's %b reads it (backslash escapes for blanks,
# control characters and backslashes; '' for an empty one), so no shell interprets a value.
read -r -a words <<<"$line" || true
task=${words[0]:-} attempt=${words[1]:-}
if [[ -z $task || -z $attempt ]]; then
  echo "hsm: no task for array index $index in $task_list" >&2
  exit 2
fi
argv=()
for word in "${words[@]:2}"; do
  if [[ $word == "''" ]]; then argv+=(""); else printf -v word '%b' "$word"; argv+=("$word"); fi
done
task_dir=$tasks_dir/$task
# Which job ran this attempt, for `hsm poll` (qstat lists elements under their own ids):
# the wrapper writes it into status.yaml.
export HSM_JOB_ID="${PBS_JOBID:-}"

# Module and conda set-up often read unset variables or return nonzero harmlessly.
set +eu
module load python/3.9
module load cuda/11.8
set -eu

# PBS sends only SIGTERM at the walltime, which the wrapper would take for a cancel:
# warn it with USR1 first, so it records `timeout`. After the exec below, $$ is the wrapper.
# At most half the walltime before its end, so a short walltime is not over at the start.
if (( walltime_seconds > 0 && timeout_warning > 0 )); then
  (( timeout_warning <= walltime_seconds / 2 )) || timeout_warning=$(( walltime_seconds / 2 ))
  ( sleep $(( walltime_seconds - timeout_warning )); kill -USR1 $$ ) </dev/null >/dev/null 2>&1 &
fi

exec bash "$wrapper" "$task_dir" "$attempt" ${argv[@]+"${argv[@]}"}
