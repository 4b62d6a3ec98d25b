"""Tab completion of sweep ids and source names, for click's own shell completion.

`_HSM_COMPLETE=bash_source hsm` (or zsh_source, fish_source) prints the script a shell
loads; the shell then asks `hsm` itself for candidates, and these functions give the
values of SWEEP arguments, `--sources` and source names (docs/completion.md).

They run on every Tab press in whatever directory the shell is in: they never raise and
never print, and give nothing when the project cannot be read.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Callable
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from hsm.config import ProjectConfig, load_project
from hsm.sweep import list_sweeps

# The forms a --sources entry can take without a configured name.
SPEC_FORMS = (("local", "this machine"), ("ssh:", "an SSH host: ssh:HOST[:N]"),
              ("hpc:", "the scheduler here, or hpc:NAME[:N]"), ("all", "every enabled configured source"))

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def never_fails(func: Completer) -> Completer:
    """Run a completion with standard output, standard error and logging silenced; any error
    gives no candidates (a Tab press must not print a traceback into the command line)."""
    @functools.wraps(func)
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        level = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return func(ctx, param, incomplete)
        except Exception:
            return []
        finally:
            logging.disable(level)

    return complete


def _project(ctx: click.Context) -> ProjectConfig:
    """The project config, found the way `open_sweep` finds it (--hsm-config when already typed)."""
    explicit = None
    current: click.Context | None = ctx
    while current is not None and explicit is None:
        explicit = current.params.get("hsm_config")
        current = current.parent
    return load_project(Path(explicit) if isinstance(explicit, (str, Path)) else None)


def _sources(ctx: click.Context) -> list[tuple[str, str, str]]:
    """(name, type, description) of every configured source."""
    return [(s.name, s.type, f"{s.type}, {s.max_parallel} tasks" + ("" if s.enabled else ", disabled"))
            for s in _project(ctx).sources.values()]


def _last_item(incomplete: str) -> tuple[str, str, set[str]]:
    """`local:4,ser` -> (`local:4,`, `ser`, {`local:4`, `local`}): what is already typed, the item
    being completed, and the items already given (with and without their `:N`)."""
    head, comma, last = incomplete.rpartition(",")
    given = {item.strip() for item in head.split(",") if item.strip()}
    given |= {item.rpartition(":")[0] for item in given if item.rpartition(":")[2].isdigit()}
    return head + comma, last, given


@never_fails
def complete_sweep_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The ids of the sweeps in the project's outputs directory (a path is completed as a directory)."""
    if "/" in incomplete or incomplete.startswith(("~", ".")):
        return [CompletionItem(incomplete, type="dir")]
    return [CompletionItem(p.name) for p in list_sweeps(_project(ctx).outputs_dir) if p.name.startswith(incomplete)]


@never_fails
def complete_source_specs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`--sources`: configured names, `local`, `ssh:`, `hpc:`, `all`, and TYPE:NAME of the configured
    SSH and HPC sources; in a comma-separated value, the last item."""
    head, last, given = _last_item(incomplete)
    sources = _sources(ctx)
    candidates = [(name, text) for name, _kind, text in sources]
    candidates += [(f"{kind}:{name}", text) for name, kind, text in sources if kind in ("ssh", "hpc")]
    candidates += [form for form in SPEC_FORMS if form[0] not in {value for value, _ in candidates}]
    return [CompletionItem(head + value, help=text) for value, text in candidates
            if value.startswith(last) and value not in given]


@never_fails
def complete_one_source(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`hsm test SOURCE`: a configured name, ssh:NAME or hpc:NAME, local, or the `ssh:` and `hpc:` forms."""
    return [item for item in complete_source_specs(ctx, param, incomplete)
            if "," not in item.value and item.value != "all"]


@never_fails
def complete_source_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Names of configured sources; in a comma-separated value, the last item (names already given are left out)."""
    head, last, given = _last_item(incomplete)
    before = ctx.params.get(param.name or "")
    for value in (before,) if isinstance(before, str) else before or ():
        given |= {name.strip() for name in str(value).split(",")}
    return [CompletionItem(head + name, help=text) for name, _kind, text in _sources(ctx)
            if name.startswith(last) and name not in given]
