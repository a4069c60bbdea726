"""Global sensitivity analysis with SALib on any vectorised function of a `Problem`'s factors.

One code path for every use: the Ishigami test function (analytic indices, tests/test_uncertainty.py)
and the model's headline outputs go through the same `sobol` and `morris`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .problem import Problem

Function = Callable[[np.ndarray], dict[str, np.ndarray]]   # parameter values (K x D) -> output -> (K,)


def sobol(problem: Problem, f: Function, n: int, seed: int) -> dict:
    """First-order and total Sobol indices with bootstrap 95 % CIs (Saltelli/Jansen estimators,
    SALib), from n (a power of 2) base samples: n (D + 2) evaluations."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample
    unit = sample.sample(problem.salib(), n, calc_second_order=False, seed=seed)
    outputs = f(problem.independent().values(unit))
    result = {}
    for name, y in outputs.items():
        if np.ptp(y) == 0:      # no factor moves this output: every index is zero (SALib would divide by 0)
            zeros = [0.0] * len(problem.factors)
            result[name] = {"S1": zeros, "S1_conf": zeros, "ST": zeros, "ST_conf": zeros, "variance": 0.0}
            continue
        s = analyze.analyze(problem.salib(), np.asarray(y, float), calc_second_order=False, seed=seed)
        result[name] = {"S1": s["S1"].tolist(), "S1_conf": s["S1_conf"].tolist(),
                        "ST": s["ST"].tolist(), "ST_conf": s["ST_conf"].tolist(),
                        "variance": float(np.var(y))}
    return {"method": "sobol", "base_samples": n, "evaluations": len(unit), "factors": problem.names,
            "outputs": result}


def morris(problem: Problem, f: Function, trajectories: int, seed: int, levels: int = 4,
           per_quantile: bool = False) -> dict:
    """Morris elementary effects (mu*, its 95 % CI, sigma) from ``trajectories`` (D + 1) evaluations,
    on the unit scale of each factor's quantiles, so effects are comparable across factors.

    By default effects are per unit of SALib's grid (step Delta = L / (2 (L - 1))); with
    ``per_quantile`` they are per unit of the factor's quantile (the grid is moved to bin centres:
    one grid unit is (L - 1) / L of a quantile unit), so mu* is in the output's own units: the
    change across the whole quantile range if the effect were linear, e.g. |c| (high - low) for
    y = c x with x uniform on [low, high]. A trajectory with a non-finite output (a numerical or
    parameter-set fault) is left out of that output's indices; ``trajectories_used`` counts the rest
    (indices are None if fewer than two remain)."""
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample
    unit = sample.sample(problem.salib(), trajectories, num_levels=levels, seed=seed)
    outputs = f(problem.independent().values(bin_centres(unit, levels)))
    steps = len(problem.factors) + 1
    scale = levels / (levels - 1) if per_quantile else 1.0
    result = {}
    for name, y in outputs.items():
        y = np.asarray(y, float)
        whole = np.isfinite(y).reshape(-1, steps).all(axis=1)
        if whole.sum() < 2:
            none = [None] * len(problem.factors)
            result[name] = {"mu_star": none, "mu_star_conf": none, "sigma": none, "trajectories_used": int(whole.sum())}
            continue
        rows = np.repeat(whole, steps)
        s = analyze.analyze(problem.salib(), unit[rows], y[rows], num_levels=levels, seed=seed)
        result[name] = {key: (scale * np.asarray(s[key])).tolist() for key in ("mu_star", "mu_star_conf", "sigma")}
        result[name]["trajectories_used"] = int(whole.sum())
    return {"method": "morris", "trajectories": trajectories, "evaluations": len(unit), "factors": problem.names,
            "per_quantile": per_quantile, "outputs": result}


def bin_centres(unit: np.ndarray, levels: int) -> np.ndarray:
    """Morris grid levels 0, 1/(L-1), ..., 1 moved to the centres of L equal-probability bins, so the
    end levels are the 1/(2L) and 1 - 1/(2L) quantiles, not the distributions' far tails."""
    return (unit * (levels - 1) + 0.5) / levels


def ranking(result: dict, output: str) -> list[tuple[str, float]]:
    """Factors by importance for one output: total Sobol index, or Morris mu* (None, an output
    with too few sound trajectories, last)."""
    key = "ST" if result["method"] == "sobol" else "mu_star"
    scores = result["outputs"][output][key]
    return sorted(zip(result["factors"], scores), key=lambda t: (t[1] is None, -(t[1] or 0.0)))


def monte_carlo(problem: Problem, f: Function, n: int, seed: int) -> dict:
    """Plain Monte Carlo of parameter uncertainty: median and 90 % interval of each output."""
    unit = np.random.default_rng(seed).random((n, len(problem.factors)))
    outputs = f(problem.values(unit))
    return {name: {"median": float(np.median(y)), "p05": float(np.percentile(y, 5)),
                   "p95": float(np.percentile(y, 95))} for name, y in outputs.items()}
