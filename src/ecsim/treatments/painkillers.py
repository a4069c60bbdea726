"""Painkillers (layer L6): they lower the pain items only, never the motor signs; opioids lose
their effect to tolerance and carry a risk of misuse and addiction.

Relative pain relief of a patient on day t of a course started on ``from_day``::

    r(t) = (R_c / B) x 2 D / (D + D_ref) x eta x T(t)

R_c is the class's pain reduction over placebo from a meta-analysis, as a fraction of the pain
scale (opioids: Busse 2018, -0.69 of 10; paracetamol: Machado 2015, -3.7 of 100; NSAIDs: Enthoven
2016, -3.3 of 100). B is the trials' mean baseline pain (0.65 of the scale, an assumption), so
R_c / B is the relative reduction in those trials. D is the daily dose (opioids in oral morphine
milligram equivalents, tramadol x 0.2, CDC 2022), D_ref the dose at which the meta-analytic
effect applies: the dose-response is hyperbolic with D_ref as its half-maximal dose, so that
r = R_c / B at D = D_ref (an assumption). eta is lognormal per patient with mean 1 (the
meta-analyses report mean differences).

Conversion onto the TWSTRS pain subscale (0-20: severity 0-10, duration 0-5, disability 0-5): the
model's pain index (0-1, x 20 gives the subscale) is multiplied by (1 - r): the severity item is a
0-10 pain rating like the trials' scales, and duration and pain-related disability are taken to
fall in proportion (declared assumption). A patient with the trials' baseline pain therefore
loses R_c x 20 points (opioid: 1.4 of 20 at the trials' follow-up). The article's 'pain' symptom
is scaled the same way; nothing else is.

Opioid tolerance at a fixed dose, a first-order state from the first day on treatment::

    T(t) = (1 - Tmax (1 - exp(-t / tau))) / (1 - Tmax (1 - exp(-t_f / tau)))

normalised so that T = 1 at the trials' typical follow-up t_f (60 days), where Busse's pooled
effect was read; tau = 90 d and Tmax = 0.7 are assumptions (Krebs 2018 shaped Tmax).

Misuse and addiction (opioid use disorder) over a course of d days on an opioid::

    P = p x (1 - exp(-d / tau_risk))

p from Vowles 2015 (misuse 21-29 %, addiction 8-12 %; midpoints 0.25 and 0.10), tau_risk = 90 d
(assumption: Vowles's rates are for chronic therapy). Non-opioids carry no such risk here.
Parameters: registry/parameters/treatments.yaml (``painkiller_*``, ``opioid_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..population import lognormal_factor
from ..registry import Registry, default_registry

DRUGS = {"paracetamol": "paracetamol", "ibuprofen": "nsaid", "tramadol": "opioid", "morphine": "opioid"}
"""Drug -> class whose meta-analytic effect it takes."""
MAX_MG_PER_DAY = {"paracetamol": 4000.0, "ibuprofen": 3200.0, "tramadol": 400.0, "morphine": 300.0}
"""Largest daily doses a scenario may give: the labelled maxima of paracetamol (4 g), prescription
ibuprofen (3.2 g) and tramadol (400 mg); oral morphine 300 mg/day, over three times the CDC's
90 MME/day threshold."""
OPIOID_EVENTS = ("opioid_misuse", "opioid_use_disorder")
"""Event keys returned by `painkiller_adverse_effects` (same shape as `adverse.adverse_effects`)."""


@dataclass(frozen=True)
class PainkillerModel:
    relief: dict[str, float]          # class -> reduction over placebo, fraction of the pain scale
    ref_dose: dict[str, float]        # class (ibuprofen for nsaid) -> mg/day (opioid: MME/day)
    baseline_pain: float
    mme_tramadol: float
    cv: float
    tolerance_days: float
    tolerance_max: float
    followup_days: float
    misuse: float
    addiction: float
    risk_days: float

    @classmethod
    def from_registry(cls, registry: Registry) -> "PainkillerModel":
        v = lambda n, u="dimensionless": registry.value(n, u)   # noqa: E731
        return cls({"opioid": v("painkiller_relief_opioid"), "paracetamol": v("painkiller_relief_paracetamol"),
                    "nsaid": v("painkiller_relief_nsaid")},
                   {"opioid": v("painkiller_ref_dose_opioid", "mg/d"),
                    "paracetamol": v("painkiller_ref_dose_paracetamol", "mg/d"),
                    "nsaid": v("painkiller_ref_dose_ibuprofen", "mg/d")},
                   v("painkiller_trial_baseline_pain"), v("painkiller_mme_tramadol"), v("painkiller_bsv_cv"),
                   v("opioid_tolerance_time", "d"), v("opioid_tolerance_max"), v("opioid_trial_followup", "d"),
                   v("opioid_misuse_risk"), v("opioid_addiction_risk"), v("opioid_risk_time", "d"))

    def dose(self, drug: str, mg_per_day: float) -> float:
        """Daily dose in the class's reference units (opioids: oral morphine milligram equivalents)."""
        return mg_per_day * (self.mme_tramadol if drug == "tramadol" else 1.0)

    def tolerance(self, days_on: np.ndarray | float) -> np.ndarray:
        """Fraction of the opioid effect left after ``days_on`` days at a fixed dose, relative to
        the effect at the trials' follow-up (1 there; above 1 earlier, below 1 later)."""
        left = lambda t: 1.0 - self.tolerance_max * (1.0 - np.exp(-np.maximum(t, 0.0) / self.tolerance_days))  # noqa: E731
        return left(np.asarray(days_on, dtype=float)) / left(self.followup_days)


def relief_fraction(pm: PainkillerModel, painkiller, day: float, z: np.ndarray) -> np.ndarray:
    """Fraction of each patient's pain index that the painkiller removes on ``day`` (0 before
    ``from_day`` or without one), in [0, 0.9]."""
    z = np.asarray(z, dtype=float)
    if painkiller is None or day <= painkiller.from_day:
        return np.zeros(len(z))
    cls = DRUGS[painkiller.drug]
    d = pm.dose(painkiller.drug, painkiller.mg_per_day)
    r = pm.relief[cls] / pm.baseline_pain * 2.0 * d / (d + pm.ref_dose[cls])
    if cls == "opioid":
        r = r * pm.tolerance(day - painkiller.from_day)
    eta = lognormal_factor(z, pm.cv) / np.sqrt(1.0 + pm.cv * pm.cv)   # mean 1: the meta-analyses give means
    return np.clip(r * eta, 0.0, 0.9)


def opioid_days(painkiller, duration_days: float) -> float:
    """Days on an opioid over a course of ``duration_days`` (0 for no painkiller or a non-opioid)."""
    if painkiller is None or DRUGS[painkiller.drug] != "opioid":
        return 0.0
    return max(0.0, float(duration_days) - float(painkiller.from_day))


def painkiller_adverse_effects(painkiller, duration_days: float, n: int,
                               registry: Registry | None = None) -> dict[str, np.ndarray]:
    """Per patient, the probability of each event of `OPIOID_EVENTS` over the course, each in [0, 1]
    (the shape `ecsim.treatments.adverse.adverse_effects` returns).

    ``painkiller``: the arm's ``painkiller`` block (``drug``, ``mg_per_day``, ``from_day``) or None;
    ``duration_days``: the course's length; ``n``: patients. Without an opioid every risk is 0
    (no background rate: the excess over a control arm is the risk itself).
    """
    pm = PainkillerModel.from_registry(registry or default_registry())
    grow = 1.0 - np.exp(-opioid_days(painkiller, duration_days) / pm.risk_days)
    return {"opioid_misuse": np.full(n, pm.misuse * grow), "opioid_use_disorder": np.full(n, pm.addiction * grow)}
