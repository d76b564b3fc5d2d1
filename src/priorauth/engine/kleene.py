"""Three-valued (Kleene) logic: True, False and None for unknown.

Unknown is not false: `all_of([True, None])` is unknown, `all_of([False, None])` is false,
`any_of([True, None])` is true.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Truth", "all_of", "any_of", "at_least", "not_", "status"]

Truth = bool | None


def all_of(values: Iterable[Truth]) -> Truth:
    """Kleene AND: false if any is false, else unknown if any is unknown, else true."""
    unknown = False
    for value in values:
        if value is False:
            return False
        if value is None:
            unknown = True
    return None if unknown else True


def any_of(values: Iterable[Truth]) -> Truth:
    """Kleene OR: true if any is true, else unknown if any is unknown, else false."""
    unknown = False
    for value in values:
        if value is True:
            return True
        if value is None:
            unknown = True
    return None if unknown else False


def at_least(n: int, values: Iterable[Truth]) -> Truth:
    """At least n of the values: true once n are true, false once too few could still be.

    >>> at_least(2, [True, None, False])
    """
    values = list(values)
    true = sum(1 for v in values if v is True)
    possible = true + sum(1 for v in values if v is None)
    if true >= n:
        return True
    return False if possible < n else None


def not_(value: Truth) -> Truth:
    """Kleene NOT: unknown stays unknown."""
    return None if value is None else not value


def status(value: Truth) -> str:
    """The contract's word for a truth value: met, not-met or unknown."""
    return "unknown" if value is None else ("met" if value else "not-met")
