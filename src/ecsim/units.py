"""Unit handling at the boundaries (parameter files, scenarios, public API).

One pint registry for the whole package. Inside the engine every quantity is a
plain float in the model's internal units: mg, L, h, kg, ng/mL, nM.
"""

from __future__ import annotations

import math
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
    for name in (unit, target):   # a unit pint cannot read is an error naming the field
        _parse(name, field)
    value = float(value)
    try:
        return _converted(value, unit, target, math.copysign(1.0, value))
    except pint.DimensionalityError:
        raise InputError(field, unit, f"a unit convertible to {target!r}") from None


@lru_cache(maxsize=65536)
def _converted(value: float, unit: str, target: str, sign: float) -> float:
    """Cached: the same registry values are converted thousands of times per run (the claims
    checker rebuilds its models for every parameter draw), and pint takes about 0.1 ms each time.
    ``sign`` is part of the key because 0.0 and -0.0 are equal keys but convert to different bits."""
    ureg = registry()
    return float(ureg.Quantity(value, _unit(unit)).to(_unit(target)).magnitude)


def _parse(unit: str, field: str) -> pint.Unit:
    try:
        return _unit(unit)
    except Exception:
        raise InputError(field, unit, "a unit pint understands, e.g. 'L/h', 'mg', 'ng/mL'") from None


@lru_cache(maxsize=4096)
def _unit(unit: str) -> pint.Unit:
    return registry().Unit(unit)
