"""Placebo (expectation) response: rated and reported severity falls by P(t), not the circuit.

P(t) = Pmax x eta x (1 - exp(-t / tau)) from the start of a trial, eta lognormal per patient. It
applies to every arm of a trial run with ``trial.placebo_response`` (active arms expect too).
Pmax is fitted to the placebo arm of Truong 2005; the time constant follows Counsell 2016 (both
arms improved mostly within 4 weeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..population import lognormal_factor
from ..registry import Registry


@dataclass(frozen=True)
class PlaceboModel:
    max_fraction: float
    tau_days: float
    cv: float

    @classmethod
    def from_registry(cls, registry: Registry) -> "PlaceboModel":
        return cls(registry.value("placebo_max_fraction", "dimensionless"), registry.value("placebo_time", "d"),
                   registry.value("placebo_bsv_cv", "dimensionless"))


def placebo_fraction(pm: PlaceboModel, day: float, z: np.ndarray) -> np.ndarray:
    """Fractional fall of rated severity on ``day`` (patients), in [0, 0.9]."""
    eta = lognormal_factor(z, pm.cv)
    return np.clip(pm.max_fraction * eta * (1.0 - np.exp(-day / pm.tau_days)), 0.0, 0.9)
