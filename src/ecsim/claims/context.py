"""The model's numbers that the claims are graded on, computed once per check.

- drug levels and target engagement at the article's doses (the embedded `claims-doses` scenario);
- the virtual trial of the run being reported (CBD arms against control on the primary scale);
- the typical patient of each phenotype (symptoms, scale scores), with and without levodopa;
- the shipped validation snapshot (how well the model reproduces published studies).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..registry import Registry
from ..scenario import Scenario, load_scenario
from ..simulation import ArmResult, Simulation

DOSES_SCENARIO = "claims-doses"
DOSE_PATIENTS = 200


@dataclass(frozen=True)
class TrialEvidence:
    """A run's trial block and which of its arms give CBD."""

    scenario: str
    phenotype: str
    statistics: dict
    cbd_arms: list[str]


@dataclass
class ClaimsContext:
    registry: Registry
    doses: dict[str, dict[str, np.ndarray]]          # arm -> quantity -> per-patient values
    dose_patients: int
    trial: TrialEvidence | None = None
    validation: dict = field(default_factory=dict)   # metric id -> snapshot row


def dose_values(results: list[ArmResult]) -> dict[str, dict[str, np.ndarray]]:
    """Per arm, per patient: last-day time averages of every target and tone output, the CBD
    average plasma level and the largest single THC dose."""
    out = {}
    for r in results:
        values = {name[:-4]: v for name, v in r.exposure.items() if name.endswith(".avg")}
        values["cbd_plasma_cavg_ng_per_ml"] = r.exposure["cbd_plasma_ng_per_ml.cavg"]
        values["thc_single_dose_mg"] = r.exposure["max_single_thc_mg"]
        out[r.name] = values
    return out


def run_doses(registry: Registry, patients: int = DOSE_PATIENTS, seed: int | None = None) -> dict:
    """Simulate the claims-doses scenario (consumer, 300 mg/day and Epidiolex doses, fasted and fed)."""
    scenario = load_scenario(DOSES_SCENARIO)
    data = scenario.model_dump(mode="json")
    data["population"]["n"] = patients
    if seed is not None:
        data["population"]["seed"] = seed
    return dose_values(Simulation(Scenario.model_validate(data), registry=registry).run())


def trial_evidence(scenario: Scenario, summary: dict) -> TrialEvidence | None:
    """The trial block of a run's summary, if the run is a controlled trial with at least one CBD arm."""
    trial = summary.get("trial")
    if not trial or not trial.get("control_arm"):
        return None
    cbd = [a.name for a in scenario.arms if a.cbd and a.name != trial["control_arm"]]
    if not cbd:
        return None
    return TrialEvidence(scenario.name, scenario.population.phenotype, trial, cbd)
