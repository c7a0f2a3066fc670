"""Words of the messages, notes and terminal lines that the layers write: a count with its noun
(standard library only)."""

from __future__ import annotations


def counted(n: object, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun: ``counted(1, "spectrum", "spectra")`` is "1 spectrum", with 2 it is
    "2 spectra"; ``plural`` defaults to ``noun + "s"`` ("3 steps")."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
