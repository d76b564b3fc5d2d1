"""Kidney function: creatinine clearance by Cockcroft-Gault.

>>> round(cockcroft_gault(age_years=60, weight_kg=70, serum_creatinine_mg_dl=1.0, female=True), 1)
66.1
"""

from __future__ import annotations

__all__ = ["cockcroft_gault"]


def cockcroft_gault(
    *, age_years: float, weight_kg: float, serum_creatinine_mg_dl: float, female: bool
) -> float:
    """Estimated creatinine clearance in mL/min: (140 - age) x weight / (72 x SCr), x 0.85 for
    women (Cockcroft and Gault, 1976), with the actual body weight."""
    clearance = (140 - age_years) * weight_kg / (72 * serum_creatinine_mg_dl)
    return clearance * 0.85 if female else clearance
