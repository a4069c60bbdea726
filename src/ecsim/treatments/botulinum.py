"""Botulinum toxin at the muscle (layer L5): a loss of strength in the injected channels.

The fraction of activation blocked after one injection of D units on day t0 is

    b(t) = Emax x D / (D + ED50) x eta x g((t - t0) / t_peak),  g(x) = x^k exp(k (1 - x)),

so it is zero at injection, peaks (g = 1) at ``t_peak`` (about 4 weeks) and wanes over about 12
weeks; cycles add and are capped at Emax. Doses are converted to abobotulinumtoxinA (Dysport) units
with the 3:1 Dysport:Botox ratio of Odergren 1998 (incobotulinumtoxinA counted like Botox).
``eta`` is the patient's lognormal responsiveness. The agonist channel of the injected region
(the muscles that pull the posture) takes the full effect, its antagonist a share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..circuit.regions import N_CHANNELS, agonist, antagonist
from ..population import lognormal_factor
from ..registry import Registry


@dataclass(frozen=True)
class BotulinumModel:
    emax: float
    ed50_dysport_units: float
    dysport_per_botox_unit: float
    peak_day: float
    shape: float
    antagonist_share: float
    cv: float

    @classmethod
    def from_registry(cls, registry: Registry) -> "BotulinumModel":
        v = lambda n, u="dimensionless": registry.value(n, u)   # noqa: E731
        return cls(v("bont_emax"), v("bont_ed50_dysport_units"), v("bont_dysport_per_botox_unit"),
                   v("bont_time_peak", "d"), v("bont_time_shape"), v("bont_antagonist_share"), v("bont_bsv_cv"))

    def dysport_units(self, product: str, units: float) -> float:
        return units if product == "abobotulinumtoxinA" else units * self.dysport_per_botox_unit

    def time_course(self, days_since: np.ndarray) -> np.ndarray:
        x = np.maximum(days_since, 0.0) / self.peak_day
        return np.where(days_since > 0, x ** self.shape * np.exp(self.shape * (1.0 - x)), 0.0)


def botulinum_strength(bm: BotulinumModel, course, day: float, z: np.ndarray) -> np.ndarray:
    """Strength factor (patients x channels) on ``day`` for an arm's injection course (or None)."""
    strength = np.ones((len(z), N_CHANNELS))
    if course is None:
        return strength
    d = bm.dysport_units(course.product, course.units)
    peak = bm.emax * d / (d + bm.ed50_dysport_units)
    eta = lognormal_factor(z, bm.cv)
    injections = np.arange(course.first_day, day + 1e-9, course.every_days)
    blocked = np.minimum(peak * eta * bm.time_course(day - injections).sum(), bm.emax)
    strength[:, agonist(course.region)] -= blocked
    strength[:, antagonist(course.region)] -= bm.antagonist_share * blocked
    return np.clip(strength, 0.0, 1.0)
