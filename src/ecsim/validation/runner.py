"""Simulate a case's study and compare each metric with the published value."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ..circuit.regions import REGIONS
from ..ecs.species import species_registry
from ..errors import InputError
from ..registry import Registry, default_registry
from ..simulation import Chunk, simulate_chunk
from .cases import Case, Metric, Quantity
from .nca import MEASURES


@dataclass(frozen=True)
class MetricResult:
    id: str
    kind: str
    metric: str
    observed: float
    simulated: float
    tolerance: str
    passed: bool
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def simulate_case(case: Case, registry: Registry, n: int | None = None, typical: bool = False
                  ) -> dict[str, Chunk]:
    """Every arm of the case's scenario, for ``n`` virtual patients (typical patient if asked), with
    the parameter set of the scenario's species (rat and mouse values where the registry has them)."""
    scenario = case.scenario
    if typical:
        scenario = scenario.model_copy(update={"population": scenario.population.model_copy(
            update={"typical": True})})
    n = 1 if typical else (n or case.n_simulated)
    reg = species_registry(registry, scenario.species).with_overrides(scenario.parameters)
    return {arm.name: simulate_chunk(scenario, arm, 0, n, registry=reg) for arm in scenario.arms}


def quantity_values(q: Quantity, chunks: dict[str, Chunk], sampling_h: list[float]) -> np.ndarray:
    """The NCA measure per patient, on the study's sampling times inside the window."""
    chunk = chunks[q.arm]
    if q.measure == "visit":
        value = clinical_values(chunk, q.output, q.at_day)
        if q.change_from_day is None:
            return value
        before = clinical_values(chunk, q.output, q.change_from_day)
        if not q.relative:
            return value - before
        return np.where(before > 0, (value - before) / np.where(before > 0, before, 1.0), np.nan)
    if q.measure == "c_at":
        k = int(np.argmin(np.abs(chunk.times_h - q.at_h)))
        return chunk.outputs[q.output][:, k]
    lo, hi = q.window_h if q.window_h else (chunk.times_h[0], chunk.times_h[-1])
    wanted = np.array([t for t in sampling_h if lo - 1e-9 <= t <= hi + 1e-9])
    idx = np.searchsorted(chunk.times_h, wanted - 1e-9)
    idx = idx[idx < len(chunk.times_h)]
    t = chunk.times_h[idx]
    return MEASURES[q.measure](t - t[0], chunk.outputs[q.output][:, idx])


def clinical_values(chunk: Chunk, output: str, day: float) -> np.ndarray:
    """Per-patient value of a clinical output at the visit nearest ``day``.

    ``output`` is a scale total or rate (``bfmdrs_movement``, ``gpi_hz``...), a symptom, or
    ``<item>.<region>`` for per-region items (``severity.leg_right``).
    """
    c = chunk.clinical
    k = int(np.argmin(np.abs(c.visit_days - day)))
    if "." in output:
        item, region = output.split(".", 1)
        if item not in c.regions or region not in REGIONS:
            raise InputError("quantity.output", output, f"<item>.<region> with item in {sorted(c.regions)}")
        return c.regions[item][:, k, REGIONS.index(region)]
    table = c.totals | c.symptoms
    if output not in table:
        raise InputError("quantity.output", output, "a clinical output: " + ", ".join(sorted(table)))
    return table[output][:, k]


def summarise_quantity(values: np.ndarray, q: Quantity) -> float:
    if q.statistic == "fraction_at_most":
        v = values[np.isfinite(values)]
        return float(np.mean(v <= q.at_most)) if v.size else float("nan")
    return summarise(values, q.statistic)


def summarise(values: np.ndarray, statistic: str) -> float:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan")
    if statistic == "geometric_mean":
        return float(np.exp(np.mean(np.log(np.maximum(v, 1e-300)))))
    if statistic == "arithmetic_mean":
        return float(np.mean(v))
    if statistic == "median":
        return float(np.median(v))
    if statistic == "arithmetic_sd":
        return float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    if statistic == "fraction_positive":
        return float(np.mean(v > 0))
    if statistic == "geometric_cv":
        return float(100 * np.sqrt(np.expm1(np.var(np.log(np.maximum(v, 1e-300)), ddof=1))))
    return float(100 * np.std(v, ddof=1) / np.mean(v))


def simulated_value(metric: Metric, chunks: dict[str, Chunk], sampling_h: list[float]) -> float:
    if metric.quantity is not None:
        q = metric.quantity
        return summarise_quantity(quantity_values(q, chunks, sampling_h), q)
    if metric.correlation_of is not None:
        a, b = (quantity_values(q, chunks, sampling_h) for q in metric.correlation_of)
        return float(stats.spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")
    num, den = metric.ratio_of
    return (summarise_quantity(quantity_values(num, chunks, sampling_h), num)
            / summarise_quantity(quantity_values(den, chunks, sampling_h), den))


def judge(metric: Metric, simulated: float) -> tuple[bool, str]:
    """Apply the metric's tolerance rule; returns (passed, the rule in words)."""
    obs, rule = metric.observed, metric.rule
    if not np.isfinite(simulated):
        return False, "simulated value is not finite"
    if rule.type == "relative":
        return abs(simulated / obs.value - 1) <= rule.within, f"within ±{rule.within:.0%} of observed"
    if rule.type == "ci":
        return obs.ci_low <= simulated <= obs.ci_high, f"inside published CI [{obs.ci_low}, {obs.ci_high}]"
    if rule.type == "range":
        return (obs.range_low <= simulated <= obs.range_high,
                f"inside published range [{obs.range_low}, {obs.range_high}]")
    if rule.type == "sd":
        return abs(simulated - obs.value) <= obs.sd, f"within one SD ({obs.sd}) of observed"
    return _cv_consistent(obs.value, simulated, obs.n)


def _cv_consistent(observed_cv: float, simulated_cv: float, n: int) -> tuple[bool, str]:
    """Is the observed geometric CV a plausible sample (n subjects) from the simulated spread?

    The sample log-variance s² of n subjects follows σ² χ²(n-1)/(n-1); the observed CV passes when
    it lies inside the central 95 % of that distribution.
    """
    sigma2 = np.log1p((simulated_cv / 100) ** 2)
    lo, hi = (sigma2 * stats.chi2.ppf(q, n - 1) / (n - 1) for q in (0.025, 0.975))
    cv_lo, cv_hi = (100 * np.sqrt(np.expm1(x)) for x in (lo, hi))
    return bool(cv_lo <= observed_cv <= cv_hi), f"observed CV inside 95% sampling range [{cv_lo:.0f}, {cv_hi:.0f}] % for n={n}"


def evaluate_case(case: Case, registry: Registry | None = None) -> list[MetricResult]:
    registry = registry or default_registry()
    chunks = simulate_case(case, registry)
    out = []
    for m in case.metrics:
        sim = simulated_value(m, chunks, case.sampling_h)
        passed, words = judge(m, sim)
        out.append(MetricResult(f"{case.id}.{m.id}", case.kind, _describe(m), m.observed.value,
                                round(sim, 6) if np.isfinite(sim) else float("nan"), words, passed, m.note))
    return out


def _describe(m: Metric) -> str:
    def one(q: Quantity) -> str:
        day = f" day {q.at_day:g}" if q.at_day is not None else ""
        day += f" minus day {q.change_from_day:g}" if q.change_from_day is not None else ""
        return f"{q.statistic} {q.measure}{day} {q.output} [{q.arm}]"
    if m.quantity:
        return one(m.quantity)
    if m.correlation_of:
        return f"Spearman correlation of {one(m.correlation_of[0])} with {one(m.correlation_of[1])}"
    return f"ratio {one(m.ratio_of[0])} / {one(m.ratio_of[1])}"


def evaluate_cases(cases: list[Case], registry: Registry | None = None) -> list[MetricResult]:
    return [r for case in cases for r in evaluate_case(case, registry)]
