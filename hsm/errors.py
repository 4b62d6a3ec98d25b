"""Errors that cross the command boundary, each carrying its exit code."""

from __future__ import annotations


class HsmError(Exception):
    """An operational failure: the command could not do its work (exit 1)."""

    exit_code = 1


class BadInput(HsmError):
    """Bad input or usage: a malformed file, an unknown name, a bad option (exit 2).

    The message is one line that names what is wrong and where.
    """

    exit_code = 2


class SourceError(HsmError):
    """A compute source did not answer or refused a call (exit 1)."""
