"""Body surface area (m2) from height (cm) and weight (kg), by the published formulas.

>>> round(mosteller(177.8, 72.6), 3)
1.893
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = [
    "FORMULAS",
    "body_surface_area",
    "boyd",
    "dubois",
    "gehan_george",
    "haycock",
    "mosteller",
]


def mosteller(height_cm: float, weight_kg: float) -> float:
    """Mosteller (1987): sqrt(H x W / 3600)."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def dubois(height_cm: float, weight_kg: float) -> float:
    """DuBois & DuBois (1916): 0.007184 x H^0.725 x W^0.425."""
    return float(0.007184 * height_cm**0.725 * weight_kg**0.425)


def haycock(height_cm: float, weight_kg: float) -> float:
    """Haycock (1978): 0.024265 x H^0.3964 x W^0.5378."""
    return float(0.024265 * height_cm**0.3964 * weight_kg**0.5378)


def gehan_george(height_cm: float, weight_kg: float) -> float:
    """Gehan & George (1970): 0.0235 x H^0.42246 x W^0.51456."""
    return float(0.0235 * height_cm**0.42246 * weight_kg**0.51456)


def boyd(height_cm: float, weight_kg: float) -> float:
    """Boyd (1935), weight in grams: 0.0003207 x H^0.3 x Wg^(0.7285 - 0.0188 x log10 Wg)."""
    grams = weight_kg * 1000.0
    return float(0.0003207 * height_cm**0.3 * grams ** (0.7285 - 0.0188 * math.log10(grams)))


FORMULAS: dict[str, Callable[[float, float], float]] = {
    "mosteller": mosteller,
    "dubois": dubois,
    "haycock": haycock,
    "gehan-george": gehan_george,
    "boyd": boyd,
}


def body_surface_area(height_cm: float, weight_kg: float, formula: str = "mosteller") -> float:
    """BSA in m2 by the named formula (one of FORMULAS); raises KeyError for an unknown name."""
    return FORMULAS[formula](height_cm, weight_kg)
