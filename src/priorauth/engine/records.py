"""Frozen, slotted dataclasses that are quick to build: the records a determination is made of.

The engine builds thousands of them a second. A frozen dataclass sets each field through
object.__setattr__, which checks for frozenness each time; the __init__ made here calls each
slot's own setter instead, which skips that check once, at construction, and is about twice as
fast. Assignment after construction still raises FrozenInstanceError.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar, dataclass_transform

__all__ = ["record"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen, slotted dataclass with the quick __init__ (defaults allowed)."""
    built = dataclass(frozen=True, slots=True)(cls)
    declared = fields(built)  # type: ignore[arg-type]
    names = [f.name for f in declared]
    params = [f.name if f.default is MISSING else f"{f.name}=_default_{f.name}" for f in declared]
    namespace: dict[str, Any] = {f"_set_{name}": built.__dict__[name].__set__ for name in names}
    namespace.update(
        {f"_default_{f.name}": f.default for f in declared if f.default is not MISSING}
    )
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    source = f"def __init__(self, {', '.join(params)}):\n{body}"
    exec(source, namespace)  # the same technique dataclasses itself uses to build __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{built.__qualname__}.__init__"
    built.__init__ = init  # type: ignore[method-assign]
    return built
