#!/usr/bin/env bash
# hsm task wrapper: runs one attempt of one sweep task and records its fate.
#
# Usage: task.sh TASK_DIR ATTEMPT ARG...
#
# The command is ARG... (hsm's runner passes it as its own argv, a job script decodes it
# from its chunk's task list), so no shell ever interprets a parameter value. With no ARG,
# it is read from TASK_DIR/argv (NUL-separated: a sweep submitted by an earlier hsm). This script is
# the only writer of TASK_DIR/status.yaml, which it replaces atomically (temp file, then
# rename); it writes no other file of its own into TASK_DIR but stdout.log and stderr.log.
# Rendered by hsm from templates/task.sh: the double-brace placeholders are filled in, quoted.
set -uo pipefail

task_dir=$1
attempt=$2
sweep_id={{sweep_id}}
project_dir={{project_dir}}
source_name={{source}}
min_free_kb={{min_free_kb}}
floor_kb={{floor_kb}}
check_interval={{check_interval}}

task_id=${task_dir##*/}
status_file=$task_dir/status.yaml

[[ -d $task_dir/results && -d $task_dir/tmp ]] || mkdir -p "$task_dir/results" "$task_dir/tmp"
export HSM_TASK_ID=$task_id HSM_TASK_DIR=$task_dir HSM_SWEEP_ID=$sweep_id
export HSM_OUTPUT_DIR=$task_dir/results HSM_ATTEMPT=$attempt HSM_SOURCE=$source_name
# Every temporary file of the task stays in its own directory.
export TMPDIR=$task_dir/tmp TMP=$task_dir/tmp TEMP=$task_dir/tmp

# Helpers set variables (printf -v) rather than print: a command substitution forks, and
# these run a dozen times per task.
now() { TZ=UTC printf -v "$1" '%(%Y-%m-%dT%H:%M:%SZ)T' -1; }
micros() {
  local t=${EPOCHREALTIME:-}
  if [[ -n $t ]]; then t=${t/[.,]/}; printf -v "$1" '%d' "$((10#$t))"; else printf -v "$1" '%d' "$(( $(date +%s) * 1000000 ))"; fi
}
yq() { local s=${2//\'/\'\'}; printf -v "$1" "'%s'" "$s"; }

yq q_task "$task_id"; yq q_source "$source_name"; yq q_host "$HOSTNAME"
q_job=""; [[ -n ${HSM_JOB_ID:-} ]] && yq q_job "$HSM_JOB_ID"
# A runner (local, SSH) created TMPDIR and removes it when the task has ended; a job script's
# wrapper removes it itself (when the task left nothing there).
under_runner=${HSM_RUNNER:-0}
unset HSM_JOB_ID HSM_RUNNER

# A retry on a host that still holds an earlier attempt's files keeps them in attempts/N/
# (where hsm has not moved them already), so the evidence of why it failed stays.
if [[ -e $status_file ]]; then
  prev=""
  while IFS= read -r line; do
    if [[ $line == attempt:* ]]; then prev=${line#attempt: }; break; fi
  done < "$status_file"
  if [[ -n $prev && $prev != "$attempt" ]]; then
    mkdir -p "$task_dir/attempts/$prev"
    for name in status.yaml stdout.log stderr.log; do
      [[ -e $task_dir/$name ]] && mv -f "$task_dir/$name" "$task_dir/attempts/$prev/$name"
    done
  fi
fi

# status.yaml: flat `key: value` lines, strings single-quoted; the first line is the schema.
# The running status ends with a comment line of padding: on a disk too full for a new file,
# the final status is written over it in place and cut to its length (the file then still
# changes size, which is what tells a poll it changed when the clock has not moved).
write_status() {
  local text line pad tmp=$status_file.tmp.$$
  printf -v text 'schema: 1\ntask_id: %s\nattempt: %s\nsource: %s\nhost: %s\npid: %s\npid_start: %s\nstart: %s\n' \
    "$q_task" "$attempt" "$q_source" "$q_host" "$$" "$pid_start" "$start"
  # What a task dir would otherwise need files of its own for: which scheduler job ran this
  # attempt (the job script exports it), and the free disk it started with.
  [[ -n $q_job ]] && text+="job_id: $q_job"$'\n'
  [[ -n ${avail:-} ]] && text+="disk_free_kb: $avail"$'\n'
  for line in "$@"; do text+=$line$'\n'; done
  # GPU ids the runner gave this attempt (set with CUDA_VISIBLE_DEVICES, as a YAML list)
  if [[ -n ${HSM_GPUS:-} ]]; then text+="gpus: $HSM_GPUS"$'\n'; fi
  if [[ $1 == "state: running" ]]; then printf -v pad '#%320s' ''; text+=$pad$'\n'; fi
  if { printf '%s' "$text" > "$tmp"; } 2>/dev/null && mv -f "$tmp" "$status_file"; then
    return 0
  fi
  rm -f "$tmp"
  local LC_ALL=C  # the length in bytes
  { printf '%s' "$text" 1<> "$status_file" && truncate -s "${#text}" "$status_file"; } 2>/dev/null
}

read -r -a proc_stat < /proc/$$/stat 2>/dev/null || proc_stat=()
pid_start=${proc_stat[21]:-0}
now start
micros start_us

free_kb() { df -Pk "$task_dir" 2>/dev/null | { read -r _; read -r _ _ _ avail _; echo "${avail:-0}"; }; }

finish() {  # finish STATE EXIT_CODE REASON
  local end_us end duration ms q_reason
  [[ $under_runner == 1 ]] || rmdir "$task_dir/tmp" 2>/dev/null
  micros end_us
  now end
  duration=$(( (end_us - start_us) / 1000 ))
  printf -v ms '%03d' $((duration % 1000))
  local lines=("state: $1" "exit_code: $2")
  if [[ -n $3 ]]; then yq q_reason "$3"; lines+=("reason: $q_reason"); fi
  write_status "${lines[@]}" "end: $end" "duration: $((duration / 1000)).$ms"
}

# A runner that starts this task has just measured the free disk (and watches the floor
# while the task runs); run on its own, the wrapper measures and watches itself.
if [[ -n ${HSM_DISK_FREE_KB:-} ]]; then avail=$HSM_DISK_FREE_KB; else avail=$(free_kb); fi
disk_watched=${HSM_DISK_WATCHED:-0}
unset HSM_DISK_FREE_KB HSM_DISK_WATCHED
# The free disk goes into status.yaml (disk_free_kb); a task refused for it says why in its stderr.log.
if (( avail < min_free_kb )); then
  printf 'hsm: task not started: %s KB free on the disk of %s, %s KB required (disk_min_free_gb)\n' \
    "$avail" "$task_dir" "$min_free_kb" > "$task_dir/stderr.log"
  finish failed 1 disk
  exit 1
fi

argv=()
if (( $# > 2 )); then
  argv=("${@:3}")
elif [[ -f $task_dir/argv ]]; then
  while IFS= read -r -d '' arg; do argv+=("$arg"); done < "$task_dir/argv"
fi
if (( ${#argv[@]} == 0 )); then
  finish failed 127 exit_code
  exit 127
fi

write_status "state: running"

{{setup}}

stop_reason=""
child=""
on_signal() {
  # Record why the task is ending, then pass the signal on to the command.
  [[ -n $stop_reason ]] || stop_reason=$1
  [[ -n $child ]] && kill -TERM "$child" 2>/dev/null
}
trap 'on_signal cancelled' TERM INT HUP
trap 'on_signal timeout' USR1
trap 'on_signal disk' USR2

cd "$project_dir" || { finish failed 1 exit_code; exit 1; }
"${argv[@]}" > "$task_dir/stdout.log" 2> "$task_dir/stderr.log" < /dev/null &
child=$!

monitor=""
if (( check_interval > 0 )) && [[ $disk_watched != 1 ]]; then
  (
    # $! (not a variable set after it) names the sleep even when TERM lands right after the
    # fork; before the first sleep it is still the command's pid, which is left alone.
    trap '[[ $! != "$child" ]] && kill "$!" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$check_interval" & wait "$!"
      # The wrapper is gone (killed hard): nothing left to watch, and its pid may be reused.
      kill -0 $$ 2>/dev/null || exit 0
      avail=$(free_kb)
      if (( avail < floor_kb )); then
        now checked
        # To the wrapper's own stderr (the scheduler's job log): the task's stderr.log is the command's.
        printf 'hsm: %s: disk below floor at %s: %s KB < %s KB; stopping the task\n' "$task_id" "$checked" "$avail" "$floor_kb" >&2
        kill -USR2 $$
        exit 0
      fi
    done
  ) &
  monitor=$!
fi

# `wait` returns early when a trapped signal arrives; wait again until the command is gone.
rc=0
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
# From here on the outcome is known: a late signal must not cut the final status short.
trap '' TERM INT HUP USR1 USR2
if [[ -n $monitor ]]; then kill -TERM "$monitor" 2>/dev/null; wait "$monitor" 2>/dev/null; fi

case $stop_reason in
  cancelled) finish cancelled "$rc" cancelled ;;
  timeout|disk) finish failed "$rc" "$stop_reason" ;;
  *) if (( rc == 0 )); then finish completed 0 ''; else finish failed "$rc" exit_code; fi ;;
esac
exit "$rc"
