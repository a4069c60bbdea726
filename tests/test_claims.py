"""The claims checker: coverage of the article, the grading rules on hand-made inputs, and verdicts
that follow the mechanism (change a parameter, the verdict changes)."""

import json

import numpy as np
import pytest

from ecsim.claims import VERDICTS, check_claims, claims_context, load_claims
from ecsim.claims import rules, spec
from ecsim.claims.context import ClaimsContext, TrialEvidence
from ecsim.cli import main
from ecsim.validation.snapshot import is_current, load_snapshot


@pytest.fixture(scope="module")
def claims_file(registry):
    return load_claims(registry.references)


def test_every_kind_of_claim_in_the_article_is_checked(claims_file):
    ids = {c.id for c in claims_file.claims}
    article = {"cbd_lowers_faah", "cbd_lowers_magl", "endocannabinoids_rise", "dopamine_rises", "gaba_rises",
               "anxiety_falls", "cbd_helps_dystonia", "minimal_side_effects", "treatments_addictive",
               "full_spectrum_advice", "us_prevalence", "symptoms", "causes", "treatments_help"}
    assert article <= ids
    assert {c.category for c in claims_file.claims} == {"mechanism", "efficacy", "safety", "product", "fact"}


def test_claim_quotes_are_the_articles_words(claims_file):
    text = open_article()
    for c in claims_file.claims:
        for part in c.quote.replace("“", "").split("; "):
            words = part.rstrip(".").split()[:4]
            assert " ".join(words).lower() in text.lower(), (c.id, words)


def open_article() -> str:
    from pathlib import Path
    here = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_10332e6a8d6bd242.txt"
    if not here.exists():
        pytest.skip("the article lives in ../shared, outside the repository")
    return here.read_text().replace("’", "'")


def test_unknown_reference_is_a_one_line_error(registry):
    refs = dict(registry.references)
    refs.pop("elmes2015")
    with pytest.raises(Exception, match="claims.evidence.ref.*elmes2015"):
        load_claims(refs)


# --- rules on hand-made numbers -------------------------------------------------------------------

CLASSES = {"consumer": spec.DoseClass(label="low", arms=["low"]),
           "pharmaceutical": spec.DoseClass(label="high", arms=["high"])}


def toy_claims_file() -> spec.ClaimsFile:
    """The real claims with two toy dose classes (arms 'low' = consumer, 'high')."""
    return spec.ClaimsFile(consumer_max_mg_per_day=50, dose_classes=CLASSES, minimal_important_change={},
                           claims=load_claims().claims)


def ctx_with(low: float, high: float, registry) -> ClaimsContext:
    doses = {"low": {"x": np.full(50, low)}, "high": {"x": np.full(50, high)}}
    return ClaimsContext(registry, doses, 50)


def engagement_rule(scale="fraction", direction="increase"):
    return spec.Engagement(kind="engagement", quantities=["x"], scale=scale, direction=direction, relevant=0.2,
                           reason="test")


@pytest.mark.parametrize("low,high,scale,verdict", [
    (0.5, 0.9, "fraction", "supported"),
    (0.01, 0.9, "fraction", "partly supported"),
    (0.01, 0.05, "fraction", "not supported"),
    (1.0, 0.7, "fold", "not supported"),      # moves the other way
    (1.3, 1.5, "fold", "supported"),
    (0.2, 0.2, "fraction", "supported"),      # exactly at the relevant change
])
def test_engagement_verdicts(low, high, scale, verdict, registry):
    cf = toy_claims_file()
    got, reason, numbers = rules.engagement(engagement_rule(scale), ctx_with(low, high, registry), cf)
    assert got == verdict, reason
    assert set(numbers["by_dose"]) == set(CLASSES)


def test_engagement_takes_the_quantity_that_moves_the_claimed_way(registry):
    """Anandamide up 25 %, 2-AG down 30 %: 'endocannabinoids rise' is met by anandamide."""
    cf = toy_claims_file()
    doses = {arm: {"aea": np.full(9, 1.25), "twoag": np.full(9, 0.7)} for arm in ("low", "high")}
    rule = spec.Engagement(kind="engagement", quantities=["aea", "twoag"], scale="fold", direction="increase",
                           relevant=0.2, reason="t")
    verdict, reason, _ = rules.engagement(rule, ClaimsContext(registry, doses, 9), cf)
    assert verdict == "supported" and "other way" not in reason
    falls = rule.model_copy(update={"direction": "decrease"})
    assert rules.engagement(falls, ClaimsContext(registry, doses, 9), cf)[0] == "supported"   # 2-AG falls 30 %


def test_parameter_uncertainty_can_turn_a_no_into_we_dont_know(registry):
    """Below the relevant change for the median patient, but the 90 % parameter-uncertainty bound
    crosses it: the model cannot say no."""
    cf = toy_claims_file()
    ctx = ctx_with(0.01, 0.05, registry)
    ctx.parameter_spread = {"high": {"x": {"median": 0.05, "p05": 0.01, "p95": 0.3}}}
    verdict, reason, numbers = rules.engagement(engagement_rule(), ctx, cf)
    assert verdict == "unknown" and "parameter uncertainty" in reason
    ctx.parameter_spread = {"high": {"x": {"median": 0.05, "p05": 0.01, "p95": 0.1}}}
    verdict, reason, _ = rules.engagement(engagement_rule(), ctx, cf)
    assert verdict == "not supported" and "holds within parameter uncertainty" in reason


def test_parameter_uncertainty_can_turn_a_yes_into_we_dont_know(registry):
    """Reached by the median patient only at the high dose, but its lower 90 % parameter bound there
    is below the relevant change: partly supported becomes unknown; a firm bound keeps it."""
    cf = toy_claims_file()
    ctx = ctx_with(0.01, 0.5, registry)
    ctx.parameter_spread = {"high": {"x": {"median": 0.5, "p05": 0.05, "p95": 0.8}}}
    verdict, reason, _ = rules.engagement(engagement_rule(), ctx, cf)
    assert verdict == "unknown" and "could stay below" in reason
    ctx.parameter_spread = {"high": {"x": {"median": 0.5, "p05": 0.3, "p95": 0.8}}}
    assert rules.engagement(engagement_rule(), ctx, cf)[0] == "partly supported"


@pytest.mark.parametrize("mean,ci,mic,verdict", [
    (-5.0, (-7.0, -3.5), 3.0, "supported"),
    (-2.0, (-3.5, -0.5), 3.0, "partly supported"),   # real, and a noticeable size is still possible
    (-1.0, (-1.8, -0.2), 3.0, "not supported"),      # real but too small to notice
    (-0.1, (-0.8, 0.6), 3.0, "not supported"),       # a 3-point benefit is ruled out
    (-1.0, (-4.0, 2.0), 3.0, "unknown"),             # too imprecise to tell
    (-1.0, (-4.0, 2.0), None, "unknown"),
    (-1.0, (-1.5, -0.5), None, "partly supported"),  # significant, importance unknown
    (1.0, (0.5, 1.5), None, "not supported"),        # significant harm
    (-1.0, None, 3.0, "unknown"),                    # one patient: no CI
])
def test_trial_arm_verdicts(mean, ci, mic, verdict):
    assert rules.arm_verdict({"mean": mean, "ci95": list(ci) if ci else None}, mic) == verdict


@pytest.mark.parametrize("mean", [-6.0, -2.0, -0.11, 0.5])
def test_a_bigger_trial_never_makes_a_verdict_more_favourable(mean):
    """The same mean effect with ever narrower CIs (more patients): once the model has said yes,
    partly or no, more patients never move it up the support scale."""
    rank = {"supported": 3, "partly supported": 2, "not supported": 0}
    decided = None
    for half in (5.0, 2.0, 0.7, 0.07, 0.007):
        got = rules.arm_verdict({"mean": mean, "ci95": [mean - half, mean + half]}, 3.0)
        if got == "unknown":
            assert decided is None, (mean, half)     # once decided, never back to unknown
            continue
        if decided is not None:
            assert rank[got] <= rank[decided], (mean, half, got, decided)
        decided = got


def ev(bearing, quality="moderate", doses=None):
    return spec.Evidence(ref="x", bearing=bearing, quality=quality, finding="f", doses_mg_per_day=doses)


def test_evidence_grading():
    assert rules.evidence_verdict([ev("supports", "low")], 50)[0] == "unknown"
    assert rules.evidence_verdict([ev("supports")], 50)[0] == "supported"
    assert rules.evidence_verdict([ev("contradicts"), ev("supports", "low")], 50)[0] == "not supported"
    assert rules.evidence_verdict([ev("supports"), ev("contradicts", "high")], 50)[0] == "partly supported"
    verdict, reason = rules.evidence_verdict([ev("supports", doses=(300, 600))], 50)
    assert verdict == "partly supported" and "300 mg/day" in reason
    verdict, reason = rules.evidence_verdict([ev("supports", doses=(600, 600)), ev("mixed", doses=(300, 300))], 50)
    assert verdict == "partly supported" and "300 mg/day" in reason


def test_combining_model_and_evidence():
    assert rules.combine("unknown", "not supported")[0] == "not supported"
    assert rules.combine("supported", "unknown")[0] == "supported"
    assert rules.combine("supported", "not supported")[0] == "unknown"
    assert rules.combine("not supported", "partly supported")[0] == "not supported"
    assert rules.combine("partly supported", "partly supported")[0] == "partly supported"


def test_combining_is_monotone():
    """Stronger support from either side never gives a weaker final verdict (unknowns aside)."""
    support = {"not supported": 0, "partly supported": 1, "supported": 2}
    for fixed in support:
        for seq in ([rules.combine(v, fixed)[0] for v in support], [rules.combine(fixed, v)[0] for v in support]):
            known = [support[f] for f in seq if f != "unknown"]
            assert known == sorted(known), (fixed, seq)


def test_prevalence_arithmetic_matches_the_published_rates(registry, claims_file):
    rule = next(c.rule for c in claims_file.claims if c.id == "us_prevalence")
    verdict, _, numbers = rules.prevalence(rule, ctx_with(0, 0, registry), claims_file)
    steeves = next(r for r in numbers["estimates"] if r["source"] == "steeves2012")
    # 16.43 per 100,000 (Steeves 2012) of 335 million people is about 55,000 (evidence file B7)
    assert steeves["implied_count"] == pytest.approx(55_000, rel=0.01)
    assert not steeves["inside"]                        # 250,000 is outside 12.09-22.32 per 100,000
    assert verdict == "partly supported"                # inside Medina 2022's wide interval only


def test_trial_rule_needs_a_trial(registry, claims_file):
    rule = next(c.rule for c in claims_file.claims if c.id == "cbd_helps_dystonia")
    assert rules.trial(rule, ctx_with(0, 0, registry), claims_file)[0] == "unknown"
    stats = {"primary_scale": "twstrs_total", "primary_day": 28.0, "control_arm": "placebo",
             "arms": {"cbd": {"difference_vs_control": {"mean": -6.0, "ci95": [-8.0, -4.0]}}}}
    ctx = ctx_with(0, 0, registry)
    ctx.trial = TrialEvidence("t", "cervical", stats, ["cbd"], {"cbd": 40.0})
    assert rules.trial(rule, ctx, claims_file)[0] == "supported"
    ctx.trial = TrialEvidence("t", "cervical", stats, ["cbd"], {"cbd": 700.0})   # only at Epidiolex-like doses
    assert rules.trial(rule, ctx, claims_file)[0] == "partly supported"


@pytest.mark.parametrize("p05, verdict, points", [
    (-0.3, "not supported", 0.15),     # best case 0.3 % of a 50-point baseline: 0.15 points
    (-8.0, "unknown", 4.0),            # best case reaches the 3-point MIC: the model cannot rule it out
])
def test_trial_rule_checks_the_parameter_best_case(registry, claims_file, p05, verdict, points):
    rule = next(c.rule for c in claims_file.claims if c.id == "cbd_helps_dystonia")
    stats = {"primary_scale": "twstrs_total", "primary_day": 28.0, "control_arm": "placebo",
             "arms": {"cbd": {"difference_vs_control": {"mean": -0.1, "ci95": [-0.8, 0.6]}}}}
    ctx = ctx_with(0, 0, registry)
    ctx.trial = TrialEvidence("t", "cervical", stats, ["cbd"], {"cbd": 40.0}, control_baseline=50.0)
    ctx.answer_uncertainty = {"cbd.severity_vs_control_pct": {"median": -0.1, "p05": p05, "p95": 0.2}}
    got, reason, numbers = rules.trial(rule, ctx, claims_file)
    assert got == verdict, reason
    assert numbers["arms"]["cbd"]["parameter_best_case_points"] == pytest.approx(points)
    assert f"largest benefit is about {points:.2f} points" in reason
    # the expected score in points, where the run has it, comes before the per-cent approximation
    ctx.answer_uncertainty["cbd.twstrs_total_vs_control_points"] = {"median": -0.5, "p05": -3.5, "p95": 0.1}
    got, reason, numbers = rules.trial(rule, ctx, claims_file)
    assert got == "unknown" and numbers["arms"]["cbd"]["parameter_best_case_points"] == pytest.approx(3.5)


# --- the verdicts follow the mechanism ------------------------------------------------------------

@pytest.fixture(scope="module")
def default_rows(registry):
    return check_claims(claims_context(registry, patients=40, seed=3, uncertainty_draws=16))


def test_default_verdicts_are_graded_and_cited(default_rows):
    for r in default_rows:
        assert r["verdict"] in VERDICTS
        assert r["evidence"]["items"] and all(i["locator"] for i in r["evidence"]["items"])
        json.dumps(r, allow_nan=False)


def test_human_faah_claim_fails_but_a_potent_inhibitor_would_pass(registry, default_rows):
    """Same rule, same evidence: only the mechanism (CBD's IC50 at FAAH) changes the model's verdict."""
    faah = next(r for r in default_rows if r["id"] == "cbd_lowers_faah")
    assert faah["model"]["verdict"] == "not supported"
    potent = registry.with_overrides({"cbd_faah_ic50_human": "0.001 umol/L"})
    rows = check_claims(claims_context(potent, patients=40, seed=3, uncertainty_draws=0))
    assert next(r for r in rows if r["id"] == "cbd_lowers_faah")["model"]["verdict"] == "supported"


def test_symptoms_and_causes_come_from_the_phenotypes(default_rows):
    symptoms = next(r for r in default_rows if r["id"] == "symptoms")["model"]["numbers"]["produced_by"]
    assert "blepharospasm" in symptoms["uncontrollable_blinking"]
    assert "laryngeal" in symptoms["speech_difficulty"]
    assert "cervical" not in symptoms["uncontrollable_blinking"]
    causes = next(r for r in default_rows if r["id"] == "causes")
    assert causes["model"]["numbers"]["bfmdrs_movement_normal"] == 0.0


def test_validation_snapshot_is_current():
    """Fails when parameters or case files change without `python -m ecsim.validation.snapshot`."""
    assert is_current(load_snapshot())


def test_claims_cli_json(capsys):
    assert main(["claims", "--json", "--patients", "40", "--seed", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all({"claim", "verdict", "evidence", "model"} <= set(r) for r in rows)
    efficacy = next(r for r in rows if r["id"] == "cbd_helps_dystonia")
    assert efficacy["model"]["rule"] == "trial" and efficacy["model"]["numbers"]["arms"]


def test_claims_cli_takes_the_runs_claim_step(monkeypatch, capsys):
    """`ecsim claims` and the report of `ecsim run` on the default scenario give the same numbers:
    the same seed (the scenario's, 20261126), 128 draws for the trial's answer, 200 patients per
    tested dose and 256 draws for the rules (docs/claims.md). Until 2026-11-27 the command used seed 1
    and 64 answer draws."""
    from ecsim import outputs, runjob
    from ecsim.simulation import Simulation
    seen = {}
    monkeypatch.setattr(Simulation, "run", lambda self, **kw: [])
    monkeypatch.setattr(outputs, "summary", lambda sc, results, registry: {})
    monkeypatch.setattr(runjob, "_uncertainty", lambda sc, sim, draws, quiet: seen.update(unc=(sc.population.seed, draws)) or {})
    monkeypatch.setattr(runjob, "_claims", lambda sc, summ, sim, patients, draws, quiet, unc:
                        seen.update(claims=(sc.population.seed, patients, draws)) or [])
    assert main(["claims", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    assert seen == {"unc": (20261126, 128), "claims": (20261126, 200, 256)}


def test_faah_ic50_override_reaches_the_model(registry):
    """The species IC50 is read through a covariate; overriding it per patient must change FAAH inhibition."""
    from ecsim.scenario import load_scenario
    from ecsim.simulation import simulate_chunk
    sc = load_scenario("claims-doses")
    arm = sc.arms[-1]
    base = simulate_chunk(sc, arm, 0, 2, registry=registry)
    potent = simulate_chunk(sc, arm, 0, 2, registry=registry, overrides={"cbd_faah_ic50_human": np.full(2, 1.0)})
    assert potent.outputs["faah_inhibition"][:, -1].mean() > 100 * base.outputs["faah_inhibition"][:, -1].mean()


@pytest.mark.parametrize("low,high,verdict", [
    (0.002, 0.009, "supported"),
    (0.002, 0.25, "partly supported"),     # minimal at consumer doses only
    (0.015, 0.25, "not supported"),        # common already at consumer doses
    (0.01, 0.01, "not supported"),         # exactly the CIOMS 'common' frequency is not minimal
])
def test_adverse_verdicts(low, high, verdict, registry):
    cf = toy_claims_file()
    doses = {arm: {"adverse.somnolence": np.full(20, x / 2), "adverse.diarrhoea": np.full(20, x), "x": np.ones(20)}
             for arm, x in (("low", low), ("high", high))}
    rule = spec.AdverseRule(kind="adverse", common=0.01, reason="test")
    got, reason, numbers = rules.adverse(rule, ClaimsContext(registry, doses, 20), cf)
    assert got == verdict, reason
    consumer = numbers["excess_risk_by_class"]["consumer"]
    assert consumer["diarrhoea"]["excess_risk"] == pytest.approx(low)
    assert consumer["somnolence"]["excess_risk"] == pytest.approx(low / 2)
    if verdict == "not supported":
        assert "diarrhoea +" in reason


def test_excess_risks_are_zero_without_drug_and_grow_with_exposure(registry):
    from ecsim.claims.context import excess_risks
    n = 5
    exposure = {"cbd_plasma_ng_per_ml.cavg": np.array([0.0, 10, 100, 300, 1000]),
                "max_single_thc_oral_equivalent_mg": np.zeros(n),
                "nclb_plasma_ng_per_ml.cavg": np.zeros(n), "cbd_daily_mg": np.array([0.0, 50, 300, 700, 1400])}
    risks = excess_risks(exposure, registry)
    for event, r in risks.items():
        assert r[0] == 0.0, event
        assert np.all(np.diff(r) >= 0), event
    assert risks["somnolence"][-1] > 0.05     # the Epidiolex label: 25-34 % vs 11 % on placebo at 20 mg/kg/day


@pytest.mark.parametrize("low,bounds,verdict", [
    (0.015, (0.002, 0.03), "unknown"),           # common by the mean, not at the lower bound
    (0.015, (0.012, 0.03), "not supported"),
    (0.002, (0.001, 0.02), "unknown"),           # minimal by the mean, not at the upper bound
    (0.002, (0.001, 0.005), "partly supported"),
])
def test_adverse_verdicts_within_parameter_uncertainty(low, bounds, verdict, registry):
    cf = toy_claims_file()
    doses = {arm: {"adverse.diarrhoea": np.full(20, x)} for arm, x in (("low", low), ("high", 0.25))}
    spread = {"draws": 64, "arms": {"low": {"diarrhoea": {"p05": bounds[0], "median": low, "p95": bounds[1]}},
                                    "high": {"diarrhoea": {"p05": 0.2, "median": 0.25, "p95": 0.3}}}}
    ctx = ClaimsContext(registry, doses, 20, adverse_spread=spread)
    got, reason, numbers = rules.adverse(spec.AdverseRule(kind="adverse", common=0.01, reason="t"), ctx, cf)
    assert got == verdict, reason
    assert numbers["consumer_largest_excess_90pct_parameter_bounds"] == list(bounds)


def test_adverse_parameter_spread_brackets_the_registry_value(registry):
    from ecsim.claims.context import adverse_parameter_spread, excess_risks
    n = 30
    exposure = {"cbd_plasma_ng_per_ml.cavg": np.linspace(50, 300, n), "nclb_plasma_ng_per_ml.cavg": np.zeros(n),
                "max_single_thc_oral_equivalent_mg": np.zeros(n), "cbd_daily_mg": np.full(n, 600.0),
                "parkinsonian_features": (np.arange(n) % 2).astype(float)}   # half with parkinsonian features
    doses = {"a": {f"input.{k}": v for k, v in exposure.items()}}
    doc = adverse_parameter_spread(registry, doses, ["a"], draws=64, seed=2)
    at_registry = {k: float(np.mean(v)) for k, v in excess_risks(exposure, registry).items()}
    for event in ("somnolence", "decreased_appetite", "parkinsonism_worse"):
        row = doc["arms"]["a"][event]
        assert row["p05"] < at_registry[event] < row["p95"], event
    assert "adverse_appetite_ec50" in doc["factors"] and doc["draws"] == 64


def test_addiction_rule_follows_the_opioid_risk(registry, claims_file):
    """Only opioid painkillers and clonazepam carry an addiction or dependence risk in the model
    (Vowles 2015: 8-12 %; Kan 1997: 40 %): partly supported; with both risks set to zero no listed
    treatment causes addiction."""
    rule = next(c.rule for c in claims_file.claims if c.id == "treatments_addictive")
    verdict, reason, numbers = rules.addiction(rule, ClaimsContext(registry, {}, 0), claims_file)
    risk = numbers["addiction_or_dependence_risk"]
    assert verdict == "partly supported", reason
    assert 0.08 <= risk["opioid painkiller (oral morphine 60 mg/day)"] <= 0.12
    assert 0.2 <= risk["benzodiazepine (clonazepam 2 mg/day)"] <= 0.7     # Kan 1997: 40 % of long-term users
    assert risk["botulinum toxin"] == 0.0 and risk["non-opioid painkiller (paracetamol 4 g/day)"] == 0.0
    none = registry.with_overrides({"opioid_addiction_risk": 1e-9, "benzodiazepine_dependence_risk": 1e-9})
    assert rules.addiction(rule, ClaimsContext(none, {}, 0), claims_file)[0] == "not supported"


# --- parameter uncertainty of the threshold, prevalence, symptoms, causes and counterexample rules --

def with_range(registry, name, low, high):
    """The registry with one parameter's uncertainty replaced by a uniform range (a test override)."""
    from ecsim.registry import Registry, Spread
    spread = Spread(distribution="uniform", low=low, high=high, basis="test")
    return Registry(dict(registry.parameters) | {name: registry[name].model_copy(update={"uncertainty": spread})},
                    registry.references)


def narrowed(registry, names, width=0.01):
    """Every named parameter's range shrunk to ±``width`` (relative) around its value."""
    for n in names:
        v = registry[n].value
        registry = with_range(registry, n, v * (1 - width), v * (1 + width))
    return registry


THRESHOLD_ARMS = ["fullspectrum_10mg_day_fasted", "fullspectrum_50mg_day_fasted", "fullspectrum_50mg_day_fed"]


def threshold_ctx(registry, draws=32, seed=1):
    """The two threshold claims' context without simulating: each patient's largest THC dose is a
    covariate of the claims-doses patients (the quantity the simulation reports)."""
    from ecsim.claims.context import doses_scenario, threshold_parameter_spread
    from ecsim.simulation import patient_inputs
    scenario = doses_scenario(200, None)
    arms = {a.name: a for a in scenario.arms}
    doses = {arm: {"thc_oral_equivalent_dose_mg":
                   patient_inputs(scenario, arms[arm], 0, 200, registry)[0]["max_single_thc_oral_equivalent_mg"]}
             for arm in THRESHOLD_ARMS}
    ctx = ClaimsContext(registry, doses, 200)
    ctx.threshold_spread["thc_impairment_threshold_mg"] = threshold_parameter_spread(
        registry, 200, None, THRESHOLD_ARMS, "thc_impairment_threshold_mg", draws, seed)
    return ctx


def claim_rule(claims_file, cid):
    return next(c.rule for c in claims_file.claims if c.id == cid)


def test_threshold_draws_reproduce_the_simulated_thc_doses(registry):
    """With every drawn range shrunk to nothing, each draw's share of patients below the threshold
    is the share from the simulated patients' own THC doses (the same patients, recomputed). The
    threshold is set near the median dose, where any mismatch would show."""
    from ecsim.claims.context import run_doses, threshold_parameter_spread
    from ecsim.uncertainty.problem import file_parameters
    from ecsim.products import THC_SYSTEMIC_PARAMETERS
    reg = narrowed(registry.with_overrides({"thc_impairment_threshold_mg": 0.6}),
                   sorted(file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS)), width=1e-9)
    spread = threshold_parameter_spread(reg, 8, 3, ["fullspectrum_50mg_day_fed"], "thc_impairment_threshold_mg", 4)
    simulated = run_doses(registry, 8, 3)["fullspectrum_50mg_day_fed"]["thc_oral_equivalent_dose_mg"]
    share = float(np.mean(simulated < 0.6))
    assert 0.0 < share < 1.0
    assert spread["arms"]["fullspectrum_50mg_day_fed"]["below"] == [pytest.approx(share)] * 4


def test_threshold_verdict_turns_unknown_when_the_threshold_range_widens(registry, claims_file):
    """'Non-psychoactive' holds for ≥95 % of patients in the fasted arms but not with a meal (2.4
    times the THC absorbed: partly supported) at the registry values; with narrow ranges it stays
    decided; with a threshold range from 0.05 to 20 mg (every patient below it at one end, most above
    at the other) the model cannot decide; a threshold the scenario sets is held, not drawn, and the
    verdict is decided again."""
    from ecsim.products import THC_SYSTEMIC_PARAMETERS
    from ecsim.uncertainty.problem import file_parameters
    rule = claim_rule(claims_file, "non_psychoactive")
    names = sorted(file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS) | {"thc_impairment_threshold_mg"})
    nominal = rules.threshold(rule, ClaimsContext(registry, threshold_ctx(registry).doses, 200), claims_file)[0]
    assert nominal == "partly supported"
    narrow = narrowed(registry, names)
    verdict, reason, numbers = rules.threshold(rule, threshold_ctx(narrow), claims_file)
    assert verdict == nominal and "holds within parameter uncertainty" in reason, reason
    wide = with_range(narrow, "thc_impairment_threshold_mg", 0.05, 20.0)
    verdict, reason, numbers = rules.threshold(rule, threshold_ctx(wide), claims_file)
    assert verdict == "unknown" and "could be" in reason, reason
    assert numbers["parameter_uncertainty"]["threshold_mg"]["p05"] < 1.0
    fixed = wide.with_overrides({"thc_impairment_threshold_mg": 2.5})      # as a scenario's `parameters` does
    verdict, reason, numbers = rules.threshold(rule, threshold_ctx(fixed), claims_file)
    assert verdict == nominal, reason
    assert "thc_impairment_threshold_mg" not in numbers["parameter_uncertainty"]["factors"]


def test_a_wider_thc_content_range_can_only_widen_the_share(registry, claims_file):
    """The full-spectrum advice (THC above the threshold) at narrow ranges vs with the THC:CBD
    ratio's range widened tenfold upwards: the share of patients above the threshold reaches
    higher; the same seed gives the same intervals, another seed other ones."""
    rule = claim_rule(claims_file, "full_spectrum_advice")
    narrow = narrowed(registry, ["full_spectrum_thc_to_cbd", "thc_impairment_threshold_mg"])
    wide = with_range(narrow, "full_spectrum_thc_to_cbd", 0.005, 0.45)
    best = {name: rules.threshold(rule, threshold_ctx(reg), claims_file)[2]["parameter_uncertainty"]
            ["fraction_claim_holds_best_arm"] for name, reg in (("narrow", narrow), ("wide", wide))}
    assert best["wide"]["p95"] > best["narrow"]["p95"] + 0.2
    assert best["wide"]["p05"] <= best["narrow"]["p95"]
    again = rules.threshold(rule, threshold_ctx(wide), claims_file)[2]["parameter_uncertainty"]
    assert again["fraction_claim_holds_best_arm"] == best["wide"]
    other = rules.threshold(rule, threshold_ctx(wide, seed=2), claims_file)[2]["parameter_uncertainty"]
    assert other["fraction_claim_holds_best_arm"] != best["wide"]


def test_prevalence_verdict_within_the_population_range(registry, claims_file):
    """250,000 lies inside Medina 2022's interval times 335 million people (17,000-629,000) and far
    above Steeves 2012's (41,000-75,000). A ±2 % population leaves the verdict decided. A population
    unsure by ±75 % (about 84-586 million) could put the count above Medina's interval too
    (187.74 per 100,000 of 84 million is 157,000), and the verdict becomes unknown."""
    rule = claim_rule(claims_file, "us_prevalence")
    verdict, reason, numbers = rules.prevalence(rule, ctx_with(0, 0, registry), claims_file)
    assert verdict == "partly supported" and "holds within parameter uncertainty" in reason
    rows = {r["source"]: r for r in numbers["estimates"]}
    assert not rows["steeves2012"]["inside_for_some_population"] and rows["medina2022"]["inside_for_every_population"]
    unsure = rule.model_copy(update={"population_uncertainty": 0.75})
    verdict, reason, numbers = rules.prevalence(unsure, ctx_with(0, 0, registry), claims_file)
    assert verdict == "unknown", reason
    medina = next(r for r in numbers["estimates"] if r["source"] == "medina2022")
    assert medina["inside_for_some_population"] and not medina["inside_for_every_population"]


def phenotype_ctx(registry, draws, names):
    from ecsim.claims.context import phenotype_parameter_spread
    ctx = ClaimsContext(registry, {}, 0)
    ctx.phenotype_spread = phenotype_parameter_spread(registry, draws, 4, [("drd", 150.0)], names=names)
    return ctx


def test_causes_and_cure_turn_unknown_when_the_d1_plasticity_range_reaches_zero(registry, claims_file):
    """Dopa-responsive dystonia arises in the model through D1 corticostriatal plasticity: without
    it (gain near 0) the typical DRD patient has no dystonia. A narrow range around the registry
    value keeps the causes and 'no cure' verdicts; a range reaching zero leaves both undecided. (12
    draws: about a quarter of [0, 0.04] gives no DRD, and the 5th percentile of 12 values is 0 only
    if two of them are; with 6 draws it rested on one.)"""
    causes, cure = claim_rule(claims_file, "causes"), claim_rule(claims_file, "no_cure")
    bare = ClaimsContext(registry, {}, 0)
    nominal = {"causes": rules.causes(causes, bare, claims_file)[0], "cure": rules.counterexample(cure, bare, claims_file)[0]}
    assert nominal == {"causes": "supported", "cure": "partly supported"}
    narrow = phenotype_ctx(with_range(registry, "plasticity_d1_ltp_gain", 0.19, 0.21), 4, ["plasticity_d1_ltp_gain"])
    assert rules.causes(causes, narrow, claims_file)[0] == nominal["causes"]
    assert rules.counterexample(cure, narrow, claims_file)[0] == nominal["cure"]
    wide = phenotype_ctx(with_range(registry, "plasticity_d1_ltp_gain", 0.0, 0.04), 12, ["plasticity_d1_ltp_gain"])
    verdict, reason, numbers = rules.causes(causes, wide, claims_file)
    assert verdict == "unknown" and "transmitter abnormality" in reason, reason
    assert numbers["parameter_uncertainty"]["bfmdrs_movement_above_normal"]["transmitter abnormality"]["p05"] == 0.0
    verdict, reason, numbers = rules.counterexample(cure, wide, claims_file)
    assert verdict == "unknown" and numbers["parameter_uncertainty"]["reduction"]["p05"] < 0.8, reason
    assert rules.symptoms(claim_rule(claims_file, "symptoms"), wide, claims_file)[0] in ("supported", "unknown")


@pytest.mark.parametrize("lo,hi,verdict", [
    (0.3, 0.9, "supported"),          # produced for sure in every draw
    (0.05, 0.9, "unknown"),           # produced by the median draw, not at the 5th percentile
])
def test_symptom_verdict_from_the_drawn_scores(registry, claims_file, lo, hi, verdict):
    """Hand-made draws: every symptom produced by some form in each draw, except that blinking's
    largest score runs from ``lo`` to ``hi`` over the draws."""
    from ecsim.circuit.scales import SYMPTOMS
    rule = claim_rule(claims_file, "symptoms")
    forms = [p for p in rules.PHENOTYPES]
    drawn = []
    for x in np.linspace(lo, hi, 20):
        scores = {p: {s: 0.5 for s in SYMPTOMS} | {"uncontrollable_blinking": x} for p in forms}
        drawn.append({"by_phenotype": {p: {"bfmdrs_movement": 10.0, "symptoms": scores[p]} for p in forms},
                      "levodopa": {}})
    ctx = ClaimsContext(registry, {}, 0)
    ctx.phenotype_spread = {"draws": 20, "draws_refused": 0, "draws_faulted": 0, "factors": ["x"], "numbers": drawn}
    got, reason, numbers = rules.symptoms(rule, ctx, claims_file)
    assert got == verdict, reason
    assert numbers["parameter_uncertainty"]["largest_score_over_forms"]["uncontrollable_blinking"]["p05"] == \
        pytest.approx(np.percentile(np.linspace(lo, hi, 20), 5), rel=1e-2)


# --- parameter uncertainty of the addiction rule ----------------------------------------------------

ADDICTIVE = ("opioid painkiller (oral morphine 60 mg/day)", "benzodiazepine (clonazepam 2 mg/day)")
RISKS = ("opioid_addiction_risk", "benzodiazepine_dependence_risk")
TIMES = ("opioid_risk_time", "benzodiazepine_dependence_time")


def addiction_ctx(registry, claims_file, draws=64, seed=1):
    from ecsim.claims.context import addiction_parameter_spread
    rule = claim_rule(claims_file, "treatments_addictive")
    ctx = ClaimsContext(registry, {}, 0)
    ctx.addiction_spread[rule.course_days] = addiction_parameter_spread(registry, rule.course_days, draws, seed)
    return rule, ctx


def test_addiction_draws_stay_inside_the_risk_formulas_bounds(registry, claims_file):
    """P = p (1 - exp(-365 / tau)) over a year: every drawn risk lies between the lowest p at the
    slowest build-up (tau 365 d) and the highest p at the fastest (tau 30 d), from the registry's
    ranges (Vowles 2015: 3-17 %; Kan 1997's 40 % within 20-70 %); drugs with no addiction in the
    model stay at 0."""
    rule, ctx = addiction_ctx(registry, claims_file)
    spread = ctx.addiction_spread[rule.course_days]
    assert spread["draws_refused"] == 0 and set(RISKS + TIMES) <= set(spread["factors"])
    for name, p, tau in zip(ADDICTIVE, RISKS, TIMES):
        pu, tu = registry[p].uncertainty, registry[tau].uncertainty
        low = pu.low * (1 - np.exp(-365.0 / tu.high))
        high = pu.high * (1 - np.exp(-365.0 / tu.low))
        drawn = np.array(spread["risks"][name])
        assert len(drawn) == 64 and low <= drawn.min() < drawn.max() <= high
    assert max(spread["risks"]["baclofen (60 mg/day)"]) == 0.0


def test_addiction_verdict_holds_when_narrow_and_turns_unknown_when_the_risks_straddle_the_line(registry,
                                                                                                claims_file):
    """Both addictive drugs stay above 1 % over the registry's ranges: "partly supported" holds. With
    both risk ranges widened down to 0.05 % (log-uniform), their 5th percentiles fall below 1 % while
    the 95th stay above: at one end no treatment causes addiction, at the other two do: unknown. A
    risk the scenario sets is held, not drawn, and the verdict is decided again."""
    rule, ctx = addiction_ctx(narrowed(registry, RISKS + TIMES), claims_file)
    verdict, reason, numbers = rules.addiction(rule, ctx, claims_file)
    assert verdict == "partly supported" and "holds within parameter uncertainty" in reason, reason
    rule, ctx = addiction_ctx(registry, claims_file)
    assert rules.addiction(rule, ctx, claims_file)[0] == "partly supported"
    wide = with_range(with_range(registry, RISKS[0], 0.0005, 0.17), RISKS[1], 0.0005, 0.7)
    rule, ctx = addiction_ctx(wide, claims_file)
    verdict, reason, numbers = rules.addiction(rule, ctx, claims_file)
    assert verdict == "unknown" and "could be not supported" in reason, reason
    risk = numbers["parameter_uncertainty"]["risk"]
    assert all(risk[n]["p05"] < rule.common <= risk[n]["p95"] for n in ADDICTIVE)
    held = wide.with_overrides({RISKS[0]: 0.10, RISKS[1]: 0.40})
    rule, ctx = addiction_ctx(held, claims_file)
    verdict, reason, numbers = rules.addiction(rule, ctx, claims_file)
    assert verdict == "partly supported", reason
    assert not set(RISKS) & set(numbers["parameter_uncertainty"]["factors"])


def test_claims_context_draws_the_addiction_parameters(default_rows):
    row = next(r for r in default_rows if r["id"] == "treatments_addictive")
    drawn = row["model"]["numbers"]["parameter_uncertainty"]
    assert drawn["draws"] == 16 and "opioid_addiction_risk" in drawn["factors"]
    assert row["model"]["verdict"] == "partly supported"


def test_the_meal_dose_in_the_threshold_text_follows_the_converted_doses(registry, claims_file):
    """The CBD dose at which an oil with food reaches the THC threshold uses the same conversion as
    the patients' doses: where first pass caps the meal's effect (fh 0.12: at most 0.12 / 0.10 =
    1.2 times the fasted THC instead of 2.4), the text must say so too."""
    rule = claim_rule(claims_file, "non_psychoactive")
    for overrides, fed in (({}, 2.4), ({"thc_fh_oral": 0.12}, 0.12 / 0.10)):
        reg = registry.with_overrides(overrides) if overrides else registry
        numbers = rules.threshold(rule, threshold_ctx(reg, draws=4), claims_file)[2]
        limit, ratio = reg["thc_impairment_threshold_mg"].value, reg["full_spectrum_thc_to_cbd"].value
        assert numbers["cbd_mg_per_dose_reaching_threshold_at_median_thc_ratio_with_a_meal"] == pytest.approx(
            limit / ratio / fed, rel=1e-3)
