"""Oral GABAergic agents for dystonia: clonazepam and baclofen (layers L4-L5), with their adverse
effects (sedation, weakness, benzodiazepine dependence, baclofen withdrawal).

The evidence is weak: no randomised trial of either drug in dystonia was found; what there is are
retrospective responder rates from single centres (Greene & Fahn 1992; Woo 2020; Greene 1992's
review). Each drug therefore has one efficacy parameter, fitted to one responder rate, with wide
uncertainty; everything else is an assumption, and the fit is checked against responder rates
that were not used for it (docs/treatments.md).

Clonazepam (GABA-A positive allosteric modulator): a modest, body-wide reduction of the
pathological drive that reaches the muscles -- involuntary drive and lost surround inhibition,
the quantities GPi stimulation also acts on -- downstream of the basal-ganglia circuit::

    c(t) = C_max x D / (D + ED50_c) x eta_c x (1 - exp(-t ln 2 / t_half))

D in mg/day; eta_c lognormal per patient (median 1, CV 1: few respond, some well); the last factor
is accumulation to steady state at the label's elimination half-life (30-40 h). The drive passes
at (1 - c), multiplied with the stimulation's transmission.

Baclofen (GABA-B agonist): presynaptic inhibition in the spinal cord lowers the segmental (reflex)
amplification of the pathological drive (L5), so the same drive passes at (1 - b)::

    b = B_max x D / (D + ED50_b) x eta_b

(half-life 3-4 h: at steady state within a day). A pure gain reduction of every muscle (voluntary
activation included, through the strength factor botulinum toxin uses) was tried first: it leaves
co-contraction, a ratio, untouched and needed a 57 % loss of the median patient's strength to
reach Greene & Fahn's responder rate, against the label's 5-15 % weakness, so it was dropped.
Clonazepam and baclofen therefore meet at the same read-out and differ in site, dose, time course
and adverse effects; their factors multiply.

Adverse effects over a course of d days (`oral_agent_adverse_effects`), per patient::

    sedation            1 - (1 - s_c)(1 - s_b), s = min(0.95, p_ref x 2 D / (D + D_ref))
    muscle_weakness     baclofen: w x 2 D / (D + D_ref,b)
    benzodiazepine_dependence   clonazepam: p_dep x (1 - exp(-d_on / tau_dep))
    baclofen_withdrawal_on_abrupt_stop   baclofen: p_wd x (1 - exp(-d_on / tau_wd))

Parameters: registry/parameters/treatments.yaml (``clonazepam_*``, ``baclofen_*``,
``benzodiazepine_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..population import lognormal_factor
from ..registry import Registry, default_registry

AGENTS = ("clonazepam", "baclofen")
MAX_MG_PER_DAY = {"clonazepam": 20.0, "baclofen": 180.0}
"""Largest daily doses a scenario may give: clonazepam's labelled maximum in seizure disorders
(20 mg/day); baclofen 180 mg/day, the top of the doses used in children with dystonia (Greene
1992), above the label's 80 mg/day."""
ORAL_AGENT_EVENTS = ("sedation", "muscle_weakness", "benzodiazepine_dependence",
                     "baclofen_withdrawal_on_abrupt_stop")
"""Event keys returned by `oral_agent_adverse_effects` (same shape as `adverse.adverse_effects`)."""
MAX_FRACTION = 0.9


@dataclass(frozen=True)
class OralAgentModel:
    clz_max: float
    clz_ed50: float
    clz_half_life_h: float
    clz_cv: float
    bac_max: float
    bac_ed50: float
    bac_cv: float
    clz_sedation: float
    clz_sedation_dose: float
    bac_sedation: float
    bac_sedation_dose: float
    bac_weakness: float
    dependence: float
    dependence_days: float
    bac_withdrawal: float
    bac_withdrawal_days: float

    @classmethod
    def from_registry(cls, registry: Registry) -> "OralAgentModel":
        v = lambda n, u="dimensionless": registry.value(n, u)   # noqa: E731
        return cls(v("clonazepam_max_drive_reduction"), v("clonazepam_ed50", "mg/d"),
                   v("clonazepam_half_life", "h"), v("clonazepam_bsv_cv"),
                   v("baclofen_max_gain_reduction"), v("baclofen_ed50", "mg/d"), v("baclofen_bsv_cv"),
                   v("clonazepam_sedation_risk"), v("clonazepam_sedation_dose", "mg/d"),
                   v("baclofen_sedation_excess"), v("baclofen_sedation_dose", "mg/d"), v("baclofen_weakness_risk"),
                   v("benzodiazepine_dependence_risk"), v("benzodiazepine_dependence_time", "d"),
                   v("baclofen_withdrawal_risk"), v("baclofen_withdrawal_time", "d"))


def _eta(z: np.ndarray, cv: float) -> np.ndarray:
    return lognormal_factor(np.asarray(z, dtype=float), cv)


def drive_fraction(om: OralAgentModel, mg_per_day: float, day: float, z: np.ndarray) -> np.ndarray:
    """Fraction of the pathological drive that clonazepam removes on ``day`` (0 on day 0 or
    without it), per patient, in [0, 0.9]."""
    z = np.asarray(z, dtype=float)
    if mg_per_day <= 0 or day <= 0:
        return np.zeros(len(z))
    level = 1.0 - np.exp(-day * 24.0 * np.log(2.0) / om.clz_half_life_h)
    c = om.clz_max * mg_per_day / (mg_per_day + om.clz_ed50) * level
    return np.clip(c * _eta(z, om.clz_cv), 0.0, MAX_FRACTION)


def gain_fraction(om: OralAgentModel, mg_per_day: float, day: float, z: np.ndarray) -> np.ndarray:
    """Fraction of the pathological drive that baclofen removes on ``day`` by lowering its
    segmental amplification. Per patient, in [0, 0.9]; 0 on day 0 or without it."""
    z = np.asarray(z, dtype=float)
    if mg_per_day <= 0 or day <= 0:
        return np.zeros(len(z))
    b = om.bac_max * mg_per_day / (mg_per_day + om.bac_ed50)
    return np.clip(b * _eta(z, om.bac_cv), 0.0, MAX_FRACTION)


def _doses(block) -> tuple[float, float]:
    """(clonazepam, baclofen) mg/day from an arm's ``interventions`` block, a mapping or None."""
    if block is None:
        return 0.0, 0.0
    get = block.get if isinstance(block, Mapping) else (lambda k, d: getattr(block, k, d))
    return float(get("clonazepam_mg_per_day", 0.0) or 0.0), float(get("baclofen_mg_per_day", 0.0) or 0.0)


def _dose_risk(p_ref: float, dose: float, ref_dose: float) -> float:
    return 0.0 if dose <= 0 else min(0.95, p_ref * 2.0 * dose / (dose + ref_dose))


def oral_agent_adverse_effects(block, duration_days: float, n: int,
                               registry: Registry | None = None) -> dict[str, np.ndarray]:
    """Per patient, the probability of each event of `ORAL_AGENT_EVENTS` over the course, each in
    [0, 1] (the shape `ecsim.treatments.adverse.adverse_effects` returns).

    ``block``: the arm's ``interventions`` block (or a mapping) with ``clonazepam_mg_per_day`` and
    ``baclofen_mg_per_day``, taken from day 0 for ``duration_days``; None for neither. ``n``:
    patients. Without either drug every risk is 0 (no background rate: the risk is the excess over
    a control arm). Sedation and weakness occur early on treatment (no build-up); dependence and
    the withdrawal syndrome build up with time on the drug. ``baclofen_withdrawal_on_abrupt_stop``
    is the chance of the syndrome if the drug were stopped abruptly at the end of the course.
    """
    om = OralAgentModel.from_registry(registry or default_registry())
    clz, bac = _doses(block)
    days = max(0.0, float(duration_days))
    s_c = _dose_risk(om.clz_sedation, clz, om.clz_sedation_dose)
    s_b = _dose_risk(om.bac_sedation, bac, om.bac_sedation_dose)
    weak = _dose_risk(om.bac_weakness, bac, om.bac_sedation_dose)
    dep = om.dependence * (1.0 - np.exp(-days / om.dependence_days)) if clz > 0 else 0.0
    wd = om.bac_withdrawal * (1.0 - np.exp(-days / om.bac_withdrawal_days)) if bac > 0 else 0.0
    out = {"sedation": 1.0 - (1.0 - s_c) * (1.0 - s_b), "muscle_weakness": weak,
           "benzodiazepine_dependence": dep, "baclofen_withdrawal_on_abrupt_stop": wd}
    return {k: np.full(n, float(np.clip(out[k], 0.0, 1.0))) for k in ORAL_AGENT_EVENTS}


CALIBRATION = {"clonazepam_max_drive_reduction": "WOO20_CLONAZEPAM",
               "baclofen_max_gain_reduction": "GREENE92_BACLOFEN"}
"""Parameter -> the calibration case whose responder rate it is set to (one each)."""


def calibrate(registry: Registry | None = None, tol: float = 0.005) -> dict[str, float]:
    """Bisect each efficacy parameter until its calibration case's simulated responder rate meets
    the observed one (calibration; the other oral-agent cases are validation and never used)."""
    from ..validation.cases import load_cases
    from ..validation.runner import evaluate_case
    registry = registry or default_registry()
    cases = {c.id: c for c in load_cases()}
    out = {}
    for name, case_id in CALIBRATION.items():
        case = cases[case_id]
        target = case.metrics[0].observed.value
        lo, hi = 0.01, 1.0
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            sim = evaluate_case(case, registry.with_overrides({name: mid}))[0].simulated
            lo, hi = (mid, hi) if sim < target else (lo, mid)
        out[name] = round(0.5 * (lo + hi), 3)
        print(f"{name}: {out[name]}  ({case_id}, observed {target})", flush=True)
    return out


if __name__ == "__main__":
    calibrate()
