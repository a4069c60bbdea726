"""Simulate a case's study and compare each metric with the published value."""

from __future__ import annotations

import warnings

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ..circuit.clinical import ClinicalTrajectory
from ..circuit.regions import REGIONS
from ..designs import crossover_scenario
from ..ecs.species import species_registry
from ..errors import InputError
from ..exposure import exposure_metrics
from ..faults import patient_faults
from ..registry import Registry, default_registry
from ..scenario import Scenario
from ..simulation import Chunk, simulate_chunk
from ..treatments.adverse import CLOBAZAM_EXPOSURE, adverse_effects
from .cases import AdverseQuantity, Case, Metric, Quantity, case_visit_days
from .nca import MEASURES

WILSON_Z = float(stats.norm.ppf(0.975))


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


def case_registry(case: Case, registry: Registry) -> Registry:
    """The parameter set of the case's species (rat and mouse values where the registry has them),
    with the scenario's overrides."""
    return species_registry(registry, case.scenario.species).with_overrides(case.scenario.parameters)


def simulate_case(case: Case, registry: Registry, n: int | None = None, typical: bool = False
                  ) -> dict[str, Chunk]:
    """Every arm of the case's scenario, for ``n`` virtual patients (typical patient if asked), with
    the parameter set of `case_registry`."""
    scenario = case.scenario
    if typical:
        scenario = scenario.model_copy(update={"population": scenario.population.model_copy(
            update={"typical": True})})
    n = 1 if typical else (n or case.n_simulated)
    reg = case_registry(case, registry)
    if scenario.trial.crossover is not None:
        return crossover_chunks(scenario, n, reg)
    return {arm.name: simulate_chunk(scenario, arm, 0, n, registry=reg) for arm in scenario.arms}


def crossover_chunks(scenario: Scenario, n: int, registry: Registry) -> dict[str, Chunk]:
    """Each arm of a crossover case, read on the periods it is taken in.

    Every sequence is simulated for the same ``n`` patients as one timeline (`ecsim.designs`: the
    treatments moved into their periods, nothing in the washouts, whatever a period leaves behind
    carried into the next by the model itself). Arm A's chunk stacks, sequence after sequence, the
    patients' trajectories over A's period with time counted from the period's first day, so a
    quantity reads day d of arm A as day d of A's period, as a crossover's arms are written
    (docs/scenarios.md). Every patient is in every sequence, so for AB/BA the difference of the two
    arms' arithmetic means is the mean within-patient difference, and it equals the Hills-Armitage
    treatment effect (half the difference between sequences of period 1 minus period 2)."""
    timeline, sequences = crossover_scenario(scenario)
    days = np.array(case_visit_days(scenario))
    periods: dict[str, list[Chunk]] = {}
    for arm, sequence in zip(timeline.arms, sequences):
        chunk = simulate_chunk(timeline, arm, 0, n, registry=registry)
        for p in sequence.periods:
            periods.setdefault(p.treatment, []).append(period_chunk(chunk, p.start_day, p.end_day, days))
    return {name: stacked(parts) for name, parts in periods.items()}


def period_chunk(chunk: Chunk, start_day: float, end_day: float, visit_days: np.ndarray) -> Chunk:
    """The patients' trajectories over days [start_day, end_day] of a timeline, time counted from
    ``start_day``; clinical visits at ``visit_days`` from the period's first day."""
    t = chunk.times_h
    keep = (t >= start_day * 24 - 1e-9) & (t <= end_day * 24 + 1e-9)

    def window(arrays: dict) -> dict:
        return {k: v[:, keep] if np.ndim(v) >= 2 and v.shape[1] == len(t) else v for k, v in arrays.items()}

    clinical = chunk.clinical
    if clinical is not None:
        rel = clinical.visit_days - start_day
        k = np.array([int(np.argmin(np.abs(rel - d))) for d in visit_days])

        def at(arrays: dict) -> dict:
            return {name: v[:, k] for name, v in arrays.items()}

        clinical = ClinicalTrajectory(visit_days.astype(float), at(clinical.totals), at(clinical.regions),
                                      at(clinical.symptoms), clinical.converged[:, k])
    return Chunk(t[keep] - start_day * 24, window(chunk.outputs), chunk.values, window(chunk.states), clinical,
                 chunk.labels)


def stacked(parts: list[Chunk]) -> Chunk:
    """Chunks on one grid, their patients one after the other: per-patient arrays are joined, and a
    value given once for every patient (a scalar) becomes one per patient."""
    if len(parts) == 1:
        return parts[0]
    n = [len(next(iter(p.outputs.values()))) for p in parts]

    def join(dicts: list[dict]) -> dict:
        return {k: np.concatenate([np.broadcast_to(d[k], (m,) + np.shape(d[k])[1:]) if np.ndim(d[k]) else
                                   np.full(m, d[k]) for d, m in zip(dicts, n)])
                for k in dicts[0]}

    c = [p.clinical for p in parts]
    clinical = None if c[0] is None else ClinicalTrajectory(
        c[0].visit_days, join([x.totals for x in c]), join([x.regions for x in c]), join([x.symptoms for x in c]),
        np.concatenate([x.converged for x in c]))
    return Chunk(parts[0].times_h, join([p.outputs for p in parts]), join([p.values for p in parts]),
                 join([p.states for p in parts]), clinical, join([p.labels for p in parts]))


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


def simulated_value(metric: Metric, chunks: dict[str, Chunk], sampling_h: list[float],
                    registry: Registry | None = None, crossover: bool = False) -> float:
    """The metric's simulated value; ``registry`` (the case's, `case_registry`) for adverse measures;
    ``crossover``: the chunks are a crossover's arms (`crossover_chunks`), for the null rule."""
    if metric.rule.type == "null_result":
        x, y = (quantity_values(q, chunks, sampling_h) for q in metric.difference_of)
        return null_share(x, y, metric.observed.n, metric.rule.replicates, crossover)
    if metric.adverse is not None:
        return adverse_share(metric.adverse, chunks[metric.adverse.arm], registry or default_registry())
    if metric.quantity is not None:
        q = metric.quantity
        return summarise_quantity(quantity_values(q, chunks, sampling_h), q)
    if metric.correlation_of is not None:
        a, b = (quantity_values(q, chunks, sampling_h) for q in metric.correlation_of)
        return float(stats.spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")
    first, second = metric.ratio_of or metric.difference_of
    x, y = (summarise_quantity(quantity_values(q, chunks, sampling_h), q) for q in (first, second))
    return x - y if metric.difference_of is not None else x / y


NULL_SEED = 19790101   # the replicate trials of the null rule are drawn the same way on every run


def null_share(x: np.ndarray, y: np.ndarray, n: int, replicates: int, crossover: bool, seed: int = NULL_SEED
               ) -> float:
    """Share of replicate trials of ``n`` patients whose test of arm x against arm y gives P >= 0.05
    (DESIGN §4: a null trial must come out null at its size in most simulated replicates).

    Parallel arms: Welch's t-test, ``n`` split between the arms. Arms of one scenario hold the same
    virtual patients (row i of x and y is one patient), so each replicate randomises distinct patients
    to the two arms, as the trial did; until 2026-11-26 each arm was drawn from the whole pool, which
    let a patient sit in both arms of one trial and made null results too likely. Arms of different
    lengths are drawn independently. AB/BA crossover: each arm's values are stacked sequence after
    sequence (`crossover_chunks`), so row i of x and y is one patient in one sequence; the
    Hills-Armitage test compares the within-patient differences period 1 minus period 2 between the
    sequences (up to a sign common to both: the P value is the same), ``n`` split between the
    sequences. A test whose P is undefined (every value alike) counts as null."""
    sizes = ((n + 1) // 2, n // 2)
    if crossover:
        d, half = x - y, len(x) // 2
        groups, test = (d[:half], -d[half:]), lambda a, b: stats.ttest_ind(a, b).pvalue
        same_patients = False      # the two sequences are different patients
    else:
        groups, test = (x, y), lambda a, b: stats.ttest_ind(a, b, equal_var=False).pvalue
        same_patients = len(x) == len(y)
    finite = [np.isfinite(g) for g in groups]
    if same_patients:
        both = finite[0] & finite[1]
        if int(both.sum()) < sum(sizes):
            return float("nan")
    elif any(int(f.sum()) < k for f, k in zip(finite, sizes)):
        return float("nan")
    rng = np.random.default_rng([seed, n, replicates])
    null = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(replicates):
            if same_patients:
                chosen = np.flatnonzero(both)[rng.choice(int(both.sum()), sum(sizes), replace=False)]
                a, b = groups[0][chosen[:sizes[0]]], groups[1][chosen[sizes[0]:]]
            else:
                a, b = (g[f][rng.choice(int(f.sum()), k, replace=False)] for g, f, k in zip(groups, finite, sizes))
            null += not test(a, b) < 0.05
    return null / replicates


def adverse_share(a: AdverseQuantity, chunk: Chunk, registry: Registry) -> float:
    """Expected share of the arm's patients with the event: the mean of the patients' risks, averaged
    over being on clobazam (share ``clobazam_share``, or dosed in the arm) and on valproate (share
    ``valproate_share``), the two taken as independent. Exact in expectation: nothing is sampled."""
    exposure = exposure_metrics(chunk.times_h, chunk.outputs, chunk.values)
    daily_cbd_mg = np.asarray(chunk.values["cbd_daily_mg"], dtype=float)
    on_clobazam = exposure | {CLOBAZAM_EXPOSURE: np.ones_like(daily_cbd_mg)}   # the flag alone (> 0)
    total = 0.0
    for clobazam_weight, exp in ((a.clobazam_share, on_clobazam), (1 - a.clobazam_share, exposure)):
        for valproate_weight, valproate in ((a.valproate_share, True), (1 - a.valproate_share, False)):
            weight = clobazam_weight * valproate_weight
            if weight > 0:
                risk = adverse_effects(exp, daily_cbd_mg, registry, valproate=valproate)[a.event]
                total += weight * float(np.mean(risk[np.isfinite(risk)]))
    return total


def wilson_interval(events: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % with the default z; Wilson 1927)."""
    p = events / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def judge(metric: Metric, simulated: float) -> tuple[bool, str]:
    """Apply the metric's tolerance rule; returns (passed, the rule in words)."""
    obs, rule = metric.observed, metric.rule
    if not np.isfinite(simulated):
        return False, "simulated value is not finite"
    if rule.type == "relative":
        return abs(simulated / obs.value - 1) <= rule.within, f"within ±{rule.within:.0%} of observed"
    if rule.type == "absolute":
        return bool(abs(simulated - obs.value) <= rule.within), f"within ±{rule.within:g} of observed (absolute)"
    if rule.type == "null_result":
        return (bool(simulated >= 0.5),
                f"null (P >= 0.05) in at least half of {rule.replicates} replicate trials of {obs.n} patients")
    if rule.type == "binomial":
        lo, hi = wilson_interval(obs.events, obs.n)
        return (bool(lo <= simulated <= hi),
                f"inside the 95% Wilson interval [{lo:.3f}, {hi:.3f}] of {obs.events}/{obs.n}")
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
    reg = case_registry(case, registry)
    out = []
    for m in case.metrics:
        sim = simulated_value(m, chunks, case.sampling_h, reg, crossover=case.scenario.trial.crossover is not None)
        passed, words = judge(m, sim)
        note = "; ".join(x for x in (m.note, fault_note({a: chunks[a] for a in m.arms()})) if x)
        out.append(MetricResult(f"{case.id}.{m.id}", case.kind, _describe(m), m.observed.value,
                                round(sim, 6) if np.isfinite(sim) else float("nan"), words, passed, note))
    return out


def fault_note(chunks: dict[str, Chunk]) -> str:
    """Which arms lost patients to numerical faults (`ecsim.faults`): the statistics leave their
    non-finite values out, so a metric says how many it did without."""
    parts = []
    for arm, chunk in chunks.items():
        bad = int(np.sum(patient_faults(chunk.values, chunk.outputs, chunk.clinical) != ""))
        if bad:
            parts.append(f"{bad} of {next(iter(chunk.outputs.values())).shape[0]} "
                         f"patients of arm {arm} left out (numerical faults)")
    return "; ".join(parts)


def _describe(m: Metric) -> str:
    def one(q: Quantity) -> str:
        day = f" day {q.at_day:g}" if q.at_day is not None else ""
        day += f" minus day {q.change_from_day:g}" if q.change_from_day is not None else ""
        return f"{q.statistic} {q.measure}{day} {q.output} [{q.arm}]"
    if m.quantity:
        return one(m.quantity)
    if m.adverse:
        a = m.adverse
        comed = "".join(f", {share:g} on {drug}" for drug, share in (("clobazam", a.clobazam_share),
                                                                       ("valproate", a.valproate_share)) if share)
        return f"share with {a.event} [{a.arm}{comed}]"
    if m.correlation_of:
        return f"Spearman correlation of {one(m.correlation_of[0])} with {one(m.correlation_of[1])}"
    if m.difference_of:
        return f"difference {one(m.difference_of[0])} - {one(m.difference_of[1])}"
    return f"ratio {one(m.ratio_of[0])} / {one(m.ratio_of[1])}"


def evaluate_cases(cases: list[Case], registry: Registry | None = None) -> list[MetricResult]:
    return [r for case in cases for r in evaluate_case(case, registry)]
