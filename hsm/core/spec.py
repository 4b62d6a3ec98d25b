"""A sweep as hsm understands it: its parameters, how many combinations, and each of them (pure).

`hsm.core.sweepconfig` builds a SweepSpec from what a sweep-config file holds.
"""

from __future__ import annotations

import itertools
import math
import random as _random
from collections.abc import Iterator
from dataclasses import dataclass, field

Values = tuple[object, ...]
Row = tuple[tuple[str, ...], Values]  # (names, values) of one paired row or random sample


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
