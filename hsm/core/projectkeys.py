"""The project-wide sections of `hsm_config.yaml`, every key declared once (pure).

The sources' own settings are declared in `hsm.core.settings`; this module declares the
rest (`project`, `paths`, `execution`, `logging`, `result_collection`, `experiment_tracking`,
`distributed`) and lists every section with its keys in `SECTIONS`, which `hsm.config` checks
against, `hsm config set` checks a change with and `docs/configuration.md` is written from.

Keys of the original HSM's configs that hsm has no use for come in two kinds: those whose only
sensible value is what hsm does anyway (`file_logging: true`) accept that value and refuse the
other with a line saying why; those that name something hsm does not do are refused with a line
saying so, except where the original's own generated configs write them with a neutral value
(`default_timeout: null`), so that such a config still loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hsm.core.keys import Key, bad, boolean, choice, path_text, read_keys, text, whole
from hsm.core.settings import COMPUTE_KEYS, HPC_KEYS, SSH_KEYS
from hsm.errors import BadInput

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STRATEGIES = ("round_robin", "least_loaded", "random", "weighted", "capability_based")


F = TypeVar("F", bound=Callable[..., Any])


def _kind(text: str) -> Callable[[F], F]:
    """Mark a parser with how the docs name the type it takes."""
    def mark(parse: F) -> F:
        parse.kind = text  # type: ignore[attr-defined]
        return parse
    return mark


def always(value: bool, why: str) -> Any:
    """A key whose only accepted value is what hsm always does; the other is refused, saying why."""
    def parse(given: Any, where: str) -> bool:
        given = boolean(given, where)
        if given is not value:
            raise BadInput(f"{where}: {str(given).lower()} is not supported: {why}")
        return given
    parse.kind = "true" if value else "false"  # type: ignore[attr-defined]
    return parse


def unused(why: str, neutral: bool | None = None) -> Any:
    """A key of the original HSM that hsm does not act on: its neutral value is accepted, any other refused.

    The neutral value is null (an empty entry, which never reaches a parser) or the given boolean.
    """
    def parse(given: Any, where: str) -> Any:
        if neutral is None or given is not neutral:
            raise BadInput(f"{where}: hsm does not act on this key: {why}")
        return given
    parse.kind = "null" if neutral is None else str(neutral).lower()  # type: ignore[attr-defined]
    return parse


@_kind("mapping of sources")
def any_value(value: Any, where: str) -> Any:
    """Taken as written; checked where it is read (a mapping of sources)."""
    return value


def _compute(name: str) -> Key:
    return next(k for k in COMPUTE_KEYS if k.name == name)


@_kind("path")
def optional_path(value: Any, where: str) -> str | None:
    """A path or a name; an empty string is the same as not given."""
    return None if value == "" else path_text(value, where)


@_kind(" or ".join(LOG_LEVELS))
def log_level(value: Any, where: str) -> str:
    """A logging level name, in any case."""
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise bad(where, f"expected one of {', '.join(LOG_LEVELS)}", value)
    return value.upper()


@_kind("logging format")
def log_format(value: Any, where: str) -> str:
    """A Python logging format with `%(message)s` in it (without it every line would be empty)."""
    if not isinstance(value, str) or "%(message)s" not in value:
        raise bad(where, "expected a logging format containing %(message)s", value)
    return value


@_kind("size, e.g. 100MB")
def size_text(value: Any, where: str) -> Any:
    """A size such as 100MB, or a number of bytes."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad(where, "expected a size such as 100MB", value)
    return value


PROJECT_KEYS = (
    Key("name", text, None, "the project's name (`hsm init` writes the directory's name)"),
    Key("description", text, None, "a line about the project, for the people who read the config"),
)

PATH_KEYS = (
    Key("project_root", optional_path, None,
        "where tasks start and relative paths are resolved from (default: the config's directory, "
        "its parent when the config is in sweeps/)"),
    Key("training_script", optional_path, None, "the script each task runs", aliases=("train_script",)),
    Key("python_interpreter", optional_path, None, "the interpreter tasks run with (default: the Python that runs hsm)"),
    Key("conda_env", optional_path, None, "a conda env activated in the task wrapper when conda is on PATH"),
    Key("outputs_dir", optional_path, "sweeps/outputs", "where sweep directories go", aliases=("output_dir",)),
)

EXECUTION_KEYS = (
    Key("strategy", choice(*STRATEGIES), "round_robin", "how tasks are spread over sources (default of --strategy)"),
    Key("arg_style", choice("hydra", "argparse"), "hydra",
        "how parameters reach the script: hydra overrides (key=value) or argparse options (--key value)"),
    Key("hydra_run_dir", boolean, True, "add hydra.run.dir=<task dir>/results to Hydra-style tasks"),
)

LOGGING_KEYS = (
    Key("level", log_level, "WARNING", "how much hsm says on standard error (-v and -vv say more)"),
    Key("format", log_format, "hsm: %(message)s", "the format of hsm's log lines on standard error (Python logging's)"),
    Key("console_logging", boolean, True, "false: hsm logs only errors on standard error"),
    Key("file_logging", always(True, "hsm always writes a sweep's logs/ (sweep.log and the rest)"), True,
        "a sweep's logs/ directory (always written)"),
    Key("source_specific_logs", always(True, "hsm always writes logs/sources/NAME.log"), True,
        "one log per source in logs/sources/ (always written)"),
    Key("aggregated_logs", always(True, "hsm always writes logs/sweep_aggregated.log"), True,
        "logs/sweep_aggregated.log, every source's lines in one file (always written)"),
    Key("max_log_size", size_text, None,
        "accepted from the original HSM's configs; hsm does not rotate logs (a sweep's logs end with the sweep)"),
    Key("backup_count", whole(0), None, "accepted from the original HSM's configs; hsm does not rotate logs"),
)

RESULT_COLLECTION_KEYS = (
    Key("cleanup_remote_on_success", boolean, False,
        "remove a completed task's dir from its SSH host once it is home"),
    Key("immediate_error_collection",
        always(True, "hsm brings a failed task's files home as soon as the task is seen to end"), True,
        "failed tasks are brought home as soon as they end (always)"),
    Key("continuous_sync", always(True, "hsm run collects finished tasks every compute.result_collection_interval"),
        True, "results are brought home while the sweep runs (always)"),
    Key("batch_size", unused("collect brings all of a source's finished tasks home in one rsync"), None,
        "refused: collect brings all of a source's finished tasks home in one rsync"),
    Key("parallel_transfers", unused("hsm runs one rsync per source, the sources in turn"), None,
        "refused: hsm runs one rsync per source"),
)

_TRACKER_WHY = "hsm starts no experiment tracker; log from the training script (e.g. wandb.init in it)"
EXPERIMENT_TRACKING_KEYS = (
    Key("wandb_enabled", unused(_TRACKER_WHY, False), False, "accepted as false only: " + _TRACKER_WHY),
    Key("mlflow_enabled", unused(_TRACKER_WHY, False), False, "accepted as false only"),
    Key("tensorboard_enabled", unused(_TRACKER_WHY, False), False, "accepted as false only"),
    Key("wandb_project", unused("set WANDB_PROJECT in the environment the tasks run in"), None,
        "accepted as null only: set WANDB_PROJECT in the tasks' environment"),
    Key("wandb_entity", unused("set WANDB_ENTITY in the environment the tasks run in"), None,
        "accepted as null only: set WANDB_ENTITY in the tasks' environment"),
    Key("mlflow_tracking_uri", unused("set MLFLOW_TRACKING_URI in the environment the tasks run in"), None,
        "accepted as null only: set MLFLOW_TRACKING_URI in the tasks' environment"),
)

# Keys of the original HSM's `compute:` section, beside hsm's own (`COMPUTE_KEYS`).
COMPUTE_LEGACY_KEYS = (
    Key("ssh_compression", boolean, None, "the default of ssh.compression (compress ssh traffic)"),
    Key("rsync_compression", boolean, None,
        "the default of ssh.compression too: rsync runs over ssh, whose compression covers it"),
    Key("max_concurrent_remote", whole(1), None, "the default max_parallel_tasks of ssh sources"),
    Key("default_timeout", unused("hsm has no task timeout on local and ssh sources; "
                                  "on hpc sources set default_walltime"), None,
        "accepted as null only: hsm has no task timeout on local and ssh sources"),
)

# `distributed:` is the original HSM's section for SSH hosts; the failsafe keys of `compute:`
# may stand there too (`compute:` wins).
DISTRIBUTED_KEYS = (
    Key("enabled", boolean, True, "false: the hosts under remotes are configured but left out (disabled)"),
    Key("strategy", choice(*STRATEGIES), None, "the default strategy when execution.strategy is not given"),
    Key("remotes", any_value, None, "SSH hosts, each a source of type ssh (see compute_sources)"),
    Key("collect_interval", _compute("result_collection_interval").parse, None,
        "the older name of compute.result_collection_interval"),
    Key("max_retries", _compute("retry_attempts").parse, None, "the older name of compute.retry_attempts"),
)


@dataclass(frozen=True)
class Section:
    """A top-level section of hsm_config.yaml and the keys it takes."""

    name: str
    keys: tuple[Key, ...]
    doc: str


SECTIONS = (
    Section("project", PROJECT_KEYS, "about the project"),
    Section("paths", PATH_KEYS, "where things are"),
    Section("compute", (*COMPUTE_KEYS, *COMPUTE_LEGACY_KEYS), "thresholds of the failsafe, retries, disk checks and limits"),
    Section("execution", EXECUTION_KEYS, "how tasks are spread and how parameters reach them"),
    Section("ssh", SSH_KEYS, "defaults of every ssh source (and the connection of an hpc login host)"),
    Section("hpc", HPC_KEYS, "defaults of every hpc source; `system: local` means no cluster"),
    Section("result_collection", RESULT_COLLECTION_KEYS, "bringing results home from remote sources"),
    Section("logging", LOGGING_KEYS, "what hsm says on standard error"),
    Section("experiment_tracking", EXPERIMENT_TRACKING_KEYS, "the original HSM's tracker switches"),
    Section("distributed", DISTRIBUTED_KEYS, "the original HSM's form of SSH sources and failsafe keys"),
)
SECTION_NAMES = ("compute_sources", *(s.name for s in SECTIONS))


def section(name: str) -> Section:
    """The declared section called `name`."""
    return next(s for s in SECTIONS if s.name == name)


def logging_settings(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The checked `logging:` section, defaults filled in."""
    return read_keys(LOGGING_KEYS, data, where, sep=".")
