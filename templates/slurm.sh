#!/bin/bash
# hsm job script for Slurm: one chunk of a sweep as a job array.
# Rendered by hsm from templates/slurm.sh; a project may keep its own copy in <project>/templates/.
#
# Array index i runs the task on line i+1 of the chunk's task list ("TASK_ID ATTEMPT ARG..."),
# through the same task wrapper as every other source: it writes the task's status.yaml,
# its logs, its TMPDIR, and records `timeout` when Slurm sends USR1 before the time limit.
{{directives}}
set -euo pipefail

task_list={{task_list}}
tasks_dir={{tasks_dir}}
wrapper={{wrapper}}
index=${SLURM_ARRAY_TASK_ID:?not started as an array job}

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
# Which job ran this attempt, for `hsm poll`: the wrapper writes it into status.yaml.
export HSM_JOB_ID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"

# Module and conda set-up often read unset variables or return nonzero harmlessly.
set +eu
{{setup}}
set -eu

# The wrapper takes over this process, so Slurm's signals (USR1 before the limit) reach it.
exec bash "$wrapper" "$task_dir" "$attempt" ${argv[@]+"${argv[@]}"}
