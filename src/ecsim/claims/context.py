"""The model's numbers that the claims are graded on, computed once per check.

- drug levels and target engagement at the article's doses (the embedded `claims-doses` scenario);
- the virtual trial of the run being reported (CBD arms against control on the primary scale);
- the typical patient of each phenotype (symptoms, scale scores), with and without levodopa;
- the shipped validation snapshot (how well the model reproduces published studies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..products import THC_SYSTEMIC_PARAMETERS
from ..registry import Registry
from ..scenario import Scenario, load_scenario
from ..simulation import ArmResult, Simulation, patient_inputs

DOSES_SCENARIO = "claims-doses"
DOSE_PATIENTS = 200


@dataclass(frozen=True)
class TrialEvidence:
    """A run's trial block and which of its arms give CBD."""

    scenario: str
    phenotype: str
    statistics: dict
    cbd_arms: list[str]
    mg_per_day: dict[str, float] = field(default_factory=dict)   # CBD arm -> largest daily dose (mg)
    control_baseline: float | None = None   # the control arm's mean primary-scale score at baseline


@dataclass
class ClaimsContext:
    registry: Registry
    doses: dict[str, dict[str, np.ndarray]]          # arm -> quantity -> per-patient values
    dose_patients: int
    trial: TrialEvidence | None = None
    validation: dict = field(default_factory=dict)   # metric id -> snapshot row
    parameter_spread: dict = field(default_factory=dict)   # arm -> quantity -> interval over parameter draws
    adverse_spread: dict = field(default_factory=dict)     # adverse_parameter_spread's document
    threshold_spread: dict = field(default_factory=dict)   # threshold parameter -> threshold_parameter_spread's document
    phenotype_spread: dict = field(default_factory=dict)   # phenotype_parameter_spread's document
    answer_uncertainty: dict = field(default_factory=dict)  # the run's parameter_uncertainty intervals
    addiction_spread: dict = field(default_factory=dict)    # course days -> addiction_parameter_spread's document


def dose_values(results: list[ArmResult], registry: Registry) -> dict[str, dict[str, np.ndarray]]:
    """Per arm, per patient: last-day time averages of every target and tone output, the CBD
    average plasma level, the largest single THC dose, and each adverse event's excess risk over
    the same patient without the drug (``adverse.<event>``)."""
    out = {}
    for r in results:
        values = {name[:-4]: v for name, v in r.exposure.items() if name.endswith(".avg")}
        values["cbd_plasma_cavg_ng_per_ml"] = r.exposure["cbd_plasma_ng_per_ml.cavg"]
        values["thc_oral_equivalent_dose_mg"] = r.exposure["max_single_thc_oral_equivalent_mg"]
        values |= {f"adverse.{k}": v for k, v in excess_risks(r.exposure, registry).items()}
        values |= {f"input.{k}": r.exposure[k] for k in ADVERSE_INPUTS}
        out[r.name] = values
    return out


ADVERSE_INPUTS = ("cbd_plasma_ng_per_ml.cavg", "nclb_plasma_ng_per_ml.cavg", "max_single_thc_oral_equivalent_mg",
                  "cbd_daily_mg", "parkinsonian_features")


def adverse_parameter_spread(registry: Registry, doses: dict, arms: list[str], draws: int, seed: int = 1,
                             thc_dose: Callable[[Registry, str], np.ndarray] | None = None) -> dict:
    """Parameter uncertainty of each arm's mean excess risk per adverse event: the adverse-effect
    parameters (and the THC threshold) drawn from their registry uncertainty, applied to the arm's
    simulated patients (the risks are algebraic in exposure: no new simulation). With ``thc_dose``
    (registry, arm -> each patient's oral-equivalent THC dose, the same patients), the products' THC
    content and the THC bioavailabilities and meal factor (`THC_SYSTEMIC_PARAMETERS`) are drawn too
    and the THC dose recomputed per draw; the CBD exposure stays the simulated one. Arm -> event ->
    {median, p05, p95}; draws whose values a registry refuses are left out and counted."""
    from ..treatments.adverse import THC_DOSE
    from ..uncertainty.problem import file_parameters
    names = {n for n in registry.parameters if n.startswith("adverse_")} | {"thc_impairment_threshold_mg"}
    if thc_dose is not None:
        names |= file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS)
    factors, registries, refused = _drawn_registries(registry, sorted(names), draws, seed, ADVERSE_STREAM)
    means: dict[str, dict[str, list[float]]] = {arm: {} for arm in arms}
    for reg in registries:
        for arm in arms:
            exposure = {k[len("input."):]: v for k, v in doses[arm].items() if k.startswith("input.")}
            if thc_dose is not None:
                exposure[THC_DOSE] = thc_dose(reg, arm)
            for event, v in excess_risks(exposure, reg).items():
                means[arm].setdefault(event, []).append(float(np.mean(v)))
    out = {arm: {event: dict(zip(("p05", "median", "p95"), (float(f"{x:.4g}") for x in np.percentile(v, [5, 50, 95]))))
                 for event, v in events.items()} for arm, events in means.items()}
    return {"draws": draws, "draws_refused": refused, "factors": factors, "arms": out}


def excess_risks(exposure: dict[str, np.ndarray], registry: Registry) -> dict[str, np.ndarray]:
    """Per patient and adverse event: risk on the regimen minus the risk with no CBD or THC."""
    from ..treatments.adverse import CBD_EXPOSURE, THC_DOSE, adverse_effects
    daily = exposure["cbd_daily_mg"]
    on = adverse_effects(exposure, daily, registry)
    off = adverse_effects(exposure | {CBD_EXPOSURE: np.zeros_like(daily), THC_DOSE: np.zeros_like(daily)},
                          np.zeros_like(daily), registry)
    return {k: on[k] - off[k] for k in on}


_DOSES_CACHE: dict[tuple, dict] = {}


def run_doses(registry: Registry, patients: int = DOSE_PATIENTS, seed: int | None = None) -> dict:
    """Simulate the claims-doses scenario (consumer, 300 mg/day and Epidiolex doses, fasted and fed).
    Kept per process for the same parameter set, size and seed (the web server's workers reuse it)."""
    key = (registry.digest(), patients, seed)
    if key not in _DOSES_CACHE:
        _DOSES_CACHE.clear()
        _DOSES_CACHE[key] = _simulate_doses(registry, patients, seed)
    return _DOSES_CACHE[key]


def _simulate_doses(registry: Registry, patients: int, seed: int | None) -> dict:
    return dose_values(Simulation(doses_scenario(patients, seed), registry=registry).run(), registry)


def doses_thc(patients: int, seed: int | None) -> Callable[[Registry, str], np.ndarray]:
    """(registry, arm) -> the oral-equivalent THC dose of each claims-doses patient of that arm (the
    patients of `run_doses` with the same size and seed), recomputed for a drawn parameter set."""
    scenario = doses_scenario(patients, seed)
    by_name = {a.name: a for a in scenario.arms}

    def dose(reg: Registry, arm: str) -> np.ndarray:
        return patient_inputs(scenario, by_name[arm], 0, patients, reg)[0]["max_single_thc_oral_equivalent_mg"]
    return dose


def doses_scenario(patients: int, seed: int | None) -> Scenario:
    """The claims-doses scenario with ``patients`` per arm and, if given, the seed."""
    data = load_scenario(DOSES_SCENARIO).model_dump(mode="json")
    data["population"]["n"] = patients
    if seed is not None:
        data["population"]["seed"] = seed
    return Scenario.model_validate(data)


def trial_evidence(scenario: Scenario, summary: dict) -> TrialEvidence | None:
    """The trial block of a run's summary, if the run is a controlled trial with at least one CBD arm."""
    trial = summary.get("trial")
    if not trial or not trial.get("control_arm"):
        return None
    cbd = [a for a in scenario.arms if a.cbd and a.name != trial["control_arm"]]
    if not cbd:
        return None
    weight = scenario.population.weight_mean_kg
    doses = {a.name: max(len(s.times_h) * (s.dose.mg + s.dose.mg_per_kg * weight) for s in a.cbd) for a in cbd}
    baseline = next((c["scales"][trial["primary_scale"]]["mean"][0] for c in summary.get("clinical") or []
                     if c["arm"] == trial["control_arm"] and trial["primary_scale"] in c["scales"]), None)
    return TrialEvidence(scenario.name, scenario.population.phenotype, trial, [a.name for a in cbd], doses, baseline)


_SPREAD_CACHE: dict[tuple, dict] = {}


def dose_parameter_spread(registry: Registry, arms: list[str], quantities: list[str], draws: int,
                          seed: int = 1) -> dict[str, dict[str, dict]]:
    """Parameter uncertainty (typical patient per draw) of target and tone quantities at the given
    arms of the claims-doses scenario: arm -> quantity -> {median, p05, p95}. Kept per process."""
    key = (registry.digest(), tuple(arms), tuple(quantities), draws, seed)
    if key not in _SPREAD_CACHE:
        _SPREAD_CACHE.clear()
        _SPREAD_CACHE[key] = _spread(registry, arms, quantities, draws, seed)
    return _SPREAD_CACHE[key]


def _spread(registry: Registry, arms: list[str], quantities: list[str], draws: int, seed: int) -> dict:
    from ..uncertainty import parameter_draws
    from ..uncertainty.model import HeadlineFunction, split_key
    scenario = load_scenario(DOSES_SCENARIO)
    problem, values = parameter_draws(registry, draws, seed)
    f = HeadlineFunction(scenario, registry, problem.names, arms, levels={q: f"{q}.avg" for q in quantities})
    with np.errstate(all="ignore"):
        out = f(values)
    spread = {}
    for key, v in out.items():
        arm, q = split_key(key)
        sound = v[np.isfinite(v)]      # a draw with a non-finite answer is a numerical fault: left out, counted
        if not len(sound):
            continue
        lo, mid, hi = np.percentile(sound, [5, 50, 95])
        spread.setdefault(arm, {})[q] = {"median": float(f"{mid:.4g}"), "p05": float(f"{lo:.4g}"),
                                         "p95": float(f"{hi:.4g}"), "draws_faulted": int(len(v) - len(sound))}
    return spread


# --- parameter uncertainty of the threshold and phenotype rules ----------------------------------

ADVERSE_STREAM, THRESHOLD_STREAM, PHENOTYPE_STREAM, ADDICTION_STREAM = 9003, 9004, 9005, 9006   # each its
# own stream of parameter draws
PHENOTYPE_DRAWS = 128  # each draw re-solves the circuit for every phenotype: 128 take about 7 s on the 2-core machine


def _drawn_registries(registry: Registry, names: list[str], draws: int, seed: int, stream: int):
    """Registries with the named parameters drawn from their registry uncertainty (those the
    scenario overrides stay fixed), and the number of draws a registry refused (left out)."""
    from ..errors import InputError
    from ..uncertainty.problem import from_registry, unit_draws
    problem = from_registry(registry, names)
    values = problem.values(unit_draws(problem.names, draws, seed, stream))
    kept, refused = [], 0
    for row in values:
        try:
            kept.append(registry.with_overrides(dict(zip(problem.names, map(float, row)))))
        except InputError:
            refused += 1
    return problem.names, kept, refused


def threshold_parameter_spread(registry: Registry, patients: int, seed: int | None, arms: list[str],
                               threshold_param: str, draws: int, draw_seed: int = 1) -> dict:
    """Share of the claims-doses patients whose largest single THC dose (as a fasted oral dose of
    the same systemic THC) lies below and above the threshold, per arm and parameter draw. Drawn:
    the product parameters (THC:CBD ratio, label accuracy; products.yaml), the THC bioavailabilities
    and meal factor that convert a dose to its oral equivalent (`THC_SYSTEMIC_PARAMETERS`) and the
    threshold. Each draw recomputes every patient's THC dose (mg) from the same patients: the dose
    is algebraic in these parameters, no simulation.
    Returns {draws, draws_refused, factors, threshold_mg: [per draw], arms: {arm: {below, above}}}."""
    from ..uncertainty.problem import file_parameters
    scenario = doses_scenario(patients, seed)
    by_name = {a.name: a for a in scenario.arms}
    names = sorted(file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS) | {threshold_param})
    factors, registries, refused = _drawn_registries(registry, names, draws, draw_seed, THRESHOLD_STREAM)
    out = {arm: {"below": [], "above": []} for arm in arms}
    limits = []
    for reg in registries:
        limit = reg.value(threshold_param, "mg")
        limits.append(limit)
        for arm in arms:
            thc = patient_inputs(scenario, by_name[arm], 0, patients, reg)[0]["max_single_thc_oral_equivalent_mg"]
            out[arm]["below"].append(float(np.mean(thc < limit)))
            out[arm]["above"].append(float(np.mean(thc > limit)))
    return {"draws": draws, "draws_refused": refused, "factors": factors, "threshold_mg": limits, "arms": out}


def typical_patient(registry: Registry, phenotype: str, levodopa: float = 0.0, days=(0.0,)):
    """The typical patient of a phenotype (median severity, no rater noise, no drug) at ``days``,
    on levodopa (mg/day) if given: a ClinicalTrajectory of one patient."""
    return typical_patients(registry, [phenotype], levodopa, days)


def typical_patients(registry: Registry, phenotypes: list[str], levodopa: float = 0.0, days=(0.0,)):
    """`typical_patient` of each listed phenotype, one row each, assessed in one batch (each row
    bitwise as if alone: `circuit.clinical.assess`)."""
    from ..circuit.clinical import ClinicalModel, assess, drug_free_drivers
    from ..treatments.course import Course
    d, n = np.asarray(days, dtype=float), len(phenotypes)
    return assess(ClinicalModel.from_registry(registry), registry, np.array(phenotypes), d,
                  drug_free_drivers(n, len(d)), Course(levodopa_mg_per_day=levodopa), seed=0, start=0, stop=n,
                  typical=True)


def levodopa_key(phenotype: str, mg_per_day: float) -> str:
    return f"{phenotype} on levodopa {mg_per_day:g} mg/day"


def phenotype_numbers(registry: Registry, levodopa: list[tuple[str, float]]) -> dict:
    """The typical patient of every phenotype at baseline (BFMDRS movement, each symptom's score)
    and, for each (phenotype, levodopa mg/day), every scale before and after 4 weeks on it."""
    from ..circuit.phenotypes import PHENOTYPES
    from ..circuit.scales import SYMPTOMS
    names = list(PHENOTYPES)
    tr = typical_patients(registry, names)
    by_phenotype = {p: {"bfmdrs_movement": float(tr.totals["bfmdrs_movement"][i, 0]),
                        "symptoms": {s: float(tr.symptoms[s][i, 0]) for s in SYMPTOMS}} for i, p in enumerate(names)}
    on_levodopa = _levodopa_numbers(registry, levodopa)
    return {"by_phenotype": by_phenotype,
            "levodopa": {levodopa_key(p, dose): on_levodopa[p, dose] for p, dose in levodopa}}


def _levodopa_numbers(registry: Registry, levodopa: list[tuple[str, float]]) -> dict[tuple[str, float], dict]:
    """Every scale before and after 4 weeks on levodopa, per (phenotype, mg/day): one batch per dose."""
    out = {}
    for dose in sorted({dose for _, dose in levodopa}):
        cases = [p for p, d in levodopa if d == dose]
        tr = typical_patients(registry, cases, dose, days=(0.0, 28.0))
        out |= {(p, dose): {k: {"before": float(v[i, 0]), "after": float(v[i, 1])} for k, v in tr.totals.items()}
                for i, p in enumerate(cases)}
    return out


_PHENOTYPE_CACHE: dict[tuple, dict] = {}


def phenotype_parameter_spread(registry: Registry, draws: int, seed: int = 1,
                               levodopa: list[tuple[str, float]] = (), names: list[str] | None = None) -> dict:
    """`phenotype_numbers` under ``draws`` draws of the phenotype, motor, scale and levodopa-response
    parameters (`uncertainty.model.phenotype_parameters`, or ``names``), the circuit held at its
    registry values. Returns {draws, draws_refused, draws_faulted, factors, numbers: [one
    `phenotype_numbers` per kept draw]}; a draw whose normal circuit falls silent is a fault,
    left out and counted. Kept per process."""
    from ..uncertainty.model import phenotype_parameters
    names = sorted(names or phenotype_parameters(registry))
    key = (registry.digest(), draws, seed, tuple(levodopa), tuple(names))
    if key not in _PHENOTYPE_CACHE:
        _PHENOTYPE_CACHE.clear()
        _PHENOTYPE_CACHE[key] = _phenotype_spread(registry, draws, seed, list(levodopa), names)
    return _PHENOTYPE_CACHE[key]


def _phenotype_spread(registry: Registry, draws: int, seed: int, levodopa: list, names: list[str]) -> dict:
    from ..faults import ParameterSetFault
    factors, registries, refused = _drawn_registries(registry, names, draws, seed, PHENOTYPE_STREAM)
    numbers, faulted = [], 0
    for reg in registries:
        try:
            numbers.append(phenotype_numbers(reg, levodopa))
        except ParameterSetFault:
            faulted += 1
    return {"draws": draws, "draws_refused": refused, "draws_faulted": faulted, "factors": factors,
            "numbers": numbers}


# --- addiction: the treatments' risks of addiction or dependence ---------------------------------

ADDICTION_COURSES = {   # treatment -> (the module whose risk function applies, its course block)
    "opioid painkiller (oral morphine 60 mg/day)": ("painkiller", {"drug": "morphine", "mg_per_day": 60.0}),
    "non-opioid painkiller (paracetamol 4 g/day)": ("painkiller", {"drug": "paracetamol", "mg_per_day": 4000.0}),
    "benzodiazepine (clonazepam 2 mg/day)": ("oral_agent", {"clonazepam_mg_per_day": 2.0}),
    "baclofen (60 mg/day)": ("oral_agent", {"baclofen_mg_per_day": 60.0}),
    "botulinum toxin": (None, None), "pallidal stimulation": (None, None), "physiotherapy": (None, None)}


def addiction_risk(kind: str | None, course: dict | None, days: float, registry) -> float:
    """Risk of addiction or dependence over ``days`` of one course (0 for treatments with no
    addictive drug in the model): opioid use disorder (`ecsim.treatments.painkillers`) or
    benzodiazepine dependence (`ecsim.treatments.oral_agents`)."""
    if kind == "painkiller":
        from ..scenario import Painkiller
        from ..treatments.painkillers import painkiller_adverse_effects
        return float(painkiller_adverse_effects(Painkiller(**course), days, 1, registry)["opioid_use_disorder"][0])
    if kind == "oral_agent":
        from ..treatments.oral_agents import oral_agent_adverse_effects
        return float(oral_agent_adverse_effects(course, days, 1, registry)["benzodiazepine_dependence"][0])
    return 0.0


ADDICTION_PREFIXES = ("painkiller_", "opioid_", "clonazepam_", "baclofen_", "benzodiazepine_")


def addiction_parameters(registry: Registry) -> list[str]:
    """The parameters of the painkiller and oral-agent models (treatments.yaml), which
    `addiction_risk` reads; only the opioid addiction and benzodiazepine dependence risks and their
    build-up times enter the risks."""
    return sorted(n for n in registry.parameters if n.startswith(ADDICTION_PREFIXES))


def addiction_risks(registry: Registry, days: float) -> dict[str, float]:
    """Each listed treatment's risk of addiction or dependence over a course of ``days``."""
    return {name: addiction_risk(kind, course, days, registry) for name, (kind, course) in ADDICTION_COURSES.items()}


def addiction_parameter_spread(registry: Registry, days: float, draws: int, seed: int = 1) -> dict:
    """Each treatment's addiction or dependence risk over ``days`` under ``draws`` draws of the
    painkiller and oral-agent parameters (`addiction_parameters`; opioid addiction 3-17 % from
    Vowles 2015's 95 % CIs, benzodiazepine dependence 20-70 % around Kan 1997's 40 %, their
    build-up times 30-365 d). The risks are algebraic in the parameters: no simulation. Returns
    {draws, draws_refused, factors, risks: {treatment: [per kept draw]}}."""
    factors, registries, refused = _drawn_registries(registry, addiction_parameters(registry), draws, seed,
                                                     ADDICTION_STREAM)
    risks: dict[str, list[float]] = {name: [] for name in ADDICTION_COURSES}
    for reg in registries:
        for name, risk in addiction_risks(reg, days).items():
            risks[name].append(risk)
    return {"draws": draws, "draws_refused": refused, "factors": factors, "risks": risks}
