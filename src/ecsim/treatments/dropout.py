"""Withdrawal from a trial (layer L7): who leaves, when, and what the trial statistics then see.

Each patient withdraws at a constant weekly hazard

    h_i = h0 + h_AE,i,    h_AE,i = -ln(1 - w x e_i) / W,

where h0 is the background hazard (`dropout_weekly_hazard`, from control arms), e_i the patient's
excess risk of any modelled adverse event over the regimen (1 - prod(1 - p_event) minus the same
at the background rates, `ecsim.treatments.adverse`), w the share of that excess that ends in
withdrawal (`dropout_adverse_share`, from the withdrawals of Devinsky 2017) and W the trial's length
in weeks, so that the adverse part adds w x e_i over the trial. The withdrawal time is
T_i = -ln(U_i) / h_i weeks with U_i uniform from the patient's own stream: the same patient number
draws the same U in every arm, whatever the chunking.

Statistics on the primary scale (`dropout_statistics`): completers (patients still in the trial at
the primary visit) and intention-to-treat with the last observation carried forward (a patient who
leaves keeps the value of the last visit attended before leaving; baseline if none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..population import block_normals
from ..registry import Registry
from .adverse import CBD_EVENTS, EVENTS, ExposureResponse, adverse_effects

STREAM = (7919, 100)
"""Key of the withdrawal draws: apart from the clinical layer's (seed, 7919) streams 1-6 (it was
(7919, 5), which the painkiller responsiveness stream took later: the two were the same numbers)."""


@dataclass(frozen=True)
class DropoutModel:
    weekly_hazard: float
    adverse_share: float
    adverse: bool = True

    @classmethod
    def from_registry(cls, registry: Registry, weekly_hazard: float | None = None,
                      adverse: bool = True) -> "DropoutModel":
        h0 = registry.value("dropout_weekly_hazard", "1/week") if weekly_hazard is None else weekly_hazard
        return cls(h0, registry.value("dropout_adverse_share", "dimensionless"), adverse)


def background_any(registry: Registry) -> float:
    """Chance of any modelled adverse event without the drug (the CBD events' background rates)."""
    p0 = [ExposureResponse.from_registry(registry, prefix).p0 for prefix in CBD_EVENTS.values()]
    return float(1.0 - np.prod(1.0 - np.asarray(p0)))


def excess_adverse_risk(exposure: dict[str, np.ndarray], registry: Registry) -> np.ndarray:
    """Per patient: chance of any modelled adverse event over the regimen, above the background."""
    p = adverse_effects(exposure, exposure["cbd_daily_mg"], registry)
    any_event = 1.0 - np.prod([1.0 - p[e] for e in EVENTS], axis=0)
    return np.clip(any_event - background_any(registry), 0.0, 1.0)


def withdrawal_days(model: DropoutModel, patients: np.ndarray, seed: int, weeks: float,
                    excess: np.ndarray | None = None) -> np.ndarray:
    """Day on which each patient (by patient number) withdraws; inf if never."""
    patients = np.asarray(patients, dtype=int)
    hazard = np.full(len(patients), model.weekly_hazard, dtype=float)
    if model.adverse and excess is not None and weeks > 0:
        hazard += -np.log1p(-np.clip(model.adverse_share * excess, 0.0, 0.999)) / weeks
    u = _uniforms(patients, seed)
    with np.errstate(divide="ignore"):
        t = np.where(hazard > 0, -np.log(u) / hazard * 7.0, np.inf)
    return t


def _uniforms(patients: np.ndarray, seed: int) -> np.ndarray:
    """One uniform per patient number from its own stream (chunk- and arm-independent)."""
    if len(patients) == 0:
        return np.zeros(0)
    lo, hi = int(patients.min()), int(patients.max()) + 1
    z = block_normals((seed, *STREAM), lo, hi, 1)[patients - lo, 0]
    return np.clip(ndtr(z), 1e-300, 1.0)


def observed_columns(values: np.ndarray, visit_days: np.ndarray, leave_day: np.ndarray) -> np.ndarray:
    """Per patient and visit: the value seen at that visit, or the last value seen before leaving
    (last observation carried forward; baseline always seen)."""
    seen = visit_days[None, :] < leave_day[:, None]
    seen[:, 0] = True
    last = np.maximum.accumulate(np.where(seen, np.arange(len(visit_days))[None, :], 0), axis=1)
    return np.take_along_axis(values, last, axis=1)


def dropout_statistics(arms: dict[str, dict], control: str | None, k: int, visit_days: np.ndarray,
                       summarise) -> dict:
    """Completers and ITT-LOCF at visit ``k``. ``arms[name]`` has ``values`` (patients x visits of
    the primary scale) and ``leave`` (withdrawal day per patient); ``summarise(change, reference)``
    returns the statistics block of one arm (reference: the control arm's change, or None)."""
    day = float(visit_days[k])
    change = {"completers": {}, "itt_locf": {}}
    withdrawn = {}
    for name, a in arms.items():
        stay = a["leave"] > day
        withdrawn[name] = round(float(np.mean(~stay)), 3)
        change["completers"][name] = a["values"][stay, k] - a["values"][stay, 0]
        locf = observed_columns(a["values"], visit_days, a["leave"])
        change["itt_locf"][name] = locf[:, k] - locf[:, 0]
    doc = {"withdrawn_by_primary_day": withdrawn, "completers": {}, "itt_locf": {}}
    for analysis, per_arm in change.items():
        for name, c in per_arm.items():
            ref = per_arm.get(control) if control is not None and name != control else None
            doc[analysis][name] = summarise(c, ref) if len(c) else {"n": 0}
    return doc
