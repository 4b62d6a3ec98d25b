"""A sweep as hsm understands it: its parameters, how many combinations, and each of them (pure).

`hsm.core.sweepconfig` builds a SweepSpec from what a sweep-config file holds; `overridden`
adds the sweeps given on the command line.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random as _random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Values = tuple[object, ...]
Row = tuple[tuple[str, ...], Values]  # (names, values) of one paired row or random sample

# Hydra's functions that make a sweep (`tag`, `sort` and `shuffle` wrap one); `str(...)`,
# `int(...)` and any other name are no sweep, so such a string stays a string.
HYDRA_SWEEP_FUNCTIONS = ("choice", "range", "interval", "tag", "sort", "shuffle", "glob")
SWEEP_CALL = re.compile(rf"\s*(?:{'|'.join(HYDRA_SWEEP_FUNCTIONS)})\s*\(")


@dataclass(frozen=True)
class Distribution:
    """One random parameter: `kind` is uniform, loguniform, int (inclusive) or choice."""

    kind: str
    low: float = 0  # bounds of uniform, loguniform and int (whole numbers for int)
    high: float = 0
    values: Values = ()

    def draw(self, rng: _random.Random) -> object:
        """Draw one value with `rng`."""
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        if self.kind == "loguniform":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            # exp(log(x)) can land one ulp outside the bounds the user wrote.
            return min(max(value, self.low), self.high)
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        return rng.choice(self.values)

    def describe(self) -> str:
        """A short text such as `loguniform(0.0001, 0.1)`."""
        if self.kind == "choice":
            return f"choice of {_plural(len(self.values), 'value')}"
        return f"{self.kind}({self.low!r}, {self.high!r})"


def is_sweep_text(value: object) -> bool:
    """True for a string written as a call of one of Hydra's sweep functions, `range(1,5)`."""
    return isinstance(value, str) and bool(SWEEP_CALL.match(value)) and value.rstrip().endswith(")")


@dataclass(frozen=True)
class HydraSweep:
    """A value in Hydra's sweep syntax, as a SweepParser read it.

    `choice` and `range` enumerate `values`; `interval` is the continuous range [low, high],
    sampled on a log scale when tagged `log` (`tag(log, interval(1e-4, 1e-1))`).
    """

    kind: str
    values: Values = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def grid_values(self) -> Values:
        """The values to sweep over; ValueError (the problem) for an interval or no values."""
        if self.kind == "interval":
            raise ValueError("is a continuous interval, not a list of values: sample it under random:")
        if not self.values:
            raise ValueError("gives no values")
        return self.values

    def discrete(self) -> Distribution:
        """A random pick among the values: `int` for a range of consecutive ints, else `choice`."""
        values = self.grid_values()
        first = values[0]
        if self.kind == "range" and isinstance(first, int) and not isinstance(first, bool) and len(values) > 1 \
                and values == tuple(range(first, first + len(values))):
            return Distribution("int", low=first, high=first + len(values) - 1)
        return Distribution("choice", values=values)


# Reads the text of one value (`range(1,5)`): its HydraSweep, or None when the text is valid but
# no sweep (`sort([3,1])`). Raises ValueError (one line) on bad syntax, ImportError when the
# grammar is not installed.
SweepParser = Callable[[str], "HydraSweep | None"]


@dataclass(frozen=True)
class RandomSpec:
    """`n` samples drawn with `random.Random(seed)`, each parameter in listed order."""

    n: int
    seed: int
    parameters: tuple[tuple[str, Distribution], ...]

    def samples(self) -> list[Values]:
        """The n samples, each a tuple of values in the order of `parameters`."""
        rng = _random.Random(self.seed)
        dists = [dist for _, dist in self.parameters]
        return [tuple(dist.draw(rng) for dist in dists) for _ in range(self.n)]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep config: grid × (paired groups, summed) × random samples."""

    grid: tuple[tuple[str, Values], ...] = ()
    paired: tuple[tuple[str | None, tuple[str, ...], tuple[Values, ...]], ...] = ()
    random: RandomSpec | None = None
    command: str | None = None
    arg_style: str | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    defaults: list[object] = field(default_factory=list)

    def count(self) -> int:
        """Number of combinations, computed without enumerating them."""
        total = math.prod(len(values) for _, values in self.grid)
        if self.paired:
            total *= sum(len(rows) for _, _, rows in self.paired)
        if self.random is not None:
            total *= self.random.n
        return total

    def parameter_names(self) -> list[str]:
        """Every parameter name, in first-seen order: grid, paired groups, random."""
        names = dict.fromkeys(name for name, _ in self.grid)
        for _, group_names, _ in self.paired:
            names.update(dict.fromkeys(group_names))
        if self.random is not None:
            names.update(dict.fromkeys(name for name, _ in self.random.parameters))
        return list(names)

    def combinations(self) -> Iterator[dict[str, object]]:
        """Yield each combination as a new dict; grid outermost, then paired rows, then samples.

        Values are the config's own objects (a list-valued value is shared between dicts).
        """
        grid_names = tuple(name for name, _ in self.grid)
        grid_values = [values for _, values in self.grid]
        # Everything inside one grid point is the same for every point: build it once.
        tails = [
            (grid_names + p_names + r_names, p_values + r_values)
            for p_names, p_values in self._paired_rows()
            for r_names, r_values in self._random_rows()
        ]
        for point in itertools.product(*grid_values):
            for names, values in tails:
                yield dict(zip(names, point + values))

    def overridden(self, entries: tuple[tuple[str, Values], ...]) -> SweepSpec:
        """This sweep with `entries` (command-line overrides) as grid parameters; they win.

        A name already in the grid keeps its place and takes the new values (as Hydra's basic
        sweeper does with a key given twice); one in a paired group or under random leaves it
        there (a group or random with nothing left goes); new names follow the grid's own.
        """
        new = dict(entries)
        grid = [(name, new.pop(name) if name in new else values) for name, values in self.grid]
        grid += list(new.items())
        given = set(dict(entries))
        paired = []
        for group, names, rows in self.paired:
            keep = [i for i, name in enumerate(names) if name not in given]
            if keep:
                paired.append((group, tuple(names[i] for i in keep), tuple(tuple(row[i] for i in keep) for row in rows)))
        rand = self.random
        if rand is not None:
            left = tuple((name, dist) for name, dist in rand.parameters if name not in given)
            rand = dataclasses.replace(rand, parameters=left) if left else None
        return dataclasses.replace(self, grid=tuple(grid), paired=tuple(paired), random=rand)

    def describe(self) -> list[tuple[str, str]]:
        """(parameter, values) rows for a dry-run table."""
        rows = [(name, _plural(len(values), "value")) for name, values in self.grid]
        for index, (group, names, group_rows) in enumerate(self.paired, start=1):
            label = group if group is not None else str(index)
            text = f"paired group {label}: {_plural(len(group_rows), 'value')}"
            rows.extend((name, text) for name in names)
        if self.random is not None:
            rows.extend((name, dist.describe()) for name, dist in self.random.parameters)
        return rows

    def _paired_rows(self) -> list[Row]:
        if not self.paired:
            return [((), ())]
        return [(names, row) for _, names, rows in self.paired for row in rows]

    def _random_rows(self) -> list[Row]:
        if self.random is None:
            return [((), ())]
        names = tuple(name for name, _ in self.random.parameters)
        return [(names, sample) for sample in self.random.samples()]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
