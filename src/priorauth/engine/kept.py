"""Results kept by their inputs, in bounded tables.

The engine keeps immutable parts of a determination that depend on a few recurring values: a
diagnosis list, a dose and schedule, the inputs of a group of safety screens. Each table holds
at most LIMIT entries; past that, results are computed and not kept, so a stream of novel inputs
costs a little memory at most. Callers look up inline with `table.get(key)` (no closure is
built per request) and store what they computed with `remember`.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["LIMIT", "remember"]

LIMIT = 4096

K = TypeVar("K")
V = TypeVar("V")


def remember(table: dict[K, V], key: K, value: V) -> V:
    """Keep `value` by `key` while the table has room, and return it."""
    if len(table) < LIMIT:
        table[key] = value
    return value
