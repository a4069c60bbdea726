"""Unit handling at the boundaries (parameter files, scenarios, public API).

One pint registry for the whole package. Inside the engine every quantity is a
plain float in the model's internal units: mg, L, h, kg, ng/mL, nM.
"""

from __future__ import annotations

from functools import lru_cache

import pint

from .errors import InputError


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    ureg = pint.UnitRegistry()
    ureg.define("fraction = [] = frac")
    ureg.define("percent_ = 0.01 = pct")
    return ureg


def convert(value: float, unit: str, target: str, *, field: str) -> float:
    """Convert ``value`` in ``unit`` to ``target``; raise InputError naming ``field``."""
    ureg = registry()
    try:
        quantity = ureg.Quantity(float(value), _parse(unit, field))
        return float(quantity.to(_parse(target, field)).magnitude)
    except pint.DimensionalityError:
        raise InputError(field, unit, f"a unit convertible to {target!r}") from None


def _parse(unit: str, field: str) -> pint.Unit:
    try:
        return registry().Unit(unit)
    except Exception:
        raise InputError(field, unit, "a unit pint understands, e.g. 'L/h', 'mg', 'ng/mL'") from None
