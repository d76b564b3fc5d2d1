"""The records a determination is made of: frozen, slotted dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

__all__ = ["record"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen, slotted dataclass."""
    return dataclass(frozen=True, slots=True)(cls)
