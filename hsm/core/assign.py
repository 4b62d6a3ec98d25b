"""Assignment strategies: which source each task goes to (pure).

Each strategy sees the sources in the order given, with their capacity (parallel slots)
and current load (tasks already assigned or active there), and places tasks one by one,
counting each placement as load.
"""

from __future__ import annotations

import random as _random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

STRATEGIES = ("round_robin", "least_loaded", "random", "weighted", "capability_based")


@dataclass
class Slot:
    """A source as the strategies see it."""

    name: str
    capacity: int
    load: int = 0


def _round_robin(tasks: Sequence[str], slots: list[Slot], rng: _random.Random) -> dict[str, str]:
    return {task: slots[i % len(slots)].name for i, task in enumerate(tasks)}


def _pick_each(choose: Callable[[list[Slot]], Slot]) -> Callable[[Sequence[str], list[Slot], _random.Random], dict[str, str]]:
    def place(tasks: Sequence[str], slots: list[Slot], rng: _random.Random) -> dict[str, str]:
        out: dict[str, str] = {}
        for task in tasks:
            slot = choose(slots)
            slot.load += 1
            out[task] = slot.name
        return out

    return place


# Lowest utilisation (load per slot); ties go to the earlier source.
_least_loaded = _pick_each(lambda slots: min(slots, key=lambda s: s.load / s.capacity))
# Most free slots in absolute terms, so big sources fill first; ties to the earlier source.
_capability = _pick_each(lambda slots: max(slots, key=lambda s: (s.capacity - s.load, -slots.index(s))))


def _random_choice(tasks: Sequence[str], slots: list[Slot], rng: _random.Random) -> dict[str, str]:
    return {task: rng.choice(slots).name for task in tasks}


def _weighted(tasks: Sequence[str], slots: list[Slot], rng: _random.Random) -> dict[str, str]:
    # Smooth weighted round robin: each source gets tasks in proportion to its capacity,
    # interleaved rather than in blocks.
    current = [0] * len(slots)
    total = sum(s.capacity for s in slots)
    out: dict[str, str] = {}
    for task in tasks:
        for i, slot in enumerate(slots):
            current[i] += slot.capacity
        best = max(range(len(slots)), key=lambda i: (current[i], -i))
        current[best] -= total
        out[task] = slots[best].name
    return out


_STRATEGY_FUNCS = {
    "round_robin": _round_robin,
    "least_loaded": _least_loaded,
    "random": _random_choice,
    "weighted": _weighted,
    "capability_based": _capability,
}


def assign(tasks: Sequence[str], slots: list[Slot], strategy: str, seed: int | None = None) -> dict[str, str]:
    """Map each task id to a source name by `strategy`; deterministic for a given seed."""
    if not slots:
        raise ValueError("no sources to assign to")
    rng = _random.Random(seed if seed is not None else 0)
    return _STRATEGY_FUNCS[strategy](tasks, [Slot(s.name, s.capacity, s.load) for s in slots], rng)
