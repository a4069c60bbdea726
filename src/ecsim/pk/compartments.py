"""Building blocks shared by the drug submodels: allometric scaling, absorption, disposition.

All amounts are in µmol, volumes in L, clearances in L/h, time in h. Allometric exponents 0.75
(clearance) and 1 (volume) at a 70 kg reference are the standard assumption (Anderson & Holford
2008, doi:10.1146/annurev.pharmtox.48.113006.094708).
"""

from __future__ import annotations

import sympy as sp

from ..model.declaration import symbols

WEIGHT, = symbols("body_weight_kg")


def scaled_clearance(cl: sp.Expr) -> sp.Expr:
    """Clearance scaled from 70 kg with exponent 0.75 (L/h)."""
    return cl * (WEIGHT / 70) ** sp.Rational(3, 4)


def scaled_volume(v: sp.Expr) -> sp.Expr:
    """Volume scaled linearly with body weight from 70 kg (L)."""
    return v * (WEIGHT / 70)


def transit_absorption(gut: sp.Symbol, transits: tuple[sp.Symbol, ...], ktr: sp.Expr
                       ) -> tuple[dict, sp.Expr]:
    """Gut depot -> chain of transit compartments (same rate) -> systemic input.

    Returns (rates, input flux). A chain delays and sharpens the absorption peak like the transit
    model of Savic et al. 2007 (doi:10.1007/s10928-007-9066-0) with a fixed number of steps.
    """
    chain = (gut, *transits)
    rates = {str(chain[0]): -ktr * chain[0]}
    for before, here in zip(chain, chain[1:]):
        rates[str(here)] = ktr * before - ktr * here
    return rates, ktr * chain[-1]


def disposition(central, periph, deep, cl, v1, q2, v2, q3=None, v3=None) -> dict[str, sp.Expr]:
    """Mammillary 2- or 3-compartment distribution with elimination ``cl`` from the central one.

    Returns the distribution and elimination parts of the rates (inputs added by the caller).
    """
    c1 = central / v1
    rates = {str(central): -cl * c1 - q2 * (c1 - periph / v2), str(periph): q2 * (c1 - periph / v2)}
    if deep is not None:
        rates[str(central)] += -q3 * (c1 - deep / v3)
        rates[str(deep)] = q3 * (c1 - deep / v3)
    return rates
