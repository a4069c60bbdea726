"""Layer L0: products, routes, food and the bolus each dose becomes.

A dose of a product delivers CBD (and THC for broad- and full-spectrum products); what reaches the
body depends on the route, the meal, the formulation and, for consumer products, how far the real
content departs from the label (Bonn-Miller 2017). Oral CBD bioavailability falls with the size of
the single dose, F = Fmax / (1 + dose / D50), fitted to Taylor 2018.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from .engine import Bolus


class Route(str, Enum):
    oral = "oral"
    oromucosal = "oromucosal"
    inhaled = "inhaled"
    intravenous = "intravenous"


class Food(str, Enum):
    fasted = "fasted"
    low_fat = "low_fat"
    high_fat = "high_fat"
    whole_milk = "whole_milk"
    alcohol = "alcohol"


class Formulation(str, Enum):
    oil = "oil"
    sedds = "sedds"


class Product(str, Enum):
    """``pharmaceutical`` is an exactly labelled isolate (Epidiolex-like); the others are consumer oils."""

    pharmaceutical = "pharmaceutical"
    isolate = "isolate"
    broad_spectrum = "broad_spectrum"
    full_spectrum = "full_spectrum"


def cbd_food_factor(p: dict, food: Food) -> float | np.ndarray:
    """Multiplier on oral CBD bioavailability for a meal (1 when fasted)."""
    return 1.0 if food is Food.fasted else p[f"cbd_food_factor_{food.value}"]


def cbd_oral_fraction(p: dict, mg: np.ndarray, food: Food, formulation: Formulation) -> np.ndarray:
    """Typical oral CBD bioavailability for single doses of ``mg`` (before between-subject spread)."""
    f = p["cbd_f_oral_max"] / (1 + mg / p["cbd_f_oral_d50_mg"]) * cbd_food_factor(p, food)
    return f * (p["cbd_sedds_f_factor"] if formulation is Formulation.sedds else 1.0)


def cbd_boluses(p: dict, time_h: float, mg: np.ndarray, route: Route, food: Food,
                formulation: Formulation) -> list[Bolus]:
    """The CBD (µmol) entering the model for one dose, per patient: one bolus, or two for an
    oromucosal dose (the part absorbed through the mucosa, and the swallowed rest as an oral dose)."""
    if route is Route.oromucosal:
        mucosal, swallowed = oromucosal_split(p, mg)
        return [Bolus(time_h, "cbd_mucosa", _umol(mucosal, p["cbd_mw"])),
                *cbd_boluses(p, time_h, swallowed, Route.oral, food, formulation)]
    if route is Route.oral:
        fraction, state = cbd_oral_fraction(p, mg, food, formulation) * p["cbd_f_oral_eta"], "cbd_gut"
    elif route is Route.inhaled:
        fraction, state = p["cbd_f_inhaled"], "cbd_central"
    else:
        fraction, state = 1.0, "cbd_central"
    return [Bolus(time_h, state, _umol(mg * np.minimum(fraction, 1.0), p["cbd_mw"]))]


def thc_boluses(p: dict, time_h: float, mg: np.ndarray, route: Route, food: Food) -> list[Bolus]:
    """The THC (µmol) entering the model for one dose; oral doses (and the swallowed part of an
    oromucosal one) enter the gut before first pass."""
    if route is Route.oromucosal:
        mucosal, swallowed = oromucosal_split(p, mg)
        return [Bolus(time_h, "thc_mucosa", _umol(mucosal, p["thc_mw"])),
                *thc_boluses(p, time_h, swallowed, Route.oral, food)]
    if route is Route.oral:
        fraction, state = thc_absorbed_fraction(p, food), "thc_gut"
    elif route is Route.inhaled:
        fraction, state = p["thc_f_inhaled"], "thc_central"
    else:
        fraction, state = 1.0, "thc_central"
    return [Bolus(time_h, state, _umol(mg * np.minimum(fraction, 1.0), p["thc_mw"]))]


THC_SYSTEMIC_PARAMETERS = ("thc_f_oral", "thc_fh_oral", "thc_food_factor", "thc_f_inhaled",
                           "oromucosal_fraction_mucosal")
"""What `thc_systemic_fraction` reads: the parameters that make a route's or meal's THC dose
stronger or weaker than a fasted oral one."""


def thc_systemic_fraction(p: dict, route: Route, food: Food) -> float | np.ndarray:
    """Fraction of a THC dose that reaches the circulation unchanged by this route and meal: the
    boluses of `thc_boluses`, with an oral dose's first pass (fh) applied."""
    if route is Route.oromucosal:
        m = p["oromucosal_fraction_mucosal"]
        return m + (1 - m) * thc_systemic_fraction(p, Route.oral, food)
    if route is Route.oral:
        return p["thc_fh_oral"] * thc_absorbed_fraction(p, food)
    if route is Route.inhaled:
        return p["thc_f_inhaled"]
    return 1.0


def thc_absorbed_fraction(p: dict, food: Food) -> float | np.ndarray:
    """Fraction of an oral THC dose absorbed into the portal blood (before first pass): F × meal
    factor / fh, at most the whole dose."""
    fed = 1.0 if food is Food.fasted else p["thc_food_factor"]
    return np.minimum(p["thc_f_oral"] * fed / p["thc_fh_oral"], 1.0)


def thc_oral_equivalent(p: dict, route: Route, food: Food) -> float | np.ndarray:
    """mg of THC taken orally and fasted that give the same systemic THC (AUC) as 1 mg by this
    route and meal: 1 for a fasted oral dose, 2.4 with a meal (Oh 2017), 1.8 inhaled (18 % against
    10 %, Ohlsson 1980 and Wall 1983). Dose thresholds from oral studies (the 2.5 mg LOAEL) apply
    to doses converted by it."""
    return thc_systemic_fraction(p, route, food) / thc_systemic_fraction(p, Route.oral, Food.fasted)


def oromucosal_split(p: dict, mg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An oromucosal dose (mg) as the part absorbed through the mucosa and the part swallowed.

    Most of a spray or of sublingual drops is swallowed: oral and oromucosal exposure per mg are
    alike (Karschner 2011 for THC; Johnson 2024 for CBD oil), so the mucosal part is small
    (registry: oromucosal_fraction_mucosal)."""
    m = p["oromucosal_fraction_mucosal"]
    return mg * m, mg * (1 - m)


def clobazam_bolus(p: dict, time_h: float, mg: np.ndarray) -> Bolus:
    """Oral clobazam: apparent clearance and volume already include F, so the whole dose enters."""
    return Bolus(time_h, "clb_gut", _umol(mg, p["clb_mw"]))


def absorption_rate_factors(p: dict, food: Food, formulation: Formulation) -> dict[str, float]:
    """Covariates that scale the oral absorption rates for a meal or formulation."""
    cbd = (1.0 if food is Food.fasted else p["cbd_fed_rate_factor"]) * (
        p["cbd_sedds_rate_factor"] if formulation is Formulation.sedds else 1.0)
    thc = 1.0 if food is Food.fasted else p["thc_fed_rate_factor"]
    return {"cbd_absorption_rate_factor": cbd, "thc_absorption_rate_factor": thc}


def thc_to_cbd(p: dict, product: Product) -> float | np.ndarray:
    """THC per mg of CBD delivered by a product (per patient where products vary)."""
    if product is Product.full_spectrum:
        return p["full_spectrum_thc_to_cbd"]
    if product is Product.broad_spectrum:
        return p["broad_spectrum_thc_to_cbd"]
    return 0.0


def _umol(mg: np.ndarray, mw: float | np.ndarray) -> np.ndarray:
    return np.asarray(mg, dtype=float) / mw * 1000.0
