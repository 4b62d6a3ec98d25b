"""docs/commands.md, generated from the command tree: every command's usage, help and parameters.

    python -m hsm.cli.reference --write      # rewrite docs/commands.md
    python -m hsm.cli.reference --check      # exit 1 when docs/commands.md is out of date
    python -m hsm.cli.reference > FILE       # the same text on standard output

The text depends on the commands alone: no terminal width, no path or interpreter of this
machine, commands in tree order with subcommands sorted by name. Hidden commands are left out.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"
REGENERATE = "python -m hsm.cli.reference --write"
_UNSET = getattr(click.core, "UNSET", None)  # click 8.3+: a parameter without a default

# Arguments have no help text in click: what each argument name means, wherever it appears.
ARGUMENT_HELP = {
    "sweep": "A sweep id (its directory under the project's outputs directory) or a sweep directory.",
    "config": "The sweep config file, e.g. sweeps/sweep_config.yaml.",
    "names": "Source names, comma-separated or as separate arguments.",
    "name": "The source's name.",
    "host": "The SSH host name or address.",
    "spec": "One source: ssh:NAME, hpc:NAME or local.",
    "words": "The sweep config (a first argument ending in .yaml or .yml), then Hydra overrides.",
    "key": "A dotted key of hsm_config.yaml (section.key).",
    "value": "The value, read as YAML.",
}

HEADER = f"""\
<!-- Generated from the CLI by hsm/cli/reference.py: do not edit by hand. Regenerate with: {REGENERATE} -->

# Commands

This file is generated from the CLI; do not edit it by hand. After changing a command, regenerate
it with `{REGENERATE}` (or `python -m hsm.cli.reference > docs/commands.md`);
`tests/cli/test_docs_current.py` fails while it is out of date. Each command's text below is its
`--help`.

Every command has `--help` (`-h`) with an example, and all of them accept `--hsm-config PATH`.
Tab completion of commands, options, sweep ids and source names: [completion.md](completion.md).

## The steps

The steps (`expand`, `assign`, `submit`, `poll`, `collect`, `health`, `aggregate`) each read and
write the state files of one sweep and exit. A step takes the sweep as an id (looked up in the
project's outputs directory) or a directory path, or reads it from standard input when none is
given. On success it prints the sweep directory, and only that, on standard output; everything
else goes to standard error. Running a step again changes nothing that is already done.

Each is also installed as `hsm-<step>` and runs from a checkout as `bin/hsm-<step>`:

```sh
hsm-expand sweeps/sweep_config.yaml | hsm-assign --sources local:4 | hsm-submit
```

A crontab that drives a sweep (the local runner keeps the slots busy in between):

```
*/5 * * * * cd ~/project && hsm-submit SWEEP_ID >/dev/null && hsm-poll SWEEP_ID >/dev/null && hsm-collect SWEEP_ID >/dev/null
```

`hsm run` drives the same steps for you, and `hsm complete` finishes a sweep on any sources.

## Source specs and strategies

`--sources` takes comma-separated entries `NAME[:N]` or `TYPE:NAME[:N]`, TYPE one of `local`,
`ssh`, `hpc` (also `slurm`, `pbs`). N caps the tasks running at once on that source (default: the
source's `max_parallel_tasks`). `all` is every enabled configured source, `local:4` the local
machine with 4 slots, `ssh:HOST` an SSH host that need not be configured, `hpc` the scheduler
found on this machine. A malformed spec or an unknown name is refused (exit 2).

Strategies: `round_robin` (default; local → server1 → server2 → local …), `least_loaded` (the
source with the lowest load per slot), `random` (seeded with `--seed`), `weighted` (in proportion
to slots, interleaved), `capability_based` (the source with the most free slots).

## Sources

The project's sources are those of `hsm_config.yaml` (`compute_sources`, the older
`distributed.remotes`, and the implicit `local`); a sweep keeps its own copy of each source
it was assigned to. The `hsm sources` commands read the config, probe the sources (one health
call per source: the agent's disk, load and memory figures on this machine or over ssh, `sinfo`
or `qstat -q` for a cluster), and change the config and the running sweeps (every sweep in the
outputs directory with unfinished tasks). Changes to `hsm_config.yaml` keep its comments, key
order and layout: only the changed line, or the added or removed entry, differs. A change the
config would refuse is refused (exit 2) and nothing is written. The `hsm distributed` commands
are the older names of the same actions.
"""

FOOTER = """\
## Export

`hsm export` writes one row per task, in task order. The columns are `task_id`; every parameter,
named as in `params.yaml` (a dict value flattened to `optimizer.betas.b1`); `state`, `reason`,
`exit_code`, `source`, `host`, `attempts` (the latest attempt's number, 0 if it never ran),
`start`, `end`, `duration` (seconds); then every key of the task's `metrics.json` (written by the
training script into `$HSM_TASK_DIR`), nested keys flattened to `loss.val.mean`. A metric named
like a parameter or one of the columns above gets `metric.` before its name (`metric.lr`); a
parameter named like one of those columns gets `param.`. Lists, and dicts with no keys, are JSON
text in one cell. The columns are the union over the tasks: a task without a value has an empty
cell (`null` in JSON). CSV loads with `pandas.read_csv(path)`, JSON (an array of row objects) with
`json.load` or `pandas.read_json(path)`, Parquet with `pandas.read_parquet(path)`. Tasks that ran
on remote sources show their metrics once `hsm collect` brought them home.

## Exit codes

0 success; 1 an operational failure (a source refused or did not answer, a task failed in
`hsm run`; a full disk, a read-only file system or a permission taken away, named with the
file; a state file from a newer hsm or a damaged index entry), with one line and no
traceback; 2 bad input or usage, with one line that says what is wrong and where, and nothing
written; 130 interrupted.
"""


# --- the tree ---------------------------------------------------------------------------------------


def walk(command: click.Command, ctx: click.Context | None = None) -> Iterator[tuple[click.Context, click.Command]]:
    """Every visible command under `command` (itself first), each with its context; subcommands by name."""
    ctx = ctx or click.Context(command, info_name="hsm", **command.context_settings)
    yield ctx, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not sub.hidden:
                yield from walk(sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings))


def help_text(command: click.Command) -> str:
    """The command's help as written (click drops what follows a form feed from --help too)."""
    return inspect.cleandoc(command.help or command.short_help or "").split("\f")[0].strip()


def paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of a help text."""
    return [p for p in (block.strip("\n") for block in text.split("\n\n")) if p.strip()]


def is_code(paragraph: str) -> bool:
    """An indented paragraph (a command line, an example), with or without click's \\b marker."""
    lines = [line for line in paragraph.splitlines() if line.strip() and line.strip() != "\b"]
    return bool(lines) and all(line[:1].isspace() for line in lines)


def first_sentence(command: click.Command) -> str:
    """The first paragraph of the help, on one line."""
    parts = paragraphs(help_text(command))
    return " ".join(parts[0].split()) if parts else ""


def anchor(path: str) -> str:
    """The anchor GitHub gives the heading `path` (`hsm sources add` -> `hsm-sources-add`)."""
    return path.lower().replace(" ", "-")


# --- rendering --------------------------------------------------------------------------------------


def markdown_help(text: str) -> list[str]:
    """Help text as Markdown: prose paragraphs as they are, indented ones as fenced code blocks."""
    out: list[str] = []
    code: list[str] = []

    def flush() -> None:
        if code:
            out.extend(["```sh", "\n\n".join(code), "```", ""])
            code.clear()

    for para in paragraphs(text):
        if is_code(para):
            code.append(textwrap.dedent("\n".join(line for line in para.splitlines() if line.strip() != "\b")))
            continue
        flush()
        out.extend([para.replace("\b\n", ""), ""])
    flush()
    return out


def cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def option_names(param: click.Parameter) -> str:
    """`-o`, `--output` as click lists them (short forms first), and the `--no-` form of a switch."""
    names = sorted(param.opts, key=lambda n: (len(n) - len(n.lstrip("-")), n.lstrip("-") == ""))
    names += list(param.secondary_opts)
    return ", ".join(f"`{name}`" for name in names)


def type_text(param: click.Parameter) -> str:
    """What an option or argument takes: its metavar, choices, kind of value and range."""
    kind = param.type
    if isinstance(param, click.Option) and param.count:
        return "count (repeat it)"
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if isinstance(kind, click.Choice):
        text = " | ".join(f"`{choice}`" for choice in kind.choices)
    elif isinstance(kind, click.Path):
        text = "directory" if not kind.file_okay else "file" if not kind.dir_okay else "path"
    else:
        text = {"string": "text", "integer": "integer", "float": "number"}.get(kind.name, kind.name)
        text = text.replace(" range", "")
    describe = getattr(kind, "_describe_range", None)
    if callable(describe):
        text += f", {describe()}"
    if param.metavar and isinstance(param, click.Option) and not isinstance(kind, click.Choice):
        text = f"`{param.metavar}` ({text})"
    return text


def arity(param: click.Parameter) -> list[str]:
    """required / optional / repeatable notes."""
    notes = []
    if param.required:
        notes.append("required")
    if isinstance(param, click.Argument):
        if not param.required:
            notes.append("optional")
        if param.nargs == -1:
            notes.append("any number" if not param.required else "one or more")
    elif getattr(param, "multiple", False):
        notes.append("repeatable")
    return notes


def default_text(param: click.Parameter) -> str:
    """The default, when it is a value (a flag's False, None and () are no default)."""
    if isinstance(param, click.Option) and isinstance(param.show_default, str):
        return param.show_default
    value = param.default
    if value is _UNSET:
        return ""
    if callable(value):
        return "computed when run"
    if value is None or value is False or value == () or (isinstance(param, click.Option) and param.count):
        return ""
    if value is True:
        return "on"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def parameter_rows(ctx: click.Context, command: click.Command) -> list[str]:
    """The table of the command's arguments and options (the help option is everywhere: left out)."""
    help_names = set(ctx.help_option_names)
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False) or help_names & set(param.opts):
            continue
        if isinstance(param, click.Argument):
            name = f"`{param.human_readable_name}`"
            description = ARGUMENT_HELP.get(param.name or "", "")
        else:
            name = option_names(param)
            description = getattr(param, "help", None) or ""
        takes = ", ".join([type_text(param), *arity(param)])
        rows.append(f"| {name} | {cell(takes)} | {cell(default_text(param))} | {cell(description)} |")
    if not rows:
        return []
    return ["| parameter | takes | default | description |", "| --- | --- | --- | --- |", *rows, ""]


def render_command(ctx: click.Context, command: click.Command) -> list[str]:
    """One command's section: heading, usage, help, subcommands, parameters."""
    path = ctx.command_path
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    lines = [f"### {path}", "", "```", usage, "```", "", *markdown_help(help_text(command))]
    if isinstance(command, click.Group):
        subs = [(name, sub) for name, sub in sorted(command.commands.items()) if not sub.hidden]
        lines += ["Commands:", ""]
        lines += [f"- [`{path} {name}`](#{anchor(f'{path} {name}')}): {first_sentence(sub)}" for name, sub in subs]
        lines.append("")
    return lines + parameter_rows(ctx, command)


def render(root: click.Command | None = None) -> str:
    """The whole of docs/commands.md."""
    tree = list(walk(root or _cli()))
    lines = [HEADER, "## Command reference", ""]
    for ctx, command in tree:
        depth = len(ctx.command_path.split()) - 1
        lines.append(f"{'  ' * max(depth - 1, 0)}- [`{ctx.command_path}`](#{anchor(ctx.command_path)})"
                     + (f": {first_sentence(command)}" if depth else ""))
    lines.append("")
    for ctx, command in tree:
        lines += render_command(ctx, command)
    text = "\n".join(lines).rstrip("\n") + "\n\n" + FOOTER
    return text


def _cli() -> click.Command:
    from hsm.cli import cli

    return cli


def main(argv: list[str] | None = None) -> int:
    """`--write`: rewrite docs/commands.md; `--check`: exit 1 when it differs; else print the text."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args == ["--write"]:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(DOC.parents[1])}", file=sys.stderr)
        return 0
    if args == ["--check"]:
        current = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
        if current != text:
            print(f"docs/commands.md is out of date: regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if args:
        print("usage: python -m hsm.cli.reference [--write | --check]", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
