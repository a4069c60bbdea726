"""Which uncertain parameters decide each claim's numbers: Morris screening (issue 9).

Each model rule compares a number with a line: FAAH inhibition at consumer doses with the relevant
0.5, the largest adverse excess with 1 %, the share of patients below the THC threshold with 95 %,
a symptom's score with the presence threshold, a cause's BFMDRS excess with 0, the trial's best case
with the minimal important change, each treatment's addiction risk with 1 %. This module screens
every such number with Morris elementary effects (`ecsim.uncertainty.sensitivity.morris`, SALib),
over the same parameters and the same draws machinery the rules use for their intervals:

- **drug layers at the article's doses** (engagement rules): the drug-layer parameters (L0-L3),
  typical patient at each dose class's highest-exposure arm (`HeadlineFunction` on claims-doses);
- **drug layers in the trial** (trial rule): the same parameters, the scenario's CBD arms against
  control in expected points of the primary scale;
- **products and threshold** (threshold rules): products.yaml and the threshold, every simulated
  patient's THC dose recomputed per parameter set (algebraic);
- **phenotypes** (symptoms, causes, counterexample): the phenotype, motor-sign and levodopa
  parameters, the circuit held; each set re-solves the circuit for every phenotype, so this group
  runs at most PHENOTYPE_TRAJECTORIES trajectories;
- **adverse effects** (adverse rule): the adverse-effect parameters and the THC threshold on the
  simulated claims-doses patients (algebraic);
- **addiction** (addiction rule): the painkiller and oral-agent parameters (algebraic).

mu* is per unit of each factor's quantile (`morris(..., per_quantile=True)`), so it is in the
number's own units: about how far the number moves as the parameter crosses its uncertainty range.
A number is *at stake* if the rule's comparison comes out both ways over the screened parameter
sets (each factor between its 1/8 and 7/8 quantiles); it is *decided by one parameter* if it is at
stake and that parameter holds more than DECIDING_SHARE (half) of the summed mu*: measuring it is
what would settle the verdict. Prevalence (published intervals, no registry parameter), validation and
no-model rules are not screened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from ..errors import InputError
from ..faults import ParameterSetFault
from ..products import THC_SYSTEMIC_PARAMETERS
from ..registry import Registry
from ..scenario import Scenario, load_scenario
from ..uncertainty.problem import Problem, drug_layer_parameters, file_parameters, from_registry
from ..uncertainty.sensitivity import morris
from . import spec as claim_spec
from .context import (DOSE_PATIENTS, DOSES_SCENARIO, addiction_parameters, addiction_risks, doses_scenario, doses_thc,
                      excess_risks, levodopa_key, phenotype_numbers, run_doses)

PHENOTYPE_TRAJECTORIES = 6   # each parameter set re-solves the circuit for 11 phenotypes (about 0.6 s)
DECIDING_SHARE = 0.5         # one parameter holding more than this share of the summed mu* decides alone
TOP = 5                      # parameters listed per number
NOT_SCREENED = {"prevalence": "no registry parameter: the estimates' published intervals and the population's "
                              "range are the rule's own inputs",
                "validation": "never grades the claim", "none": "never grades the claim"}


@dataclass(frozen=True)
class ClaimNumber:
    """One number a rule compares with its line: ``key`` in its group's outputs; the rule's
    condition is met when the number is ``>=`` (or ``>``) ``threshold``."""

    claim: str
    key: str
    what: str
    threshold: float
    unit: str
    reached_when: str = ">="

    def reached(self, y: np.ndarray) -> np.ndarray:
        return y >= self.threshold if self.reached_when == ">=" else y > self.threshold


@dataclass(frozen=True)
class Group:
    """Claim numbers that share their factors and one vectorised function (K x D -> key -> (K,))."""

    name: str
    what: str
    problem: Problem
    function: Callable[[np.ndarray], dict[str, np.ndarray]]
    numbers: tuple[ClaimNumber, ...]
    max_trajectories: int | None = None


def claims_sensitivity(scenario: Scenario, registry: Registry, trajectories: int = 20, seed: int = 1,
                       patients: int = DOSE_PATIENTS, top: int = TOP, mapper=None,
                       claims: claim_spec.ClaimsFile | None = None) -> dict:
    """Morris screening of every screened claim's numbers (module docstring); ``scenario`` gives
    the trial rule's arms, ``patients`` the claims-doses patients of the algebraic groups."""
    claims = claims or claim_spec.load_claims(registry.references)
    groups = claim_groups(scenario, registry, claims, patients, mapper)
    screened: dict[str, list[dict]] = {}
    runs = {}
    for g in groups:
        start = time.perf_counter()
        r = min(trajectories, g.max_trajectories or trajectories)
        rows = screen(g.problem, g.function, g.numbers, r, seed, registry, top)
        runs[g.name] = {"what": g.what, "factors": len(g.problem.factors), "trajectories": r,
                        "evaluations": r * (len(g.problem.factors) + 1),
                        "seconds": round(time.perf_counter() - start, 1)}
        for number, row in zip(g.numbers, rows):
            screened.setdefault(number.claim, []).append(row | {"group": g.name})
    out, skipped = [], []
    for c in claims.claims:
        if c.id in screened:
            out.append({"id": c.id, "rule": c.rule.kind, "numbers": screened[c.id]})
        else:
            skipped.append({"id": c.id, "rule": c.rule.kind,
                            "why": NOT_SCREENED.get(c.rule.kind, "this scenario has no number for it")})
    return {"scenario": scenario.name, "seed": seed, "trajectories": trajectories, "levels": 4,
            "mu_star_unit": "the number's own unit per unit of each parameter's quantile",
            "deciding_share": DECIDING_SHARE, "groups": runs, "claims": out, "not_screened": skipped}


def screen(problem: Problem, f: Callable, numbers, trajectories: int, seed: int, registry: Registry | None = None,
           top: int = TOP) -> list[dict]:
    """Morris (per quantile) of ``f`` and, for each claim number, its top parameters, its value
    at the registry values (each factor's centre), its range over the screened parameter sets,
    whether it is at stake and which parameter decides it (module docstring)."""
    seen: dict[str, list[np.ndarray]] = {}

    def recorded(values: np.ndarray) -> dict[str, np.ndarray]:
        out = f(values)
        for k, v in out.items():
            seen.setdefault(k, []).append(np.asarray(v, float))
        return out

    result = morris(problem, recorded, trajectories, seed, per_quantile=True)
    nominal = f(np.array([[fa.center for fa in problem.factors]]))
    rows = []
    for number in numbers:
        y = np.concatenate(seen[number.key])
        rows.append(_summary(number, result, y[np.isfinite(y)], float(nominal[number.key][0]), registry, top))
    return rows


def _summary(number: ClaimNumber, result: dict, y: np.ndarray, nominal: float, registry, top: int) -> dict:
    r = result["outputs"][number.key]
    scored = [(name, mu, conf, sd) for name, mu, conf, sd in
              zip(result["factors"], r["mu_star"], r["mu_star_conf"], r["sigma"]) if mu is not None]
    scored.sort(key=lambda t: -t[1])
    total = sum(t[1] for t in scored)
    reached = number.reached(y)
    at_stake = bool(reached.any() and not reached.all())
    leaders = [{"parameter": name, "mu_star": float(mu), "mu_star_conf": float(conf), "sigma": float(sd),
                "share": _g(mu / total)} | _source(registry, name)
               for name, mu, conf, sd in scored[:top] if mu > 0]
    share = leaders[0]["share"] if leaders else None
    decided_by = leaders[0]["parameter"] if at_stake and share is not None and share > DECIDING_SHARE else None
    return {"number": number.key, "what": number.what, "unit": number.unit, "threshold": number.threshold,
            "reached_when": number.reached_when, "at_registry_values": _g(nominal, 6),
            "screened_range": [_g(y.min(), 6), _g(y.max(), 6)] if len(y) else None,
            "trajectories_used": r["trajectories_used"], "at_stake": at_stake, "decided_by": decided_by,
            "top": leaders, "measure_next": _measure_next(number, at_stake, decided_by, leaders, y)}


def _measure_next(number: ClaimNumber, at_stake: bool, decided_by, leaders: list[dict], y: np.ndarray) -> str:
    if not leaders:
        return "no screened parameter moves it"
    if decided_by:
        return (f"{decided_by} alone holds {leaders[0]['share']:.0%} of the effects: measuring it would settle "
                f"which side of {number.threshold:g} this number is on")
    if at_stake:
        names = [x["parameter"] for x in leaders[:3]]
        held = sum(x["share"] for x in leaders[:3])
        return f"no single parameter decides it: {', '.join(names)} hold {held:.0%} of the effects together"
    side = "above" if number.reached(y).all() else "below"
    return (f"{side} {number.threshold:g} at every screened parameter set: measuring {leaders[0]['parameter']} "
            f"would narrow it, not change the verdict")


def _g(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _source(registry: Registry | None, name: str) -> dict:
    if registry is None or name not in registry.parameters:
        return {}
    p = registry[name]
    ref = registry.references.get(p.source)
    return {"value": p.value, "unit": p.unit, "uncertainty": p.uncertainty.describe(), "source": p.source,
            "citation": ref.citation if ref else (p.reason or "assumption"),
            "checked": ref.checked if ref else "assumption"}


# --- the groups ----------------------------------------------------------------------------------

def claim_groups(scenario: Scenario, registry: Registry, claims: claim_spec.ClaimsFile, patients: int,
                 mapper=None) -> list[Group]:
    """Every group that has at least one claim number (module docstring)."""
    rules = [(c.id, c.rule) for c in claims.claims]
    kinds = {r.kind for _, r in rules}
    groups = [engagement_group(registry, claims, mapper) if "engagement" in kinds else None,
              trial_group(scenario, registry, claims, mapper) if "trial" in kinds else None,
              threshold_group(registry, claims, patients) if "threshold" in kinds else None,
              phenotype_group(registry, claims, mapper) if kinds & {"symptoms", "causes", "counterexample"} else None,
              adverse_group(registry, claims, patients) if "adverse" in kinds else None,
              addiction_group(registry, claims) if "addiction" in kinds else None]
    return [g for g in groups if g is not None and g.numbers]


def engagement_group(registry: Registry, claims: claim_spec.ClaimsFile, mapper=None) -> Group:
    """Each engagement claim's effect in its claimed direction (the quantity that moves most that
    way) at each dose class's highest-exposure arm, typical patient, against ``relevant``."""
    from ..uncertainty.model import HeadlineFunction
    rules = [(c.id, c.rule) for c in claims.claims if c.rule.kind == "engagement"]
    arms = {key: dc.arms[-1] for key, dc in claims.dose_classes.items()}
    quantities = sorted({q for _, r in rules for q in r.quantities})
    problem = from_registry(registry, drug_layer_parameters(registry))
    f = HeadlineFunction(load_scenario(DOSES_SCENARIO), registry, problem.names, list(dict.fromkeys(arms.values())),
                         levels={q: f"{q}.avg" for q in quantities}, mapper=mapper)

    def effects(values: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(all="ignore"):
            out = f(values)
        result = {}
        for cid, r in rules:
            sign, base = (1.0 if r.direction == "increase" else -1.0), (1.0 if r.scale == "fold" else 0.0)
            for key, arm in arms.items():
                result[f"{cid}.{key}"] = np.max([sign * (out[f"{arm}.{q}"] - base) for q in r.quantities], axis=0)
        return result

    numbers = tuple(ClaimNumber(cid, f"{cid}.{key}", f"{'/'.join(r.quantities)} ({r.direction}) at "
                                f"{claims.dose_classes[key].label} ({arm})", r.relevant, r.scale)
                    for cid, r in rules for key, arm in arms.items())
    return Group("drug layers at the article's doses", "drug-layer parameters (L0-L3), typical patient",
                 problem, effects, numbers)


def trial_group(scenario: Scenario, registry: Registry, claims: claim_spec.ClaimsFile, mapper=None) -> Group | None:
    """The trial's best case per CBD arm: the primary scale's improvement against control in
    expected points (typical patient), against the minimal important change."""
    from ..uncertainty.model import HeadlineFunction, cbd_arms
    cid = next(c.id for c in claims.claims if c.rule.kind == "trial")
    if not (scenario.population.phenotype and scenario.trial.control_arm and cbd_arms(scenario)):
        return None
    problem = from_registry(registry, drug_layer_parameters(registry))
    f = HeadlineFunction(scenario, registry, problem.names, mapper=mapper)
    mic = claims.minimal_important_change.get(f.scale)
    if mic is None:
        return None

    def best_case(values: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(all="ignore"):
            out = f(values)
        return {f"{cid}.{arm}": -out[f"{arm}.{f.scale}_vs_control_points"] for arm in f.arms}

    numbers = tuple(ClaimNumber(cid, f"{cid}.{arm}", f"{f.scale} improvement against {scenario.trial.control_arm} "
                                f"at {arm} (expected points, typical patient)", mic.points, "points")
                    for arm in f.arms)
    return Group("drug layers in the trial", f"drug-layer parameters (L0-L3), {scenario.name}", problem,
                 best_case, numbers)


def threshold_group(registry: Registry, claims: claim_spec.ClaimsFile, patients: int) -> Group:
    """Per threshold claim, the share of patients for whom it holds in its worst arm (against 95 %)
    and its best arm (against 50 %), every claims-doses patient's THC dose recomputed per set."""
    rules = [(c.id, c.rule) for c in claims.claims if c.rule.kind == "threshold"]
    params = sorted({r.threshold_param for _, r in rules})
    names = sorted(file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS) | set(params))
    problem = from_registry(registry, names)
    scenario = doses_scenario(patients, None)
    by_name = {a.name: a for a in scenario.arms}
    arms = sorted({a for _, r in rules for a in r.arms})

    def shares(values: np.ndarray) -> dict[str, np.ndarray]:
        from ..simulation import patient_inputs
        out = {f"{cid}.{end}": np.full(len(values), np.nan) for cid, _ in rules for end in ("worst_arm", "best_arm")}
        for i, row in enumerate(values):
            reg = _registry(registry, problem.names, row)
            if reg is None:
                continue
            thc = {arm: patient_inputs(scenario, by_name[arm], 0, patients, reg)[0]["max_single_thc_oral_equivalent_mg"]
                   for arm in arms}
            for cid, r in rules:
                limit = reg.value(r.threshold_param, "mg")
                held = [np.mean(thc[a] < limit if r.claim_holds_when == "below" else thc[a] > limit) for a in r.arms]
                out[f"{cid}.worst_arm"][i], out[f"{cid}.best_arm"][i] = min(held), max(held)
        return out

    numbers = tuple(n for cid, r in rules for n in (
        ClaimNumber(cid, f"{cid}.worst_arm", f"share of patients with THC per dose {r.claim_holds_when} the "
                    "threshold, worst arm (supported from 95 %)", 0.95, "fraction"),
        ClaimNumber(cid, f"{cid}.best_arm", f"share of patients with THC per dose {r.claim_holds_when} the "
                    "threshold, best arm (partly from 50 %)", 0.5, "fraction")))
    return Group("products and threshold", f"products.yaml and {', '.join(params)}; {patients} claims-doses "
                 "patients", problem, shares, numbers)


def phenotype_group(registry: Registry, claims: claim_spec.ClaimsFile, mapper=None) -> Group:
    """Symptoms (the largest score over the forms, against the presence threshold), causes (the
    BFMDRS movement excess over the normal brain, against 0) and counterexamples (the share of
    points a treatment removes, against ``near_complete``), typical patient, circuit held."""
    from ..circuit.phenotypes import PHENOTYPES
    from ..clinical_summary import PRESENT
    from ..uncertainty.model import phenotype_parameters
    rules = [(c.id, c.rule) for c in claims.claims if c.rule.kind in ("symptoms", "causes", "counterexample")]
    levodopa = [(r.phenotype, r.levodopa_mg_per_day) for _, r in rules if r.kind == "counterexample"]
    problem = from_registry(registry, phenotype_parameters(registry))
    forms = [p for p in PHENOTYPES if p != "normal"]
    numbers: list[ClaimNumber] = []
    for cid, r in rules:
        if r.kind == "symptoms":
            numbers += [ClaimNumber(cid, f"{cid}.{s}", f"largest {s} score over the forms (present above {PRESENT:g})",
                                    PRESENT, "score", ">") for s in r.symptoms]
        elif r.kind == "causes":
            numbers += [ClaimNumber(cid, f"{cid}.{c}", f"BFMDRS movement above the normal brain's, {c} "
                                    f"({', '.join(ps)})", 0.0, "points", ">") for c, ps in r.causes.items()]
        else:
            numbers.append(ClaimNumber(cid, f"{cid}.reduction", f"share of {r.scale} points {r.phenotype} loses on "
                                       f"levodopa {r.levodopa_mg_per_day:g} mg/day", r.near_complete, "fraction"))

    def claim_numbers(values: np.ndarray) -> dict[str, np.ndarray]:
        drawn = (mapper or _local_map)(partial(_phenotype_row, registry, problem.names, levodopa), list(values))
        out = {n.key: np.full(len(values), np.nan) for n in numbers}
        for i, d in enumerate(drawn):
            if d is None:
                continue
            for cid, r in rules:
                if r.kind == "symptoms":
                    for s in r.symptoms:
                        out[f"{cid}.{s}"][i] = max(d["by_phenotype"][p]["symptoms"][s] for p in forms)
                elif r.kind == "causes":
                    normal = d["by_phenotype"]["normal"]["bfmdrs_movement"]
                    for c, ps in r.causes.items():
                        out[f"{cid}.{c}"][i] = max(d["by_phenotype"][p]["bfmdrs_movement"] for p in ps) - normal
                else:
                    score = d["levodopa"][levodopa_key(r.phenotype, r.levodopa_mg_per_day)][r.scale]
                    out[f"{cid}.reduction"][i] = 1.0 - score["after"] / score["before"] if score["before"] > 0 else 0.0
        return out

    return Group("phenotypes", "phenotype, motor-sign and levodopa parameters, circuit held; typical patient of "
                 "every phenotype", problem, claim_numbers, tuple(numbers), PHENOTYPE_TRAJECTORIES)


def _local_map(fn, items):
    return [fn(item) for item in items]


def _phenotype_row(registry: Registry, names: list[str], levodopa: list, row: np.ndarray) -> dict | None:
    """`phenotype_numbers` for one parameter set; None for a set the registry refuses or whose
    circuit falls silent (a fault: left out of the screen's indices)."""
    reg = _registry(registry, names, row)
    if reg is None:
        return None
    try:
        return phenotype_numbers(reg, levodopa)
    except ParameterSetFault:
        return None


def adverse_group(registry: Registry, claims: claim_spec.ClaimsFile, patients: int) -> Group:
    """Per dose class, the largest mean excess risk of any modelled adverse event at any of the
    class's arms (the simulated claims-doses patients, risks and THC doses recomputed per set), against
    ``common``. Drawn as in `adverse_parameter_spread`: the adverse parameters, the THC threshold, the
    products' THC content and THC's absorption."""
    from ..treatments.adverse import THC_DOSE
    cid, rule = next((c.id, c.rule) for c in claims.claims if c.rule.kind == "adverse")
    names = ({n for n in registry.parameters if n.startswith("adverse_")} | {"thc_impairment_threshold_mg"}
             | file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS))
    problem = from_registry(registry, sorted(names))
    doses = run_doses(registry, patients, None)
    thc_dose = doses_thc(patients, None)
    inputs = {arm: {k[len("input."):]: v for k, v in doses[arm].items() if k.startswith("input.")}
              for dc in claims.dose_classes.values() for arm in dc.arms}

    def largest(values: np.ndarray) -> dict[str, np.ndarray]:
        out = {f"{cid}.{key}": np.full(len(values), np.nan) for key in claims.dose_classes}
        for i, row in enumerate(values):
            reg = _registry(registry, problem.names, row)
            if reg is None:
                continue
            for key, dc in claims.dose_classes.items():
                out[f"{cid}.{key}"][i] = max(float(np.mean(v)) for arm in dc.arms for v in excess_risks(
                    inputs[arm] | {THC_DOSE: thc_dose(reg, arm)}, reg).values())
        return out

    numbers = tuple(ClaimNumber(cid, f"{cid}.{key}", f"largest adverse excess risk at {dc.label}", rule.common,
                                "fraction") for key, dc in claims.dose_classes.items())
    return Group("adverse effects", f"adverse-effect parameters, the THC threshold, the products' THC and THC "
                 f"absorption; {patients} claims-doses patients", problem, largest, numbers)


def addiction_group(registry: Registry, claims: claim_spec.ClaimsFile) -> Group:
    """Each listed treatment with an addictive drug in the model: its risk of addiction or
    dependence over the rule's course, against ``common``."""
    from .context import ADDICTION_COURSES
    cid, rule = next((c.id, c.rule) for c in claims.claims if c.rule.kind == "addiction")
    drugs = [name for name, (kind, _) in ADDICTION_COURSES.items() if kind is not None]
    problem = from_registry(registry, addiction_parameters(registry))

    def risks(values: np.ndarray) -> dict[str, np.ndarray]:
        out = {f"{cid}.{name}": np.full(len(values), np.nan) for name in drugs}
        for i, row in enumerate(values):
            reg = _registry(registry, problem.names, row)
            if reg is not None:
                for name, risk in addiction_risks(reg, rule.course_days).items():
                    if name in drugs:
                        out[f"{cid}.{name}"][i] = risk
        return out

    numbers = tuple(ClaimNumber(cid, f"{cid}.{name}", f"risk of addiction or dependence over {rule.course_days:g} "
                                f"days: {name}", rule.common, "fraction") for name in drugs)
    return Group("addiction", "painkiller and oral-agent parameters", problem, risks, numbers)


def _registry(registry: Registry, names: list[str], row: np.ndarray) -> Registry | None:
    """``registry`` with the named parameters set to ``row``; None if it refuses a value."""
    try:
        return registry.with_overrides(dict(zip(names, map(float, row))))
    except InputError:
        return None


# --- text -----------------------------------------------------------------------------------------

def format_claims_sensitivity(doc: dict, top: int = 3) -> str:
    """The screen as plain text: per claim and number, the line, the range, the leading parameters."""
    lines = [f"Morris screening of each claim's numbers ({doc['scenario']}, seed {doc['seed']}); mu* in the "
             "number's units per unit of quantile"]
    for name, g in doc["groups"].items():
        lines.append(f"  {name}: {g['factors']} parameters, {g['trajectories']} trajectories, "
                     f"{g['evaluations']} parameter sets, {g['seconds']:g} s")
    for c in doc["claims"]:
        lines.append(f"\n{c['id']} ({c['rule']})")
        for n in c["numbers"]:
            lo, hi = n["screened_range"] or (float("nan"), float("nan"))
            stake = "AT STAKE" if n["at_stake"] else "not at stake"
            lines.append(f"  {n['what']}: {n['at_registry_values']:.3g} {n['unit']} (screened {lo:.3g} to {hi:.3g}; "
                         f"line {n['reached_when']} {n['threshold']:g}; {stake})")
            for x in n["top"][:top]:
                lines.append(f"      {x['parameter']:<40} mu* {x['mu_star']:<10.3g} sigma {x['sigma']:<10.3g} "
                             f"share {x['share']:.0%}  [{x.get('source', '')}]")
            lines.append(f"    -> {n['measure_next']}")
    for s in doc["not_screened"]:
        lines.append(f"\nnot screened: {s['id']} ({s['rule']}): {s['why']}")
    return "\n".join(lines)
