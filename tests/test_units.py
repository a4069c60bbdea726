"""Unit conversion at the boundaries (`ecsim.units.convert`): cached, yet every call gives the bits
an uncached pint conversion gives, and bad units are one-line InputErrors naming the field."""

import math

import pytest

from ecsim.errors import InputError
from ecsim.units import convert, registry


@pytest.mark.parametrize("value, unit, target", [(0.0, "mg", "g"), (-0.0, "mg", "g"), (0.0, "mg", "g"),
                                                 (80.0, "L/h", "mL/min"), (-0.0, "degC", "K"), (2.5, "h", "d")])
def test_cached_conversions_are_the_bits_of_pint(value, unit, target):
    # each case runs after the others have filled the cache: 0.0 after -0.0 must stay +0.0
    ureg = registry()
    expected = float(ureg.Quantity(value, ureg.Unit(unit)).to(ureg.Unit(target)).magnitude)
    got = convert(value, unit, target, field="f")
    assert got == expected and math.copysign(1.0, got) == math.copysign(1.0, expected)


@pytest.mark.parametrize("unit, target, shown", [("mg", "L", "'mg'; allowed: a unit convertible to 'L'"),
                                                 ("furlongz", "mg", "'furlongz'; allowed: a unit pint understands"),
                                                 (None, "mg", "None; allowed: a unit pint understands")])
def test_bad_units_name_the_field(unit, target, shown):
    with pytest.raises(InputError, match="^dose.unit: got " + shown.replace("(", r"\(")):
        convert(1.0, unit, target, field="dose.unit")
