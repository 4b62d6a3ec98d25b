"""docs/configuration.md, written from the declarations of every setting.

Each key's type, default and meaning come from its one declaration (hsm/core/projectkeys.py,
hsm/core/settings.py), the text around them from here; tests/cli/test_docs_current.py fails
when the file in docs/ is not what this module writes. Regenerate with:

    python -m hsm.cli.config_reference > docs/configuration.md
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from hsm.core import settings
from hsm.core.keys import Key, text
from hsm.core.projectkeys import SECTIONS

HEADER = """\
# Project configuration: hsm_config.yaml

<!-- Written by `python -m hsm.cli.config_reference > docs/configuration.md` from the declarations
of the settings; do not edit by hand. -->

hsm looks for `hsm_config.yaml` in the working directory, then in its `sweeps/`, then in each
parent directory (each with its `sweeps/`), and says which one it uses:

```
✓ Using HSM config: sweeps/hsm_config.yaml
```

`--hsm-config PATH` on any command overrides the search. Without a config file every default
applies and the project root is the working directory. `hsm init` writes a first one from what
it finds in the project ([getting_started.md](getting_started.md)).

- `hsm config show [--format yaml|json]` prints the effective configuration, defaults filled in.
- `hsm config validate` checks it (the training script and the interpreter exist, every key is
  known and every value allowed) and exits 2 naming the file and the key otherwise.
- `hsm config set KEY VALUE` changes one key (`hsm config set compute.health_check_interval 120`):
  the value is read as YAML, the new file is checked as every command loads it before it replaces
  the old one, and every other line — comments, blank lines, order, quoting — stays as written.

Every key below is declared once in hsm, with its type, default and meaning; this page is
written from those declarations. Every command that loads the config checks every key: a key
hsm does not know (a typo such as `health_check_intervall`) is refused with the one meant when
it is close (`did you mean health_check_interval?`), and a value out of range is refused naming
the key and the file, before anything is written. A section or key written twice is refused too
(YAML would keep the last).

Keys of the original HSM's configs that hsm has no use for are either accepted only with the
value that says what hsm does anyway (`logging.file_logging: true`) or refused with a line that
says why (`result_collection.batch_size`); a config written by the original HSM's `config init`
(`hpc.system: local`, `default_timeout: null`, `experiment_tracking` switched off) loads as it is.
"""

SOURCES = """\
## compute_sources

```yaml
compute_sources:
  local:
    type: local
    max_parallel_tasks: 4
    gpus: [0, 1]
  server1:
    type: ssh
    host: compute-server-1.example.com
    max_parallel_tasks: 8
  cluster:
    type: hpc
    system: slurm
    max_parallel_tasks: 32
```

Each source has a `type` (`local`, `ssh`, `hpc`), `max_parallel_tasks` (also read as
`max_parallel_jobs`) and `enabled` (default true); its other keys are the settings of its type,
below. A `local` source is always available; without a `compute_sources.local` entry it runs
`compute.max_concurrent_local` tasks at once. An `ssh` source's cap defaults to
`compute.max_concurrent_remote` when that is given. A source with `enabled: false` is left out
of `--sources all`.

`hsm sources add|remove|enable|disable` and `hsm distributed init|add|remove` change this
section for you (see [commands.md](commands.md)). They change only the lines concerned and keep
every comment, blank line, key order, indentation and quoting. A section written in flow style
(`compute_sources: {a: {...}}`) is not rewritten: those commands refuse it and say so.

The older form of the same thing, `distributed.remotes`, is read too, its hosts becoming SSH
sources (see [distributed](#distributed)).
"""

GPUS = """\
### GPUs

A `local` or `ssh` source shares GPUs out among its tasks; an `hpc` source asks its scheduler for them.

```yaml
compute_sources:
  local:
    type: local
    max_parallel_tasks: 8
    gpus: [0, 1, 2, 3]        # or: auto
    gpus_per_task: 1
  server1:
    type: ssh
    host: gpu-server-1.example.com
    gpus: auto
    gpus_per_task: 2
  cluster:
    type: hpc
    system: slurm
    gpus_per_task: 1          # #SBATCH --gpus-per-task=1
```

The keys are `gpus` and `gpus_per_task` in the tables above. With `gpus`, a source runs at most
`len(gpus) // gpus_per_task` tasks at once (and never more
than its `max_parallel_tasks`). Each task starts with `CUDA_VISIBLE_DEVICES` set to its ids,
comma-separated (`0,1`), and `CUDA_DEVICE_ORDER=PCI_BUS_ID` unless the environment sets it
(so CUDA numbers the GPUs as `nvidia-smi` does); its `status.yaml` records them (`gpus: [0, 1]`).
No id is given to two running tasks at once. The runner that starts the tasks writes the ids of
each attempt in its `started` record before the start (`S task_001 1 0,1`) and takes an id as
free only when no attempt that got it still runs (the pid and start time of its wrapper, or of
its command when the runner started it directly, from the same record). Nothing else is kept, so
the sharing holds across `hsm submit` and `hsm poll` invocations and when the runner is killed
and started again while tasks run: the new runner leaves their ids alone until they end. The ids
are shared among the tasks of one sweep; two sweeps running at the same time on the same machine
each use every listed id, so give them different lists.

`gpus: auto` on a machine without `nvidia-smi` means no GPUs: the source runs as without
`gpus` (no limit beyond `max_parallel_tasks`, `CUDA_VISIBLE_DEVICES` left as it is), and
`hsm -v submit` (or `run`) says so in one line (`source 'server1': gpus: auto: no nvidia-smi
on server1; its tasks run without GPUs`). An `nvidia-smi` that fails, or lists fewer ids than
`gpus_per_task`, fails the submit, saying so.

An `hpc` source takes no `gpus` list: the scheduler assigns GPUs (the config is refused with
one line). On Slurm `gpus_per_task: N` becomes `#SBATCH --gpus-per-task=N` in the job script,
with `--ntasks=1` (which sbatch then requires) unless `default_resources` gives a task count.
A `pbs` source refuses `gpus_per_task`; ask for GPUs in its `default_resources` instead
(`select=1:ncpus=4:ngpus=2`).
"""

SECTION_NOTES = {
    "compute": "What the failsafe keys do is described in [failover.md](failover.md); they may also "
               "stand under `distributed:` as in the older form (`compute:` wins).",
    "ssh": "For `ssh` sources this section gives the default of every key of the source; for an hpc "
           "source's login host, of the connection keys. A source's own key wins. See [ssh.md](ssh.md).",
    "hpc": "Defaults of every `hpc` source; its `system` also says which scheduler `--sources hpc` "
           "means when no hpc source is configured (else the one whose `sbatch` or `qsub` is on PATH). "
           "`system: local`, what the original HSM writes on a machine without a scheduler, means the "
           "project has no cluster. See [hpc.md](hpc.md).",
    "logging": "`-v`, `-vv` and the environment variable `HSM_LOG_LEVEL` win over `level`.",
    "distributed": "```yaml\ndistributed:\n  enabled: true\n  strategy: round_robin\n  remotes:\n"
                   "    blossom:\n      host: blossom\n      ssh_key: ~/.ssh/id_ed25519\n"
                   "      max_parallel_jobs: 1\n```\n\nEach entry of `remotes` takes the keys of an "
                   "`ssh` source (its `host` defaults to its name), and the failsafe keys of `compute` "
                   "may stand here too.",
}

FOOTER = """\
## Templates

The task wrapper is `templates/task.sh` in hsm. A project may put its own copy in
`<project_root>/templates/task.sh`; it is rendered with the same placeholders (`{{sweep_id}}`,
`{{project_dir}}`, `{{source}}`, `{{min_free_kb}}`, `{{floor_kb}}`, `{{check_interval}}`,
`{{setup}}`), and a placeholder without a value is an error. The job scripts of hpc sources,
`templates/slurm.sh` and `templates/pbs.sh`, are overridden the same way; their placeholders
are listed in [hpc.md](hpc.md#job-scripts).

With hsm's own `task.sh` and no `conda_env`, a local or SSH runner does not start a bash per
task: it starts each command itself, with the environment, logs and `status.yaml` the wrapper
would give it (a no-op task then costs about 1 ms instead of 5). A project's own
`templates/task.sh` keeps the wrapper; a copy of hsm's is the way to ask for it. See
[design.md](design.md#the-task-wrapper).
"""


def render() -> str:
    """The whole of docs/configuration.md."""
    parts = [HEADER, SOURCES, *_source_tables(), GPUS]
    for section in SECTIONS:
        parts.append(f"## {section.name}\n\n{section.doc[0].upper()}{section.doc[1:]}.\n\n{_table(section.keys)}")
        if section.name in SECTION_NOTES:
            parts.append(SECTION_NOTES[section.name] + "\n")
    parts.append(FOOTER)
    return "\n".join(parts)


def _source_tables() -> Iterable[str]:
    common = "`type`, `enabled`, `max_parallel_tasks`"
    local_keys: tuple[Key, ...] = getattr(settings, "LOCAL_KEYS", ())
    kinds = (("local", local_keys), ("ssh", (_HOST, *settings.SSH_KEYS)), ("hpc", settings.HPC_KEYS))
    for kind, keys in kinds:
        body = _table(keys) if keys else "No settings beside the common ones.\n"
        article = "A" if kind == "local" else "An"
        yield f"### {article} `{kind}` source\n\nBeside {common}:\n\n{body}"


_HOST = Key("host", text, None, "the host to reach (required under compute_sources)")


def _table(keys: Iterable[Key]) -> str:
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key in keys:
        name = f"`{key.name}`" + (f" (also {', '.join(f'`{a}`' for a in key.aliases)})" if key.aliases else "")
        rows.append(f"| {name} | {key.type_text()} | {_shown(key.default)} | {key.doc} |")
    return "\n".join(rows) + "\n"


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]" if value else "[]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"`{value}`" if isinstance(value, str) else str(value)


if __name__ == "__main__":
    sys.stdout.write(render())
