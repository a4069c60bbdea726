"""Trial designs beyond parallel arms (layer L7): crossover with washout.

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
period starts with a baseline visit, a more direct check is added: the period-2 baselines of the two
sequences, which differ only by what period 1's treatment left behind (two-sample t test; A first
minus B first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError
from scipy import stats

from .errors import InputError
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
        raise InputError("trial.dropout", "set", "nothing in a crossover (withdrawal is modelled for parallel arms only)")
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
    last = period_bounds(scenario)[-1][1]
    if scenario.duration_days < last - 1e-9:
        raise InputError("duration_days", scenario.duration_days,
                         f"at least {last:g} for {len(orders[0])} periods of {c.period_days} days with "
                         f"{c.washout_days}-day washouts")
    sequence_arms(scenario)


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
    return {"cbd": shifted_steps(arm.cbd, start, end), "thc": shifted_steps(arm.thc, start, end),
            "comedication": {co.drug: shifted_steps(co.steps, start, end) for co in arm.comedication},
            "botulinum": _windowed_toxin(arm.botulinum, start, length, where),
            "gpi_stimulation": _windowed_stimulation(arm.gpi_stimulation, start, end)}


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
    m = float(np.mean(x)) if len(x) else float("nan")
    if len(x) < 2:
        return {"mean": round(m, 3), "ci95": None, "n": int(len(x))}
    half = float(stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x)))
    return {"mean": round(m, 3), "ci95": [round(m - half, 3), round(m + half, 3)], "n": int(len(x))}


def _two_sample(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> dict:
    """scale x (mean(a) - mean(b)) with its pooled-variance t interval and two-sided P."""
    df = len(a) + len(b) - 2
    est = scale * float(np.mean(a) - np.mean(b))
    if df < 1:
        return {"mean": round(est, 3), "ci95": None, "t": None, "df": df, "p": None}
    pooled = ((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / df
    se = abs(scale) * float(np.sqrt(pooled * (1 / len(a) + 1 / len(b))))
    t = est / se if se > 0 else (0.0 if est == 0 else float("inf") * np.sign(est))
    half = float(stats.t.ppf(0.975, df)) * se
    return {"mean": round(est, 3), "ci95": [round(est - half, 3), round(est + half, 3)], "t": round(float(t), 3),
            "df": df, "p": float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else 0.0}


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


def randomised_groups(results, scale: str, seed: int) -> list[_Group]:
    """Per sequence arm, the patients randomised to it and their period changes of ``scale``."""
    arms = [r for r in results if getattr(r, "sequence", None) is not None]
    enrolled = np.unique(np.concatenate([np.concatenate([r.patients, np.fromiter(r.faults, int, len(r.faults))])
                                         for r in arms]))
    assigned = allocation(seed, enrolled, arms[0].sequence.count)
    groups = []
    for r in arms:
        mine = assigned[np.searchsorted(enrolled, r.patients)] == r.sequence.index
        v = r.clinical[scale][mine].astype(float)
        days = r.visit_days
        first = [int(np.argmin(np.abs(days - p.start_day))) for p in r.sequence.periods]
        last = [int(np.argmin(np.abs(days - p.end_day))) for p in r.sequence.periods]
        groups.append(_Group(r.sequence, v[:, last] - v[:, first], v[:, first], r.patients[mine]))
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
        y = np.concatenate([g.change[:, k] for g in groups for k, x in enumerate(g.sequence.order) if x == t])
        b = np.concatenate([g.baseline[:, k] for g in groups for k, x in enumerate(g.sequence.order) if x == t])
        rated = b > 0
        doc["arms"][t] = {"change": _t_ci(y),
                          "responders": round(float(np.mean(-y[rated] >= responder * b[rated])), 3)
                          if rated.any() else None}
    for t in treatments:
        if t == control:
            continue
        comparison = _comparison(groups, t, control, size, replicates, seed)
        doc["comparisons"][t] = comparison
        best = comparison.get("hills_armitage", {}).get("treatment_effect") or comparison["within_patient_difference"]
        doc["arms"][t]["difference_vs_control"] = {"mean": best["mean"], "ci95": best["ci95"]}
    return doc


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
    out["carryover_at_period_2_baseline"] = _two_sample(b_ab[:, 1], b_ba[:, 1])
    usable = min(size or 0, len(y_ab) // 2, len(y_ba) // 2)
    if size is not None and usable >= 2:
        out["replicate_trials"] = {"requested": size} | replicate_crossovers(y_ab, y_ba, usable, replicates, seed)
    return out
