"""The model as a function of its uncertain parameters, for sensitivity and uncertainty analysis.

Each parameter set is one *typical* patient (every between-patient draw at its median, no rater
noise), so the spread of the outputs is parameter uncertainty only: "how unsure the model is", kept
apart from "how different patients respond" (the run's own percentiles). Parameter sets are the
batch axis: K sets cost one chunked simulation of K patients per arm.

Headline outputs per CBD arm (last-day averages): plasma CBD, free brain CBD, FAAH inhibition,
brain anandamide fold, CB1 signal and GABA release at the striatal output synapse; with a phenotype,
the severity summed over the affected body regions against the control arm at the trial's primary
day (per cent of the control's; negative is better), the primary scale's change against control in points
(each item at its mean over raters, `scales.EXPECTED`) and the GPi rate difference (Hz). Keys are
``<arm>.<output>``; split them with `split_key` (arm names may contain dots).
"""

from __future__ import annotations

import numpy as np

from ..registry import Registry
from ..scenario import Scenario
from ..simulation import simulate_chunk

CHUNK = 512
DASK_CHUNK = 64   # parameter sets per Dask task: enough tasks to share out (the results do not depend on it)
LEVELS = {"cbd_plasma_cavg_ng_per_ml": "cbd_plasma_ng_per_ml.cavg", "cbd_brain_free_cavg_nM": "cbd_brain_free_nM.cavg",
          "faah_inhibition": "faah_inhibition.avg", "aea_fold_brain": "aea_fold_brain.avg",
          "cb1_signal_striatum_gpe_rel": "cb1_signal_gaba_striatum_to_gpe_rel.avg",
          "gaba_release_striatum_gpe_rel": "release_gaba_striatum_to_gpe_rel.avg"}


def typical(scenario: Scenario) -> Scenario:
    data = scenario.model_dump(mode="json")
    data["population"]["typical"] = True
    return Scenario.model_validate(data)


def cbd_arms(scenario: Scenario) -> list[str]:
    control = scenario.trial.control_arm
    return [a.name for a in scenario.arms if a.cbd and a.name != control]


class HeadlineFunction:
    """Callable: parameter values (K x D, columns = ``names``) -> output name -> (K,) values."""

    def __init__(self, scenario: Scenario, registry: Registry, names: list[str], arms: list[str] | None = None,
                 levels: dict[str, str] | None = None, mapper=None):
        self.scenario = typical(scenario)
        self.registry = registry
        self.names = names
        self.arms = arms or cbd_arms(scenario)
        self.levels = levels or LEVELS
        self.control = scenario.trial.control_arm if scenario.population.phenotype else None
        self.day = scenario.trial.primary_day if scenario.trial.primary_day is not None else scenario.duration_days
        self.mapper = mapper   # `ecsim.distributed.ordered_mapper`'s map, to run chunks on Dask; None: here
        from ..clinical_summary import primary_scale
        self.scale = primary_scale(scenario.population.phenotype, scenario.trial.primary_scale) \
            if scenario.population.phenotype else None

    def __call__(self, values: np.ndarray) -> dict[str, np.ndarray]:
        size = CHUNK if self.mapper is None else DASK_CHUNK
        chunks = [values[start:start + size] for start in range(0, len(values), size)]
        parts = self.mapper(self._chunk, chunks) if self.mapper else [self._chunk(c) for c in chunks]
        out: dict[str, list[np.ndarray]] = {}
        for part in parts:
            for name, v in part.items():
                out.setdefault(name, []).append(v)
        return {k: np.concatenate(v) for k, v in out.items()}

    def __getstate__(self):
        return self.__dict__ | {"mapper": None}   # a worker evaluates its chunk here

    def _chunk(self, values: np.ndarray) -> dict[str, np.ndarray]:
        k = len(values)
        overrides = {name: values[:, j] for j, name in enumerate(self.names)}
        arms = {a.name: a for a in self.scenario.arms}
        chunks = {name: simulate_chunk(self.scenario, arms[name], 0, k, registry=self.registry, overrides=overrides,
                                       expected_scores=True)
                  for name in self.arms + ([self.control] if self.control else [])}
        result = {}
        for arm in self.arms:
            metrics = _exposure(chunks[arm])
            result |= {f"{arm}.{label}": metrics[key] for label, key in self.levels.items()}
            if self.control:
                result |= versus_control(arm, chunks[arm].clinical, chunks[self.control].clinical, self.day,
                                         self.scale)
        return result


def versus_control(arm: str, c, control, day: float, scale: str | None = None) -> dict[str, np.ndarray]:
    """Severity summed over the affected regions, as a per cent of the control arm's sum at the
    visit nearest ``day``; the GPi rate difference in Hz. ``c`` and ``control`` are clinical
    trajectories. Affected: at baseline, at least half as severe as the worst region (the neck in
    cervical dystonia; every limb when all are alike). Regions left at the model's sub-clinical
    floor are excluded: their tiny severities would dominate a relative change while no scale or
    symptom registers them."""
    visit = int(np.argmin(np.abs(c.visit_days - day)))
    base = control.regions["severity"][0, 0]
    affected = base >= 0.5 * base.max()
    total = c.regions["severity"][:, visit][:, affected].sum(axis=1)
    ref = control.regions["severity"][:, visit][:, affected].sum(axis=1)
    change = 100.0 * (total - ref) / np.where(ref > 0, ref, np.nan)
    out = {f"{arm}.severity_vs_control_pct": change,
           f"{arm}.gpi_hz_vs_control": c.totals["gpi_hz"][:, visit] - control.totals["gpi_hz"][:, visit]}
    if scale is not None:   # the trial's primary scale, expected over raters: points against control
        out[f"{arm}.{scale}_vs_control_points"] = c.totals[scale][:, visit] - control.totals[scale][:, visit]
    return out


def _exposure(chunk) -> dict[str, np.ndarray]:
    from ..exposure import exposure_metrics
    return exposure_metrics(chunk.times_h, chunk.outputs, chunk.values)


def split_key(key: str) -> tuple[str, str]:
    """``'<arm>.<output>'`` -> (arm, output); outputs have no dots, arm names may."""
    arm, _, output = key.rpartition(".")
    return arm, output


CLINICAL_FILES = ("circuit.yaml", "motor.yaml", "phenotypes.yaml", "treatments.yaml", "fitted.yaml")


def clinical_parameters(registry: Registry) -> list[str]:
    """Parameters of the circuit and clinical layers (L4-L7), read as scalars from the registry."""
    from .problem import drug_layer_parameters, file_parameters
    return sorted(file_parameters(*CLINICAL_FILES) - set(drug_layer_parameters(registry)))


# Fitted parameters that define a form of dystonia or its levodopa response (fitted.yaml holds the
# circuit's fitted constants as well; those stay out).
PHENOTYPE_FITTED_PREFIXES = ("pheno_", "plasticity_", "levodopa_")


def phenotype_parameters(registry: Registry) -> list[str]:
    """The parameters that define each form of dystonia and how its motor signs become symptoms
    and scale scores (phenotypes.yaml, motor.yaml and the fitted phenotype, plasticity and levodopa
    constants), without the basal-ganglia circuit itself (circuit.yaml): drawn alone, the circuit's
    ranges leave most draws without the phenotype they should model (docs/uncertainty.md)."""
    from .problem import file_parameters
    fitted = {n for n in file_parameters("fitted.yaml") if n.startswith(PHENOTYPE_FITTED_PREFIXES)}
    return sorted(n for n in file_parameters("phenotypes.yaml", "motor.yaml") | fitted if n in registry.parameters)


def clinical_one_at_a_time(scenario: Scenario, registry: Registry, arm: str, quantiles=(0.05, 0.95),
                           names: list[str] | None = None) -> dict:
    """The typical patient's answer for ``arm`` with each circuit or clinical parameter set, one at a
    time, to the given quantiles of its uncertainty (the drug layers are simulated once and only the
    clinical layers re-run). Sorted by how far the answer moves."""
    from ..simulation import assess_chunk
    from .problem import from_registry
    sc = typical(scenario)
    control = scenario.trial.control_arm
    day = scenario.trial.primary_day if scenario.trial.primary_day is not None else scenario.duration_days
    arms = {a.name: a for a in sc.arms}
    drug = {name: simulate_chunk(sc, arms[name], 0, 1, registry=registry) for name in (arm, control)}
    key = f"{arm}.severity_vs_control_pct"

    def answer(reg: Registry) -> float:
        clin = {name: assess_chunk(sc, arms[name], c.times_h, c.outputs, 0, 1, reg) for name, c in drug.items()}
        return float(versus_control(arm, clin[arm], clin[control], day)[key][0])

    base = answer(registry)
    rows = []
    for f in from_registry(registry, names or clinical_parameters(registry)).factors:
        lo, hi = (float(f.quantile(np.array([q]))[0]) for q in quantiles)
        a_lo, a_hi = answer(registry.with_overrides({f.name: lo})), answer(registry.with_overrides({f.name: hi}))
        rows.append({"parameter": f.name, "low": lo, "high": hi, "answer_low": a_lo, "answer_high": a_hi,
                     "source": f.source, "unit": f.unit})
    rows.sort(key=lambda r: -_moved(r, base))
    return {"arm": arm, "output": key, "baseline": base, "quantiles": list(quantiles), "factors": rows}


def _moved(row: dict, base: float) -> float:
    """How far a sweep row moves the answer. An undefined answer (NaN: the control arm has no
    severity left to compare with) does not count; a row with none sorts last."""
    moves = [abs(a - base) for a in (row["answer_low"], row["answer_high"]) if np.isfinite(a)]
    return max(moves) if moves else -1.0
