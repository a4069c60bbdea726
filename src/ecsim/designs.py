"""Trial designs beyond parallel arms (layer L7): crossover with washout, screening on an
inclusion criterion, flexible (response-guided) titration (`titrated_chunk`).

**Crossover** (`trial.crossover`). Each patient takes the scenario's arms one after the other, in
the order of the sequence they are randomised to: treatment in period 1 on days [0, L), nothing
during the washout [L, L + W), the next treatment on [L + W, 2L + W), and so on. A sequence is
simulated as one timeline (one arm whose regimen is every treatment windowed into its period), so
whatever a treatment leaves behind when it stops — drug still in the body, FAAH or CB1 states,
corticostriatal weights, botulinum toxin that has not worn off, the slow part of stimulation —
carries over into the next period by the model itself, not by an added carry-over term. The
expectation (placebo) response runs from day 0 through every period: patients stay blinded, so it
is part of every period's change (mostly of the first: its time constant is a week), a period effect
that the crossover analysis removes.

Every virtual patient is simulated in every sequence (the same patient under each order, like the
arms of a parallel run); the statistics use each patient's randomised sequence only. Randomisation
is in permuted blocks of twice the number of sequences, in order of enrolment, from
``population.seed``: a patient's sequence depends on the seed and their enrolment number only.

Statistics (`crossover_statistics`), on the primary scale, per period: the change from the period's
first day (its baseline visit) to its last day. For each arm against the control arm:
the within-patient difference (arm's period minus control's period) with a paired t 95 % CI, and
for two-period, two-sequence designs (AB/BA) the analysis of Hills & Armitage (1979, Br J Clin
Pharmacol 8:7-20, doi:10.1111/j.1365-2125.1979.tb04633.x): the treatment effect is half the
difference between sequences of the mean period difference (period 1 − period 2), tested with a
two-sample t test on those period differences (it removes a period effect); the period effect is
half their sum; carry-over is tested with a two-sample t test on each patient's sum of the two
periods (Hills & Armitage: low power in real trials, hence often read at P < 0.10). Because every
period starts with a baseline visit, a more direct check is added: each patient's period-2 baseline
minus their period-1 baseline, compared between the two sequences, which differ only by what period
1's treatment left behind (two-sample t test; A first minus B first). Taking each patient's own
change removes the differences between the patients of the two sequences (a phenotype mix, an
unlucky randomisation), which the raw period-2 baselines would count as carry-over.

**Screening** (`population.inclusion`). Candidates 0, 1, 2, ... are rated at the baseline visit
without treatment and enrolled in that order until ``population.n`` meet the criterion
(`enrolment`); every chunk re-derives which of its patients are enrolled (`meets_inclusion`: a
patient's rating depends on its number only), and the others are left out of every statistic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError
from scipy import stats

from .errors import InputError
from .intervals import mean_interval
from .scenario import Arm, Botulinum, CoMedication, DosingStep, Interventions, Scenario, Stimulation

ALLOCATION_STREAM = (7919, 102)
"""Key of the randomisation blocks: after the clinical layer's (seed, 7919) streams 1-6."""


@dataclass(frozen=True)
class Period:
    """Arm ``treatment`` given on days [start_day, end_day) of the timeline."""

    treatment: str
    start_day: float
    end_day: float


@dataclass(frozen=True)
class Sequence:
    """Crossover sequence ``index`` of ``count``: its periods in order."""

    index: int
    count: int
    periods: tuple[Period, ...]

    @property
    def order(self) -> list[str]:
        return [p.treatment for p in self.periods]


def sequence_orders(scenario: Scenario) -> list[list[str]]:
    """The crossover's sequences as lists of arm names: as given, or every rotation of the arms in
    the order listed (AB, BA for two; a Latin square for more)."""
    given = scenario.trial.crossover.sequences
    if given is not None:
        return [list(s) for s in given]
    names = [a.name for a in scenario.arms]
    return [names[i:] + names[:i] for i in range(len(names))]


def period_bounds(scenario: Scenario) -> list[tuple[float, float]]:
    """[start, end) day of each period: period k starts at k (L + W)."""
    c = scenario.trial.crossover
    periods = max(len(s) for s in sequence_orders(scenario))
    return [(float(k * (c.period_days + c.washout_days)), float(k * (c.period_days + c.washout_days) + c.period_days))
            for k in range(periods)]


def check_crossover(scenario: Scenario) -> None:
    """Everything a crossover needs of a scenario, as one-line InputErrors naming the field."""
    t, c = scenario.trial, scenario.trial.crossover
    names = [a.name for a in scenario.arms]
    if len(names) < 2:
        raise InputError("arms", names, "at least two arms in a crossover")
    if t.control_arm is None:
        raise InputError("trial.control_arm", None, "an arm name: a crossover compares every arm with it")
    if t.primary_day is not None:
        raise InputError("trial.primary_day", t.primary_day,
                         "nothing in a crossover (the end point is the last day of each period)")
    if t.dropout is not None:
        raise InputError("trial.dropout", "set",
                         "nothing in a crossover (withdrawal is modelled for parallel arms only)")
    orders = sequence_orders(scenario)
    for order in orders:
        unknown = [x for x in order if x not in names]
        if unknown:
            raise InputError("trial.crossover.sequences", unknown[0], f"names of arms: {', '.join(names)}")
    if len({len(o) for o in orders}) != 1:
        raise InputError("trial.crossover.sequences", [len(o) for o in orders], "sequences of one length (periods)")
    unused = [x for x in names if not any(x in o for o in orders)]
    if unused:
        raise InputError("trial.crossover.sequences", unused[0], "sequences that use every arm")
    for name in names:
        if name != t.control_arm and not any(name in o and t.control_arm in o for o in orders):
            raise InputError("trial.crossover.sequences", name, f"a sequence with both {name} and the control arm "
                             f"{t.control_arm}")
        _check_both_orders(name, t.control_arm, orders)
    last = period_bounds(scenario)[-1][1]
    if scenario.duration_days < last - 1e-9:
        raise InputError("duration_days", scenario.duration_days,
                         f"at least {last:g} for {len(orders[0])} periods of {c.period_days} days with "
                         f"{c.washout_days}-day washouts")
    sequence_arms(scenario)


def _check_both_orders(name: str, control: str, orders: list[list[str]]) -> None:
    """Refuse a comparison with the control that is never made in the other order: its
    within-patient difference would be the period effect (mostly the expectation response, which
    develops in period 1) as much as the treatment's, and nothing could separate the two."""
    before = {o.index(name) < o.index(control) for o in orders if name in o and control in o and name != control}
    if len(before) == 1:
        first, second = (name, control) if before.pop() else (control, name)
        raise InputError("trial.crossover.sequences", [list(o) for o in orders],
                         f"sequences that give {name} both before and after {control} (every one here gives "
                         f"{first} before {second}: the period effect cannot be told from the treatment's)")


def sequence_arms(scenario: Scenario) -> tuple[list[Arm], list[Sequence]]:
    """One arm per sequence (its treatments windowed into their periods) and the sequences."""
    orders = sequence_orders(scenario)
    bounds = period_bounds(scenario)
    arms = {a.name: a for a in scenario.arms}
    out, sequences = [], []
    for i, order in enumerate(orders):
        periods = tuple(Period(name, *bounds[k]) for k, name in enumerate(order))
        out.append(_timeline(f"seq{i + 1}", [(arms[p.treatment], p) for p in periods]))
        sequences.append(Sequence(i, len(orders), periods))
    return out, sequences


def crossover_scenario(scenario: Scenario) -> tuple[Scenario, list[Sequence]]:
    """The scenario a crossover is simulated as: one arm per sequence, same population and trial."""
    arms, sequences = sequence_arms(scenario)
    return scenario.model_copy(update={"arms": arms}), sequences


def _timeline(prefix: str, given: list[tuple[Arm, Period]]) -> Arm:
    """One arm: each arm's regimen windowed into its period."""
    order = [p.treatment for _, p in given]
    name = ".".join([prefix, *order])
    parts = [window_arm(arm, p.start_day, p.end_day) for arm, p in given]
    fields: dict = {"name": name if len(name) <= 60 else prefix, "cbd": [], "thc": []}
    dosed = [arm for arm, _ in given if arm.cbd or arm.thc]
    for key in ("product", "route", "food", "formulation"):
        values = {getattr(arm, key) for arm in dosed}
        if len(values) > 1:
            raise InputError("trial.crossover.sequences", order, f"arms that take CBD or THC with one {key} within a "
                             f"sequence (one timeline; {', '.join(sorted(str(v.value) for v in values))} differ)")
        if values:
            fields[key] = values.pop()
    comedication: dict[str, list[DosingStep]] = {}
    for part in parts:
        fields["cbd"] += part["cbd"]
        fields["thc"] += part["thc"]
        for drug, steps in part["comedication"].items():
            comedication.setdefault(drug, []).extend(steps)
        for key in ("botulinum", "gpi_stimulation"):
            if part.get(key) is not None:
                if fields.get(key) is not None:
                    raise InputError("trial.crossover.sequences", order, f"at most one arm with {key} per sequence")
                fields[key] = part[key]
    fields["comedication"] = [CoMedication(drug=d, steps=s) for d, s in comedication.items()]
    try:
        return Arm(**fields)
    except ValidationError as exc:
        raise InputError("trial.crossover.sequences", order, f"sequences whose combined regimen is a valid arm "
                         f"({exc.errors()[0]['msg']})") from None


def window_arm(arm: Arm, start: float, end: float) -> dict:
    """The parts of ``arm``'s regimen given on days [0, end - start), moved to [start, end).

    Dosing steps are shifted and cut at ``end``; toxin sessions and stimulation are shifted and
    stopped at ``end``. Treatments the model gives no end to are refused: interventions (constant
    from day 0), physiotherapy (its effect has no offset) and painkillers (no end day)."""
    where = f"arms.{arm.name}"
    if arm.titration is not None:
        raise InputError(f"{where}.titration", "set", "nothing in a crossover (write the doses as dosing steps)")
    for field, value in arm.interventions.model_dump().items():
        if value != getattr(Interventions(), field):
            raise InputError(f"{where}.interventions.{field}", value, "0 in a crossover (interventions are given "
                             "from day 0 with no end; use a parallel design)")
    if arm.physiotherapy is not None:
        raise InputError(f"{where}.physiotherapy", "set", "nothing in a crossover (the model's physiotherapy "
                         "effect has no end)")
    if arm.painkiller is not None:
        raise InputError(f"{where}.painkiller", "set", "nothing in a crossover (a painkiller has no end day)")
    length = end - start
    _check_starts_inside_period(arm, length, where)
    return {"cbd": shifted_steps(arm.cbd, start, end), "thc": shifted_steps(arm.thc, start, end),
            "comedication": {co.drug: shifted_steps(co.steps, start, end) for co in arm.comedication},
            "botulinum": _windowed_toxin(arm.botulinum, start, length, where),
            "gpi_stimulation": _windowed_stimulation(arm.gpi_stimulation, start, end)}


def _check_starts_inside_period(arm: Arm, length: float, where: str) -> None:
    """Every dosing step, toxin session and stimulation of the arm must start inside its period
    (days counted from the period's start): one that starts later would be dropped by windowing,
    leaving a period without the treatment it names."""
    starts = [(f"{label}.{i}.from_day", step.from_day) for label, steps in
              [("cbd", arm.cbd), ("thc", arm.thc)] + [(f"comedication.{k}.steps", co.steps)
                                                    for k, co in enumerate(arm.comedication)]
              for i, step in enumerate(steps)]
    starts += [("botulinum.first_day", arm.botulinum.first_day)] if arm.botulinum is not None else []
    starts += [("gpi_stimulation.from_day", arm.gpi_stimulation.from_day)] if arm.gpi_stimulation is not None else []
    for field, day in starts:
        if day >= length:
            raise InputError(f"{where}.{field}", day, f"a day before {length:g} in a crossover: days count from the "
                             f"start of each {length:g}-day period, and a treatment starting later is never given")


def shifted_steps(steps: list[DosingStep], start: float, end: float) -> list[DosingStep]:
    """Dosing steps moved by ``start`` days and cut at ``end`` (steps left empty are dropped)."""
    out = []
    for s in steps:
        first = s.from_day + int(start)
        last = int(end) if s.to_day is None else min(s.to_day + int(start), int(end))
        if first < last:
            out.append(DosingStep(dose=s.dose, times_h=s.times_h, from_day=first, to_day=last))
    return out


def _windowed_toxin(b: Botulinum | None, start: float, length: float, where: str) -> Botulinum | None:
    """The period's one toxin session, moved to the period; none if it falls after the period.
    A reinjection inside a period is refused: the session list of `treatments.botulinum` has no
    end, so a second session would go on after the period. ``every_days`` 730 (the largest allowed,
    the longest run) leaves one session in any run."""
    if b is None or b.first_day >= length:
        return None
    if b.first_day + b.every_days < length:
        raise InputError(f"{where}.botulinum.every_days", b.every_days,
                         f"at least {length - b.first_day:g} in a crossover with {length:g}-day periods "
                         "(one session per period)")
    return Botulinum(product=b.product, units=b.units, region=b.region, first_day=b.first_day + start, every_days=730)


def _windowed_stimulation(s: Stimulation | None, start: float, end: float) -> Stimulation | None:
    if s is None or s.from_day + start >= end:
        return None
    stop = end if s.to_day is None else min(s.to_day + start, end)
    return Stimulation(from_day=s.from_day + start, to_day=stop, sham=s.sham)


# ---------------------------------------------------------------------------------------------
# Inclusion criteria: screening on the baseline score

SCREEN_BATCH = 1024
"""Candidates screened at a time (the population's block of random draws)."""
MAX_SCREENED_PER_ENROLLED = 20
"""At most this many candidates are screened per place in the trial: a criterion that fewer than
1 in 20 meet is refused (the screen failures are simulated too, so they cost as much as patients)."""


@dataclass(frozen=True)
class Enrolment:
    """Outcome of screening: candidates 0 .. screened-1 were screened and ``enrolled`` met the
    criterion (the last candidate screened is the last one enrolled)."""

    criterion: str
    screened: int
    enrolled: int

    @property
    def screen_failure_fraction(self) -> float:
        return (self.screened - self.enrolled) / self.screened

    def summary(self) -> dict:
        return {"criterion": self.criterion, "screened": self.screened, "enrolled": self.enrolled,
                "screen_failures": self.screened - self.enrolled,
                "screen_failure_fraction": round(self.screen_failure_fraction, 4)}


def inclusion_scale(scenario: Scenario) -> str:
    from .clinical_summary import primary_scale
    return scenario.population.inclusion.scale or primary_scale(scenario.population.phenotype,
                                                                 scenario.trial.primary_scale)


def baseline_scores(scenario: Scenario, registry, scale: str, start: int, stop: int) -> np.ndarray:
    """Screening rating of ``scale`` for candidates [start, stop): the baseline visit (day 0,
    visit 0's rater) without any treatment, which is what every arm without a day-0 intervention
    rates on day 0 (the drug layers start drug-free)."""
    from .circuit.clinical import drug_free_drivers
    from .simulation import assess_population
    from .treatments.course import Course
    n = stop - start
    traj = assess_population(scenario, registry, np.array([0.0]), drug_free_drivers(n, 1), Course(), start, stop)
    return traj.totals[scale][:, 0]


def meets_inclusion(scenario: Scenario, registry, start: int, stop: int) -> np.ndarray:
    """Whether each candidate [start, stop) meets ``population.inclusion`` at screening."""
    inc = scenario.population.inclusion
    x = baseline_scores(scenario, registry, inclusion_scale(scenario), start, stop)
    ok = np.ones(len(x), dtype=bool)
    if inc.at_least is not None:
        ok &= x >= inc.at_least
    if inc.at_most is not None:
        ok &= x <= inc.at_most
    return ok


def enrolment(scenario: Scenario, registry) -> Enrolment:
    """Screen candidates in patient order until ``population.n`` meet the criterion; refuse a
    criterion that fewer than 1 in `MAX_SCREENED_PER_ENROLLED` meet (InputError)."""
    n = scenario.population.n
    inc = scenario.population.inclusion
    criterion = inc.describe(inclusion_scale(scenario))
    limit = MAX_SCREENED_PER_ENROLLED * n
    found, start = 0, 0
    while start < limit:
        stop = min(start + SCREEN_BATCH, limit)
        ok = meets_inclusion(scenario, registry, start, stop)
        if found + ok.sum() >= n:
            last = start + int(np.flatnonzero(ok)[n - found - 1])
            return Enrolment(criterion, last + 1, n)
        found += int(ok.sum())
        start = stop
    raise InputError("population.inclusion", criterion, f"a criterion at least 1 in {MAX_SCREENED_PER_ENROLLED} "
                     f"patients meet: {found} of {limit} screened met it ({n} needed)")


# ---------------------------------------------------------------------------------------------
# Randomisation and statistics


def allocation(seed: int, patients: np.ndarray, sequences: int) -> np.ndarray:
    """Sequence index (0 .. sequences-1) of each patient, patients given in order of enrolment:
    permuted blocks of 2 x sequences, block b shuffled by its own generator (seed, stream, b)."""
    size = 2 * sequences
    n = len(patients)
    blocks = [np.random.default_rng([seed, *ALLOCATION_STREAM, b]).permutation(np.repeat(np.arange(sequences), 2))
              for b in range(-(-n // size))]
    return np.concatenate(blocks)[:n] if blocks else np.zeros(0, dtype=int)


def _t_ci(x: np.ndarray) -> dict:
    """Mean and its 95 % t interval (n - 1 degrees of freedom)."""
    if len(x) < 2:
        return {"mean": round(float(np.mean(x)), 3) if len(x) else None, "ci95": None, "n": int(len(x))}
    m, lo, hi = mean_interval(x)
    return {"mean": round(m, 3), "ci95": [round(lo, 3), round(hi, 3)], "n": int(len(x))}


def _two_sample(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> dict:
    """scale x (mean(a) - mean(b)) with its pooled-variance t interval and two-sided P."""
    df = len(a) + len(b) - 2
    if not (len(a) and len(b)):
        return {"mean": None, "ci95": None, "t": None, "df": max(df, 0), "p": None}
    est = scale * float(np.mean(a) - np.mean(b))
    if df < 1:
        return {"mean": round(est, 3), "ci95": None, "t": None, "df": df, "p": None}
    pooled = sum((len(x) - 1) * np.var(x, ddof=1) for x in (a, b) if len(x) > 1) / df
    se = abs(scale) * float(np.sqrt(pooled * (1 / len(a) + 1 / len(b))))
    half = float(stats.t.ppf(0.975, df)) * se
    if not se > 0:   # no spread at all (a typical population): no test
        return {"mean": round(est, 3), "ci95": [round(est, 3), round(est, 3)], "t": None, "df": df, "p": None}
    t = est / se
    return {"mean": round(est, 3), "ci95": [round(est - half, 3), round(est + half, 3)], "t": round(t, 3),
            "df": df, "p": float(2 * stats.t.sf(abs(t), df))}


def hills_armitage(y_ab: np.ndarray, y_ba: np.ndarray) -> dict:
    """Two-period crossover analysis (Hills & Armitage 1979). ``y_ab``: (patients, 2) period
    outcomes of the sequence that takes A first; ``y_ba``: of the one that takes B first.
    Treatment effect A - B, period effect period 1 - period 2, carry-over (sum AB - sum BA)."""
    d_ab, d_ba = y_ab[:, 0] - y_ab[:, 1], y_ba[:, 0] - y_ba[:, 1]
    return {"treatment_effect": _two_sample(d_ab, d_ba, 0.5),
            "period_effect": _two_sample(d_ab, -d_ba, 0.5),
            "carryover": _two_sample(y_ab.sum(axis=1), y_ba.sum(axis=1))}


def _ha_p(y_ab: np.ndarray, y_ba: np.ndarray) -> float:
    return float(stats.ttest_ind(y_ab[:, 0] - y_ab[:, 1], y_ba[:, 0] - y_ba[:, 1]).pvalue)


def replicate_crossovers(y_ab: np.ndarray, y_ba: np.ndarray, size: int, replicates: int, seed: int) -> dict:
    """Share of replicate two-period trials (``size`` patients per sequence, drawn without
    replacement from the randomised groups) whose Hills-Armitage treatment test gives P < 0.05,
    and the same for the carry-over test."""
    rng = np.random.default_rng([seed, 4242, 19])
    hits = carry = 0
    with warnings.catch_warnings():   # small replicates of integer scores can be all alike: P is then NaN, not < 0.05
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(replicates):
            a = y_ab[rng.choice(len(y_ab), size, replace=False)]
            b = y_ba[rng.choice(len(y_ba), size, replace=False)]
            hits += _ha_p(a, b) < 0.05
            carry += stats.ttest_ind(a.sum(axis=1), b.sum(axis=1)).pvalue < 0.05
    return {"patients_per_sequence": size, "replicates": replicates, "share_significant": float(hits / replicates),
            "share_carryover_significant": float(carry / replicates)}


@dataclass
class _Group:
    """The patients randomised to one sequence: period outcomes and period baselines."""

    sequence: Sequence
    change: np.ndarray     # (patients, periods): last day of the period minus its first day
    baseline: np.ndarray   # (patients, periods)
    patients: np.ndarray
    phenotype: np.ndarray | None = None

    def only(self, rows: np.ndarray) -> "_Group":
        return _Group(self.sequence, self.change[rows], self.baseline[rows], self.patients[rows],
                      None if self.phenotype is None else self.phenotype[rows])


def randomised(results, seed: int) -> dict[str, np.ndarray]:
    """Per sequence arm, which of its (sound) patients were randomised to it: every patient is
    simulated in every sequence, the statistics use only the one each was allocated to."""
    arms = [r for r in results if getattr(r, "sequence", None) is not None]
    if not arms:
        return {}
    enrolled = np.unique(np.concatenate([np.concatenate([r.patients, np.fromiter(r.faults, int, len(r.faults))])
                                         for r in arms]))
    assigned = allocation(seed, enrolled, arms[0].sequence.count)
    return {r.name: assigned[np.searchsorted(enrolled, r.patients)] == r.sequence.index for r in arms}


def randomised_groups(results, scale: str, seed: int) -> list[_Group]:
    """Per sequence arm, the patients randomised to it and their period changes of ``scale``."""
    from .clinical_summary import visit_index
    arms = [r for r in results if getattr(r, "sequence", None) is not None]
    allocated = randomised(arms, seed)
    groups = []
    for r in arms:
        mine = allocated[r.name]
        v = r.clinical[scale][mine].astype(float)
        days = r.visit_days
        first = [visit_index(days, p.start_day) for p in r.sequence.periods]
        last = [visit_index(days, p.end_day) for p in r.sequence.periods]
        phenotype = r.labels["phenotype"][mine] if "phenotype" in r.labels else None
        groups.append(_Group(r.sequence, v[:, last] - v[:, first], v[:, first], r.patients[mine], phenotype))
    return groups


def crossover_statistics(results, scale: str, control: str, responder: float, size: int | None,
                         replicates: int, seed: int) -> dict:
    """The trial block of a crossover run (see the module docstring; docs/scenarios.md)."""
    groups = randomised_groups(results, scale, seed)
    seq0 = groups[0].sequence
    treatments = list(dict.fromkeys(t for g in groups for t in g.sequence.order))
    length = seq0.periods[0].end_day - seq0.periods[0].start_day
    doc = {"design": "crossover", "primary_scale": scale, "primary_day": length, "control_arm": control,
           "end_point": f"change of the primary scale from the first day of each period to its last (day {length:g} "
                        "of the period: primary_day counts from the period's start)",
           "responder_definition": f"improvement of at least {responder:.0%} of the period's baseline",
           "periods": [[p.start_day, p.end_day] for p in seq0.periods],
           "sequences": {r.name: {"order": r.sequence.order, "patients": int(len(g.patients))}
                         for r, g in zip([r for r in results if getattr(r, "sequence", None)], groups)},
           "allocation": f"permuted blocks of {2 * seq0.count}, in order of enrolment, from population.seed",
           "arms": {}, "comparisons": {}}
    for t in treatments:
        y, b = _pooled(groups, t)
        rated = b > 0
        doc["arms"][t] = {"change": _t_ci(y),
                          "responders": round(float(np.mean(-y[rated] >= responder * b[rated])), 3)
                          if rated.any() else None}
    for t in treatments:
        if t == control:
            continue
        comparison = _comparison(groups, t, control, size, replicates, seed)
        doc["comparisons"][t] = comparison
        best = (comparison["hills_armitage"] or {}).get("treatment_effect") or comparison["within_patient_difference"]
        doc["arms"][t]["difference_vs_control"] = {"mean": best["mean"], "ci95": best["ci95"]}
        if "replicate_trials" in comparison:   # where the tables of every design look for it
            doc["arms"][t]["replicate_trials"] = comparison["replicate_trials"]
    if groups[0].phenotype is not None:
        doc["by_phenotype"] = _crossover_by_phenotype(groups, treatments, control)
    return doc


def _pooled(groups: list[_Group], t: str) -> tuple[np.ndarray, np.ndarray]:
    """Period changes and period baselines of every patient's period on arm ``t``."""
    y = np.concatenate([g.change[:, k] for g in groups for k, x in enumerate(g.sequence.order) if x == t])
    b = np.concatenate([g.baseline[:, k] for g in groups for k, x in enumerate(g.sequence.order) if x == t])
    return y, b


def _crossover_by_phenotype(groups: list[_Group], treatments: list[str], control: str) -> dict:
    """Per phenotype of a mix: each arm's period change and the within-patient difference from control."""
    out = {}
    for phenotype in sorted(set(np.concatenate([g.phenotype for g in groups]).tolist())):
        mine = [g.only(g.phenotype == phenotype) for g in groups]
        out[phenotype] = {}
        for t in treatments:
            entry = {"change": _t_ci(_pooled(mine, t)[0])}
            if t != control:
                d = [g.change[:, g.sequence.order.index(t)] - g.change[:, g.sequence.order.index(control)]
                     for g in mine if t in g.sequence.order and control in g.sequence.order]
                entry["within_patient_difference"] = _t_ci(np.concatenate(d))
            out[phenotype][t] = entry
    return out


def _comparison(groups: list[_Group], t: str, control: str, size: int | None, replicates: int, seed: int) -> dict:
    """Arm ``t`` against ``control``: within-patient differences; Hills-Armitage for AB/BA."""
    d = [g.change[:, g.sequence.order.index(t)] - g.change[:, g.sequence.order.index(control)]
         for g in groups if t in g.sequence.order and control in g.sequence.order]
    out = {"within_patient_difference": _t_ci(np.concatenate(d))}
    first = [g for g in groups if g.sequence.order == [t, control]]
    second = [g for g in groups if g.sequence.order == [control, t]]
    if not (first and second):
        out["hills_armitage"] = None
        return out
    y_ab, y_ba = (np.concatenate([g.change for g in x]) for x in (first, second))
    out["hills_armitage"] = hills_armitage(y_ab, y_ba)
    b_ab, b_ba = (np.concatenate([g.baseline for g in x]) for x in (first, second))
    # each patient's own rise or fall from the period-1 baseline: differences between the patients
    # of the two sequences (a phenotype mix, an unlucky randomisation) cancel
    out["carryover_at_period_2_baseline"] = _two_sample(b_ab[:, 1] - b_ab[:, 0], b_ba[:, 1] - b_ba[:, 0])
    usable = min(size or 0, len(y_ab) // 2, len(y_ba) // 2)
    if size is not None and usable >= 2:
        out["replicate_trials"] = {"requested": size} | replicate_crossovers(y_ab, y_ba, usable, replicates, seed)
    return out


# ---------------------------------------------------------------------------------------------
# Titration

TITRATION_STREAM = (7919, 103)
"""Key of the uniforms that decide dose-limiting adverse effects at each titration step."""
COURSE_DAYS = 98.0
"""The course over which `treatments.adverse` gives event probabilities: the Epidiolex label trials'
14 weeks (docs/adverse.md)."""
THRESHOLD_EVENTS = ("thc_psychoactive",)
"""Events that happen at the first dose above a patient's own threshold (not at a rate over time)."""


def titrated_chunk(scenario: Scenario, arm: Arm, registry, simulate, start: int, stop: int):
    """Flexible (response-guided) titration for patients [start, stop): the level each patient
    ends on, and their trajectories on it.

    Why it is exact: a patient who escalates to level k and holds it has, up to the decision to
    hold (the visit at day k x step), exactly the inputs of the forced schedule that escalates
    to the top level, and from then on the inputs of the forced schedule that stops at k. The
    model is causal (nothing before a time depends on a dose after it; visit drivers average the
    24 h before the visit; rater noise is drawn per visit number), so the patient's whole
    trajectory is the forced schedule F_k's, and the decision at step j can be read from F_j itself
    (its visit at day j x step comes before its first dose above level j). So the K forced schedules
    are simulated one after the other for the chunk and each patient keeps F_k at the level the
    rule stops them at; levels no patient reaches are not simulated.

    Rule, at the visit ending step j (patient on level j < K): hold if the primary scale improved
    from baseline by at least ``trial.responder_fraction`` (a responder; baseline > 0), or if a
    dose-limiting adverse effect happened during the step; else go up one level. Dose-limiting:
    one of ``titration.dose_limiting`` attributable to the drug, i.e. its probability over the
    regimen at level j (`treatments.adverse` on F_j's last-day exposure) above the undosed
    probability; a rate event's course probability p becomes 1 - (1 - p)^(step / 98 d) per step
    (constant hazard over the label trials' 14 weeks), a threshold event (THC psychoactivity)
    happens at the first level whose dose exceeds the patient's threshold (one uniform per patient).
    """
    from .clinical_summary import primary_scale, visit_index
    from .exposure import exposure_metrics
    from .population import block_normals
    from scipy.special import ndtr
    t = arm.titration
    levels, n = len(t.levels), stop - start
    scale = primary_scale(scenario.population.phenotype, scenario.trial.primary_scale)
    u = ndtr(block_normals((scenario.population.seed, *TITRATION_STREAM), start, stop, levels + 1))
    chosen = np.full(n, levels - 1)
    reason = np.full(n, "top_level", dtype=object)
    decided = np.zeros(n, dtype=bool)
    kept = None
    for k in range(levels):
        chunk = simulate(arm.forced(k))
        stop_here = ~decided
        if k < levels - 1:
            visit = visit_index(chunk.clinical.visit_days, (k + 1) * t.step_days)
            score = chunk.clinical.totals[scale]
            base = score[:, 0]
            responded = (base > 0) & (base - score[:, visit] >= scenario.trial.responder_fraction * base)
            limited = _dose_limiting(chunk, t, u[:, k], u[:, levels], registry, exposure_metrics)
            stop_here &= responded | limited
            reason[stop_here] = np.where(responded[stop_here], "responded", "dose_limiting")
        chosen[stop_here] = k
        kept = chunk if kept is None else _with_rows(kept, chunk, stop_here)
        decided |= stop_here
        if decided.all():
            break
    labels = {"titration_level": chosen + 1, "titration_reason": reason.astype(str)}
    return _replace_labels(kept, kept.labels | labels)


def _dose_limiting(chunk, t, u_step: np.ndarray, u_threshold: np.ndarray, registry, exposure_metrics) -> np.ndarray:
    """Whether each patient has a dose-limiting adverse effect during a step at this chunk's
    (held) level: drug-attributable probability of each listed event (see `titrated_chunk`)."""
    from .treatments.adverse import adverse_effects
    if not t.dose_limiting:
        return np.zeros(len(u_step), dtype=bool)
    e = exposure_metrics(chunk.times_h, chunk.outputs, chunk.values)
    n = len(u_step)
    on = adverse_effects(e, e["cbd_daily_mg"], registry)
    off = adverse_effects({k: np.zeros(n) for k in e}, np.zeros(n), registry)
    excess = {k: np.clip(on[k] - off[k], 0.0, 1.0) for k in t.dose_limiting}
    rate = [excess[k] for k in excess if k not in THRESHOLD_EVENTS]
    p_rate = 1.0 - np.prod([1.0 - p for p in rate], axis=0) if rate else np.zeros(n)
    per_step = 1.0 - (1.0 - p_rate) ** (t.step_days / COURSE_DAYS)
    threshold = [excess[k] for k in excess if k in THRESHOLD_EVENTS]
    p_threshold = 1.0 - np.prod([1.0 - p for p in threshold], axis=0) if threshold else np.zeros(n)
    return (u_step < per_step) | (u_threshold < p_threshold)


def _with_rows(kept, new, rows: np.ndarray):
    """``kept`` with the patients ``rows`` taken from ``new`` (same patients, same grid)."""
    from dataclasses import replace as dc_replace

    def mix(a: dict, b: dict) -> dict:
        out = {}
        for name, x in a.items():
            y = b[name]
            x, y = np.asarray(x), np.asarray(y)
            if x.ndim and len(x) == len(rows) and x.shape == y.shape:
                out[name] = np.where(rows.reshape((-1,) + (1,) * (x.ndim - 1)), y, x)
            else:
                out[name] = x
        return out

    clinical = None
    if kept.clinical is not None:
        c, d = kept.clinical, new.clinical
        clinical = dc_replace(c, totals=mix(c.totals, d.totals), regions=mix(c.regions, d.regions),
                              symptoms=mix(c.symptoms, d.symptoms),
                              converged=np.where(rows[:, None], d.converged, c.converged))
    return dc_replace(kept, outputs=mix(kept.outputs, new.outputs), values=mix(kept.values, new.values),
                      states=mix(kept.states, new.states), clinical=clinical, labels=mix(kept.labels, new.labels))


def _replace_labels(chunk, labels: dict):
    from dataclasses import replace as dc_replace
    return dc_replace(chunk, labels=labels)


def titration_statistics(results) -> dict | None:
    """Per titrated arm: the levels, the share of patients ending on each, why they stopped, and
    the final labelled daily dose (mg/day; body weight for mg/kg levels)."""
    out = {}
    for r in results:
        t = getattr(r, "titration", None)
        if t is None or "titration_level" not in r.labels:
            continue
        level = r.labels["titration_level"]
        dose = np.array([t.levels[k - 1].mg for k in level]) + \
            np.array([t.levels[k - 1].mg_per_kg for k in level]) * r.exposure["body_weight_kg"]
        daily = dose * len(t.times_h)
        reasons = r.labels["titration_reason"]
        out[r.name] = {
            "drug": t.drug, "rule": t.rule, "step_days": t.step_days,
            "levels": [_dose_text(d) for d in t.levels],
            "final_level_share": [round(float(np.mean(level == k + 1)), 4) for k in range(len(t.levels))],
            "stopped_because": {k: round(float(np.mean(reasons == k)), 4)
                                for k in ("responded", "dose_limiting", "top_level")},
            "final_daily_dose_mg": {"mean": round(float(np.mean(daily)), 2),
                                    "p05_p50_p95": [round(float(x), 2) for x in np.percentile(daily, [5, 50, 95])]}}
    return out or None


def _dose_text(d) -> str:
    return f"{d.mg:g} mg" if d.mg > 0 or d.mg_per_kg == 0 else f"{d.mg_per_kg:g} mg/kg"
