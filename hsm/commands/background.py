"""Calls that run beside `hsm run`'s loop, so one silent source never holds up the others.

One call per key at a time (a source's poll, the health round, the upkeep); the loop
starts what is not running yet and picks up what has finished. Daemon threads: a Ctrl-C
of the driver does not wait for a call to a frozen host to time out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterable
from typing import Any, Callable


class _Call:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self.result = fn(*args)
        except BaseException as exc:  # handed to the loop, which raises it there
            self.error = exc
        finally:
            self.done.set()


class Background:
    """Keyed calls in daemon threads, at most one per key."""

    def __init__(self) -> None:
        self.calls: dict[Hashable, _Call] = {}

    def busy(self, key: Hashable) -> bool:
        return key in self.calls

    def start(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> bool:
        """Start `fn(*args)` under `key` unless a call of that key still runs; True when started."""
        if key in self.calls:
            return False
        call = _Call(fn, args)
        self.calls[key] = call
        call.thread.start()
        return True

    def wait(self, keys: Iterable[Hashable], timeout: float) -> None:
        """Wait until the calls of `keys` have finished, or `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        for key in keys:
            call = self.calls.get(key)
            if call is not None:
                call.done.wait(max(0.0, deadline - time.monotonic()))

    def finished(self, prefix: str | None = None) -> dict[Hashable, Any]:
        """Results of the calls that have finished (of keys `(prefix, ...)` when given); raises a call's error."""
        out = {}
        for key, call in list(self.calls.items()):
            if prefix is not None and not (isinstance(key, tuple) and key[0] == prefix):
                continue
            if call.done.is_set():
                del self.calls[key]
                if call.error is not None:
                    raise call.error
                out[key] = call.result
        return out
