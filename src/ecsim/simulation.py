"""`Simulation`: joins scenario, registry, model, population and engine; nothing else.

`simulate_chunk` runs one arm for patients [start, stop) and returns full trajectories;
`Simulation.run` walks the population in chunks and keeps what the outputs need (per-patient
exposure metrics, a sample of trajectories, the population mean), so memory stays bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .circuit.clinical import PLASTICITY_SIGNAL, RELEASE, ClinicalModel, ClinicalTrajectory, assess
from .engine import Bolus, Grid, integrate, outputs
from .treatments.course import Course
from .exposure import exposure_metrics
from .model.declaration import Model
from .chain import full_model
from .population import Demographics, patient_values
from .registry import Registry, default_registry
from .regimen import arm_boluses, arm_covariates, max_single_thc_mg
from .scenario import Arm, Scenario

CHUNK = 500
SAMPLE = 200


@dataclass(frozen=True)
class Chunk:
    """Trajectories (patients × time) of every output for one arm and a slice of patients."""

    times_h: np.ndarray
    outputs: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    states: dict[str, np.ndarray]
    clinical: ClinicalTrajectory | None = None


@dataclass
class ArmResult:
    """What a run keeps of one arm."""

    name: str
    times_h: np.ndarray
    exposure: dict[str, np.ndarray] = field(default_factory=dict)   # per patient
    sample: dict[str, list[np.ndarray]] = field(default_factory=dict)  # trajectories, first patients
    mean: dict[str, np.ndarray] = field(default_factory=dict)       # over all patients
    n: int = 0
    visit_days: np.ndarray | None = None
    clinical: dict[str, np.ndarray] = field(default_factory=dict)   # per patient x visit (float32)
    region_severity_sum: np.ndarray | None = None                   # visits x regions, summed over patients
    unconverged: int = 0                                            # patient-visits whose circuit did not settle

    def add(self, chunk: Chunk, start: int) -> None:
        n = len(chunk.values["body_weight_kg"])
        for name, traj in chunk.outputs.items():
            total = self.mean.get(name, 0.0) * self.n + traj.sum(axis=0)
            self.mean[name] = total / (self.n + n)
            if start < SAMPLE:
                self.sample.setdefault(name, []).append(traj[: SAMPLE - start])
        for name, metric in exposure_metrics(chunk.times_h, chunk.outputs, chunk.values).items():
            self.exposure[name] = np.concatenate([self.exposure.get(name, np.empty(0)), metric])
        if chunk.clinical is not None:
            self._add_clinical(chunk.clinical)
        self.n += n

    def _add_clinical(self, c: ClinicalTrajectory) -> None:
        self.visit_days = c.visit_days
        for name, values in (c.totals | c.symptoms).items():
            part = values.astype(np.float32)
            self.clinical[name] = part if name not in self.clinical else np.concatenate([self.clinical[name], part])
        self.unconverged += int((~c.converged).sum())
        severity = c.regions["severity"].sum(axis=0)
        self.region_severity_sum = severity if self.region_severity_sum is None else self.region_severity_sum + severity


def grid_for(scenario: Scenario) -> Grid:
    return Grid(scenario.duration_days * 24.0, scenario.output_step_h)


def demographics(scenario: Scenario) -> Demographics:
    pop = scenario.population
    return Demographics(pop.weight_mean_kg, pop.weight_sd_kg, pop.weight_min_kg, pop.weight_max_kg,
                        pop.hepatic, pop.cyp2c19, pop.typical)


def simulate_chunk(scenario: Scenario, arm: Arm, start: int, stop: int, *,
                   registry: Registry | None = None, model: Model | None = None,
                   overrides: dict[str, np.ndarray] | None = None) -> Chunk:
    """One arm, patients [start, stop): trajectories of every state and output. ``overrides``
    replace per-patient parameter values (one value per patient; uncertainty analysis)."""
    registry = registry or default_registry().with_overrides(scenario.parameters)
    model = model or full_model()
    grid = grid_for(scenario)
    p, doses = patient_inputs(scenario, arm, start, stop, registry, overrides)
    states = integrate(model, p, doses, grid, stop - start)
    out = outputs(model, p, states)
    clinical = None
    if scenario.population.phenotype is not None:
        days = visit_days(scenario)
        clinical = assess(ClinicalModel.from_registry(registry), registry, scenario.population.phenotype,
                          days, visit_drivers(grid.times, out, days), arm_course(arm, scenario),
                          scenario.population.seed, start, stop, typical=scenario.population.typical)
    return Chunk(grid.times, out, p, states, clinical)


def patient_inputs(scenario: Scenario, arm: Arm, start: int, stop: int, registry: Registry,
                   overrides: dict[str, np.ndarray] | None = None) -> tuple[dict[str, np.ndarray], list[Bolus]]:
    """Per-patient parameter and covariate values and the arm's boluses, patients [start, stop)."""
    p = patient_values(registry, sorted(registry.parameters), demographics(scenario), arm.product,
                       arm.food, scenario.population.seed, start, stop)
    p |= {name: np.asarray(v, dtype=float) for name, v in (overrides or {}).items()}
    p |= arm_covariates(arm, p)
    p["cbd_faah_ic50_uM"] = np.full(stop - start, registry[f"cbd_faah_ic50_{scenario.species}"].value)
    p["max_single_thc_mg"] = max_single_thc_mg(arm, p)
    return p, arm_boluses(arm, p, grid_for(scenario))


def arm_course(arm: Arm, scenario: Scenario) -> Course:
    """The arm's treatments outside the drug-level layers."""
    return Course(arm.interventions.levodopa_mg_per_day, arm.interventions.trihexyphenidyl_mg_per_day,
                  arm.botulinum, arm.gpi_stimulation, scenario.trial.placebo_response)


def visit_days(scenario: Scenario) -> np.ndarray:
    return np.array(scenario.visit_days())


def visit_drivers(times_h: np.ndarray, out: dict[str, np.ndarray], days: np.ndarray) -> dict[str, np.ndarray]:
    """Circuit drivers at each visit: the mean over the 24 h before it (the value at t = 0 on day 0)."""
    columns = []
    for day in days:
        t = day * 24.0
        window = (times_h > t - 24.0 - 1e-9) & (times_h <= t + 1e-9) if day > 0 else np.isclose(times_h, 0.0)
        columns.append(window)
    return {name: np.stack([out[source][:, w].mean(axis=1) for w in columns], axis=1)
            for name, source in {**RELEASE, PLASTICITY_SIGNAL: PLASTICITY_SIGNAL}.items()}


class Simulation:
    """Run a scenario: every arm, the whole population, in chunks of patients."""

    def __init__(self, scenario: Scenario, *, registry: Registry | None = None, chunk: int = CHUNK):
        self.scenario = scenario
        self.registry = (registry or default_registry()).with_overrides(scenario.parameters)
        self.model = full_model()
        self.chunk = chunk
        self.timings: dict[str, float] = {}

    def run(self, progress=None) -> list[ArmResult]:
        started = time.perf_counter()
        results = [self._run_arm(arm, progress) for arm in self.scenario.arms]
        self.timings["simulate_s"] = time.perf_counter() - started
        return results

    def _run_arm(self, arm: Arm, progress) -> ArmResult:
        n = self.scenario.population.n
        result = ArmResult(arm.name, grid_for(self.scenario).times)
        for start in range(0, n, self.chunk):
            stop = min(n, start + self.chunk)
            chunk = simulate_chunk(self.scenario, arm, start, stop, registry=self.registry, model=self.model)
            result.add(chunk, start)
            if progress is not None:
                progress(arm.name, stop - start)
        return result
