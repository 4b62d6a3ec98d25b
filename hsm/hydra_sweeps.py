"""Hydra's own sweep grammar, for sweep-config values and command-line overrides.

hydra-core is optional and imported only when a value or an override needs it:
`parse_value` reads one sweep-config value (`range(1,5)`) for `hsm.core.sweepconfig`, and
`parse_overrides` reads the words of `hsm run -- lr=0.1,0.01 model=a,b` into grid parameters,
as `python app.py -m lr=0.1,0.01 model=a,b` (Hydra's basic sweeper) would sweep them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hsm.core.spec import HydraSweep, Values
from hsm.errors import BadInput

INSTALL = "pip install hydra-core"


@functools.lru_cache(maxsize=1)
def _grammar() -> Any:
    """Hydra's override parser; ImportError when hydra-core is not installed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parse(text: str) -> Any:
    """One override parsed by Hydra; ValueError (one line) when Hydra refuses it."""
    grammar = _grammar()
    try:
        return grammar.parse_override(text)
    except Exception as exc:  # Hydra raises HydraException and its parser's own errors
        raise ValueError(_one_line(exc)) from None


def parse_value(text: str) -> HydraSweep | None:
    """A sweep-config value in Hydra's sweep syntax (`range(1,5)`), None when it is valid but no sweep.

    ValueError on bad syntax, ImportError without hydra-core (a `hsm.core.spec.SweepParser`).
    """
    override = _parse(f"key={text}")
    return _sweep(override) if override.is_sweep_override() else None


def _sweep(override: Any) -> HydraSweep:
    """The HydraSweep of a sweep override: its values, or an interval's bounds."""
    value = override.value()
    if override.is_interval_sweep():
        return HydraSweep("interval", low=value.start, high=value.end, log="log" in value.tags)
    if not override.is_discrete_sweep() or type(value).__name__ == "Glob":
        raise ValueError("glob() picks options of a Hydra config group, which hsm does not list: give the values")
    try:
        values = tuple(_plain(item) for item in override.sweep_iterator())
    except ValueError:
        raise
    except Exception as exc:  # a sweep inside a sweep, `range(1,3),4`: Hydra cannot list it either
        raise ValueError(_one_line(exc)) from None
    return HydraSweep("range" if override.is_range_sweep() else "choice", values=values)


def _plain(value: Any) -> object:
    """A parsed element as plain data (Hydra keeps quoted strings as QuotedString)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "text") and hasattr(value, "quote"):  # QuotedString
        return str(value.text)
    raise ValueError(f"a {type(value).__name__} inside a sweep: only plain values can be listed")


def parse_overrides(words: Sequence[str]) -> tuple[tuple[str, Values], ...]:
    """Command-line overrides as grid parameters `(key, values)`, in order.

    A sweep (`a=1,2`, `a=range(1,5)`, `a=choice(x,y)`) gives its values, a plain `key=value`
    one value for every task; `+key=value`, `++key=value` and `~key` keep their prefix in the
    name (`~key` is `~key=null`, the same deletion to Hydra). A key given twice keeps its first
    place and takes the last values, as with Hydra's basic sweeper.
    """
    entries: dict[str, Values] = {}
    for word in words:
        try:
            override = _parse(word)
            values = _override_values(override)
        except ImportError:
            raise BadInput(f"override {word!r}: overrides are read with Hydra's grammar; "
                           f"install hydra-core to use them ({INSTALL})") from None
        except ValueError as exc:
            raise BadInput(f"override {word!r}: {exc}") from None
        if not override.key_or_group:
            raise BadInput(f"override {word!r}: no key before '='")
        for value in values:
            _refuse_interpolation(value, word)
        entries[override.get_key_element()] = values
    return tuple(entries.items())


def _override_values(override: Any) -> Values:
    """The values one override gives its key: a sweep's, else its one value."""
    if not override.is_sweep_override():
        return (_plain(override.value()),)
    sweep = _sweep(override)
    if sweep.kind == "interval":
        raise ValueError("an interval is sampled, not listed (Hydra's basic sweeper refuses it too): "
                         "sample it under random: in a sweep config")
    if not sweep.values:
        raise ValueError("the sweep gives no values")
    return sweep.values


def _refuse_interpolation(value: object, word: str) -> None:
    """hsm passes every value as literal text, so an OmegaConf interpolation would not be resolved."""
    if isinstance(value, str) and "${" in value:
        raise BadInput(f"override {word!r}: hsm passes values as literal text, so the interpolation in "
                       f"{value!r} would not be resolved; set it in the app's config instead")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _refuse_interpolation(key, word)
        _refuse_interpolation(item, word)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."
