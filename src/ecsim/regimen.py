"""Turn an arm's dosing steps into boluses on the output grid, per patient."""

from __future__ import annotations

import numpy as np

from .engine import Bolus, Grid
from .errors import InputError
from .pk.model import pf04457845_bolus
from .pk.nabilone import nabilone_bolus
from .products import (absorption_rate_factors, cbd_boluses, clobazam_bolus, thc_boluses, thc_oral_equivalent,
                       thc_to_cbd)
from .scenario import Arm, DosingStep


COMEDICATION_BOLUS = {"clobazam": clobazam_bolus, "nabilone": nabilone_bolus, "pf04457845": pf04457845_bolus}
"""How an oral dose of each co-medication (mg, per patient) enters the model."""


def dose_times(step: DosingStep, grid: Grid) -> list[float]:
    """Dose times (h) of a step inside the run: days [from_day, to_day) at each time of day."""
    last_day = int(np.ceil(grid.t_end_h / 24.0))
    to_day = last_day if step.to_day is None else min(step.to_day, last_day)
    times = [24.0 * day + t for day in range(step.from_day, to_day) for t in step.times_h]
    return [t for t in times if t <= grid.t_end_h + 1e-9]


def step_mg(step: DosingStep, weight_kg: np.ndarray) -> np.ndarray:
    """The labelled dose of one administration in mg, per patient."""
    return step.dose.mg + step.dose.mg_per_kg * weight_kg


def arm_boluses(arm: Arm, p: dict[str, np.ndarray], grid: Grid) -> list[Bolus]:
    """Every bolus of the arm: CBD with the product's THC, extra THC, co-medications (clobazam, the
    irreversible FAAH inhibitor PF-04457845, the CB1/CB2 agonist nabilone)."""
    doses: list[Bolus] = []
    thc_ratio = thc_to_cbd(p, arm.product)
    for step in arm.cbd:
        labelled = step_mg(step, p["body_weight_kg"])
        actual = labelled * p["label_content_factor"]
        for t in dose_times(step, grid):
            doses.extend(cbd_boluses(p, t, actual, arm.route, arm.food, arm.formulation))
            if np.any(thc_ratio):
                doses.extend(thc_boluses(p, t, labelled * thc_ratio * p["label_content_factor"],
                                         arm.route, arm.food))
    for step in arm.thc:
        for t in dose_times(step, grid):
            doses.extend(thc_boluses(p, t, step_mg(step, p["body_weight_kg"]), arm.route, arm.food))
    for co in arm.comedication:
        bolus = COMEDICATION_BOLUS.get(co.drug)
        if bolus is None:
            raise InputError(f"arms.{arm.name}.comedication.drug", co.drug, ", ".join(sorted(COMEDICATION_BOLUS)))
        for step in co.steps:
            for t in dose_times(step, grid):
                doses.append(bolus(p, t, step_mg(step, p["body_weight_kg"])))
    return doses


def arm_covariates(arm: Arm, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-patient covariates that depend on the arm: absorption-rate factors, interventions."""
    n = len(p["body_weight_kg"])
    given = absorption_rate_factors(p, arm.food, arm.formulation) | {
        "faah_extra_inhibition": arm.interventions.faah_inhibition,
        "magl_extra_inhibition": arm.interventions.magl_inhibition,
        "d2_agonist_occupancy": arm.interventions.d2_agonist_occupancy,
        "cbd_fixed_free_nM": arm.interventions.cbd_fixed_free_nM,
        "synthetic_cb1_agonist_occupancy": arm.interventions.cb1_agonist_occupancy}
    return {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in given.items()}


def max_single_thc_mg(arm: Arm, p: dict[str, np.ndarray]) -> np.ndarray:
    """Largest single THC dose (mg) delivered by the arm's product, per patient."""
    ratio = thc_to_cbd(p, arm.product)
    single = [step_mg(s, p["body_weight_kg"]) * ratio * p["label_content_factor"] for s in arm.cbd]
    single += [step_mg(s, p["body_weight_kg"]) for s in arm.thc]
    return np.max(single, axis=0) if single else np.zeros_like(p["body_weight_kg"])


def max_single_thc_oral_equivalent_mg(arm: Arm, p: dict[str, np.ndarray]) -> np.ndarray:
    """`max_single_thc_mg` as the fasted oral dose with the same systemic THC (`thc_oral_equivalent`
    for the arm's route and meal), per patient: what oral dose thresholds are compared with."""
    return max_single_thc_mg(arm, p) * thc_oral_equivalent(p, arm.route, arm.food)
