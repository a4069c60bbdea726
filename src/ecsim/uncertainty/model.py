"""The model as a function of its uncertain parameters, for sensitivity and uncertainty analysis.

Each parameter set is one *typical* patient (every between-patient draw at its median, no rater
noise), so the spread of the outputs is parameter uncertainty only: "how unsure the model is", kept
apart from "how different patients respond" (the run's own percentiles). Parameter sets are the
batch axis: K sets cost one chunked simulation of K patients per arm.

Headline outputs per CBD arm (last-day averages): plasma CBD, free brain CBD, FAAH inhibition,
brain anandamide fold, CB1 signal and GABA release at the striatal output synapse; with a phenotype,
the severity summed over the affected body regions against the control arm at the trial's primary
day (per cent of the control's; negative is better) and the GPi rate difference (Hz). Keys are
``<arm>.<output>``; split them with `split_key` (arm names may contain dots).
"""

from __future__ import annotations

import numpy as np

from ..registry import Registry
from ..scenario import Scenario
from ..simulation import simulate_chunk

CHUNK = 512
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
                 levels: dict[str, str] | None = None):
        self.scenario = typical(scenario)
        self.registry = registry
        self.names = names
        self.arms = arms or cbd_arms(scenario)
        self.levels = levels or LEVELS
        self.control = scenario.trial.control_arm if scenario.population.phenotype else None
        self.day = scenario.trial.primary_day if scenario.trial.primary_day is not None else scenario.duration_days

    def __call__(self, values: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(values), CHUNK):
            for name, v in self._chunk(values[start:start + CHUNK]).items():
                out.setdefault(name, []).append(v)
        return {k: np.concatenate(v) for k, v in out.items()}

    def _chunk(self, values: np.ndarray) -> dict[str, np.ndarray]:
        k = len(values)
        overrides = {name: values[:, j] for j, name in enumerate(self.names)}
        arms = {a.name: a for a in self.scenario.arms}
        chunks = {name: simulate_chunk(self.scenario, arms[name], 0, k, registry=self.registry, overrides=overrides)
                  for name in self.arms + ([self.control] if self.control else [])}
        result = {}
        for arm in self.arms:
            metrics = _exposure(chunks[arm])
            result |= {f"{arm}.{label}": metrics[key] for label, key in self.levels.items()}
            if self.control:
                result |= self._versus_control(arm, chunks[arm], chunks[self.control])
        return result

    def _versus_control(self, arm: str, c, control) -> dict[str, np.ndarray]:
        """Severity summed over the affected regions, as a per cent of the control arm's sum at the
        primary visit; the GPi rate difference in Hz. Affected: at baseline, at least half as severe
        as the worst region (the neck in cervical dystonia; every limb when all are alike). Regions
        left at the model's sub-clinical floor are excluded: their tiny severities would dominate a
        relative change while no scale or symptom registers them."""
        visit = int(np.argmin(np.abs(c.clinical.visit_days - self.day)))
        base = control.clinical.regions["severity"][0, 0]
        affected = base >= 0.5 * base.max()
        total = c.clinical.regions["severity"][:, visit][:, affected].sum(axis=1)
        ref = control.clinical.regions["severity"][:, visit][:, affected].sum(axis=1)
        change = 100.0 * (total - ref) / np.where(ref > 0, ref, np.nan)
        return {f"{arm}.severity_vs_control_pct": change,
                f"{arm}.gpi_hz_vs_control": c.clinical.totals["gpi_hz"][:, visit] - control.clinical.totals["gpi_hz"][:, visit]}


def _exposure(chunk) -> dict[str, np.ndarray]:
    from ..exposure import exposure_metrics
    return exposure_metrics(chunk.times_h, chunk.outputs, chunk.values)


def split_key(key: str) -> tuple[str, str]:
    """``'<arm>.<output>'`` -> (arm, output); outputs have no dots, arm names may."""
    arm, _, output = key.rpartition(".")
    return arm, output
