"""Parameter uncertainty and global sensitivity (issue 9).

- `parameter_uncertainty`: Monte Carlo over the registry's uncertainty ranges, typical patient per
  draw: a 90 % interval for each headline output ("how unsure the model is") and a rank-correlation
  screen of which parameters move the answer. The main job runs it for its report.
- `sensitivity_analysis`: Morris screening of every drug-layer parameter, then Sobol indices
  (SALib) for the most influential ones, and a one-at-a-time sweep of every circuit and clinical
  parameter (5th and 95th percentile) for the strongest CBD arm; `ecsim sensitivity` prints it,
  with "what to measure next".

Between-patient variability is the run's own percentiles; this module never mixes the two.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..registry import Registry
from ..scenario import Scenario
from .model import HeadlineFunction, cbd_arms, clinical_one_at_a_time
from .problem import Problem, drug_layer_parameters, from_registry, unit_draws
from .sensitivity import monte_carlo, morris, ranking, sobol

__all__ = ["parameter_uncertainty", "sensitivity_analysis", "answer_outputs", "points_outputs", "parameter_draws"]


def answer_outputs(outputs: list[str]) -> list[str]:
    """The outputs that carry the trial's answer (severity against control), else CB1 signalling."""
    answer = [o for o in outputs if o.endswith(".severity_vs_control_pct")]
    return answer or [o for o in outputs if o.endswith("cb1_signal_striatum_gpe_rel")]


def points_outputs(outputs: list[str]) -> list[str]:
    """The answer in the primary scale's points against control (expected over raters), per arm."""
    return [o for o in outputs if o.endswith("_vs_control_points")]


def _problem(registry: Registry) -> Problem:
    return from_registry(registry, drug_layer_parameters(registry))


def parameter_draws(registry: Registry, draws: int, seed: int) -> tuple[Problem, np.ndarray]:
    """Monte Carlo draws of every drug-layer parameter from its uncertainty (draws x factors)."""
    problem = _problem(registry)
    unit = unit_draws(problem.names, draws, seed, STREAM)
    return problem, problem.values(unit)


def parameter_uncertainty(scenario: Scenario, registry: Registry, draws: int = 128, seed: int = 1,
                          top: int = 3, mapper=None) -> dict:
    """Intervals of every headline output over ``draws`` parameter sets, and for each answer output
    (severity and scale points against control) the ``top`` parameters by |Spearman rho| with it
    (same draws), with their sources."""
    problem = _problem(registry)
    f = HeadlineFunction(scenario, registry, problem.names, mapper=mapper)
    if not f.arms:
        return {}
    unit = unit_draws(problem.names, draws, seed, STREAM)
    with np.errstate(all="ignore"):
        outputs = f(problem.values(unit))
    sound = np.all([np.isfinite(v) for v in outputs.values()], axis=0)   # numerical faults: left out, counted
    unit, outputs = unit[sound], {k: v[sound] for k, v in outputs.items()}
    intervals = {k: _interval(v) for k, v in outputs.items()} if sound.any() else {}
    drivers = {k: _correlates(problem, unit, outputs[k], registry, top)
               for k in answer_outputs(list(outputs)) + points_outputs(list(outputs)) if sound.sum() > 2}
    return {"draws": draws, "draws_faulted": int((~sound).sum()), "seed": seed, "factors": len(problem.factors),
            "rho_noise_level": round(3.0 / np.sqrt(sound.sum() - 1), 3) if sound.sum() > 1 else None,
            "what": "typical patient per draw; registry uncertainty ranges of the drug-layer parameters (L0-L3)",
            "intervals": intervals, "drivers": drivers}


def sensitivity_analysis(scenario: Scenario, registry: Registry, method: str = "sobol", samples: int = 256,
                         trajectories: int = 20, screen_top: int = 10, seed: int = 1, mapper=None) -> dict:
    """Morris screening of all drug-layer parameters; with ``method='sobol'``, Sobol indices of the
    ``screen_top`` most influential (on the answer outputs) from ``samples`` base samples."""
    problem = _problem(registry)
    f = HeadlineFunction(scenario, registry, problem.names, mapper=mapper)
    if not f.arms:
        from ..errors import InputError
        raise InputError("SCENARIO", scenario.name, "a scenario with at least one CBD arm")
    screen = morris(problem, f, trajectories, seed)
    answer = answer_outputs(list(screen["outputs"]))
    order = _combined_order(screen, answer)
    doc = {"scenario": scenario.name, "arms": f.arms, "answer_outputs": answer, "morris": screen}
    if method == "sobol":
        chosen = order[:screen_top]
        sub = Problem(tuple(fa for fa in problem.factors if fa.name in chosen))
        g = HeadlineFunction(scenario, registry, sub.names, f.arms, mapper=mapper)
        doc["sobol"] = sobol(sub, lambda x: g(x), samples, seed)
    if scenario.population.phenotype and scenario.trial.control_arm:
        strongest = max(f.arms, key=lambda a: _daily_mg(scenario, a))
        doc["clinical_one_at_a_time"] = clinical_one_at_a_time(scenario, registry, strongest)
    best = doc.get("sobol", screen)
    doc["measure_next"] = {o: [_described(registry, name, score, best["method"]) for name, score in ranking(best, o)[:5]]
                           for o in answer}
    return doc


def _daily_mg(scenario: Scenario, arm: str) -> float:
    """An arm's largest daily CBD dose in mg (weight-based doses at the population's mean weight)."""
    a = next(x for x in scenario.arms if x.name == arm)
    w = scenario.population.weight_mean_kg
    return max((len(s.times_h) * (s.dose.mg + s.dose.mg_per_kg * w) for s in a.cbd), default=0.0)


STREAM = 9001   # parameter draws get their own random stream, apart from patients' (seed, block)


def _combined_order(screen: dict, outputs: list[str]) -> list[str]:
    """Factors taken in turn from each answer output's Morris ranking (mu*), so that every arm's
    most influential parameters reach the Sobol stage."""
    rankings = [[name for name, _ in ranking(screen, o)] for o in outputs]
    order: list[str] = []
    for rank in range(len(screen["factors"])):
        for r in rankings:
            if r[rank] not in order:
                order.append(r[rank])
    return order


def _interval(v: np.ndarray) -> dict:
    lo, mid, hi = np.percentile(v, [5, 50, 95])
    return {"median": float(f"{mid:.4g}"), "p05": float(f"{lo:.4g}"), "p95": float(f"{hi:.4g}")}


def _correlates(problem: Problem, unit: np.ndarray, y: np.ndarray, registry: Registry, top: int) -> list[dict]:
    if np.ptp(y) == 0:
        return []
    unit = problem.correlated_unit(unit)   # the ranks of the values drawn, correlated groups included
    rho = np.array([stats.spearmanr(unit[:, j], y).statistic for j in range(unit.shape[1])])
    order = np.argsort(-np.abs(np.nan_to_num(rho)))[:top]
    return [_described(registry, problem.names[j], float(rho[j]), "spearman") for j in order]


def _described(registry: Registry, name: str, score: float, method: str) -> dict:
    p = registry[name]
    ref = registry.references.get(p.source)
    return {"parameter": name, "score": float(f"{score:.4g}"), "score_kind": method, "value": p.value, "unit": p.unit,
            "description": p.description, "uncertainty": p.uncertainty.model_dump(exclude_none=True),
            "source": p.source, "citation": ref.citation if ref else p.reason or "assumption"}
