"""Morris screening of each claim's numbers (issue 9): exact elementary effects of a linear function
through the claims' own screening path, analytic bounds on the addiction risks' effects, seeds,
and the command line."""

import json

import numpy as np
import pytest

from ecsim.claims import load_claims
from ecsim.claims.context import ADDICTION_COURSES
from ecsim.claims.sensitivity import (DECIDING_SHARE, ClaimNumber, addiction_group, claims_sensitivity,
                                      format_claims_sensitivity, screen, threshold_group)
from ecsim.cli import main
from ecsim.uncertainty.problem import Factor, Problem

# y = 5 x1 - 2 x2 (+ 0 x3): x1 uniform [2, 6], x2 uniform [-1, 1], x3 uniform [0, 10] (ranges at most
# 3-fold: linear, not log-uniform quantiles). Per unit of quantile every elementary effect of a linear
# function is |coefficient| x (high - low): 20, 4 and 0, with no spread (sigma 0).
LINEAR = Problem((Factor("x1", "uniform", 4.0, (2.0, 6.0)), Factor("x2", "uniform", 0.0, (-1.0, 1.0)),
                  Factor("x3", "uniform", 5.0, (0.0, 10.0))))


def linear(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": 5.0 * x[:, 0] - 2.0 * x[:, 1]}


def test_linear_function_has_exact_mu_star_and_a_missing_parameter_none():
    at_stake = ClaimNumber("c", "y", "y against 20", 20.0, "u")
    row, = screen(LINEAR, linear, [at_stake], trajectories=12, seed=5)
    mu = {x["parameter"]: x["mu_star"] for x in row["top"]}
    assert mu == pytest.approx({"x1": 20.0, "x2": 4.0}, abs=1e-9)
    assert "x3" not in mu                                           # mu* = 0: not listed
    assert all(x["sigma"] == pytest.approx(0.0, abs=1e-9) for x in row["top"])
    assert row["top"][0]["share"] == pytest.approx(20.0 / 24.0, abs=1e-4)
    assert row["at_registry_values"] == pytest.approx(20.0)        # 5 x 4 - 2 x 0
    # the screened sets lie on the 1/8 ... 7/8 quantiles: x1 in [2.5, 5.5], x2 in [-0.75, 0.75]
    lo, hi = row["screened_range"]
    assert 11.0 - 1e-9 <= lo < 20.0 < hi <= 29.0 + 1e-9
    assert row["at_stake"] and row["decided_by"] == "x1" and 20.0 / 24.0 > DECIDING_SHARE


def test_a_line_outside_the_screened_range_is_not_at_stake_and_balanced_effects_decide_nothing():
    far = ClaimNumber("c", "y", "y against 40", 40.0, "u")
    row, = screen(LINEAR, linear, [far], trajectories=8, seed=5)
    assert not row["at_stake"] and row["decided_by"] is None and "below 40" in row["measure_next"]
    balanced = Problem((Factor("a", "uniform", 0.0, (-1.0, 1.0)), Factor("b", "uniform", 0.0, (-1.0, 1.0))))
    row, = screen(balanced, lambda x: {"y": x[:, 0] + x[:, 1]}, [ClaimNumber("c", "y", "", 0.0, "u", ">")], 8, 5)
    assert row["at_stake"] and row["decided_by"] is None             # each holds half: neither decides alone
    assert [x["share"] for x in row["top"]] == pytest.approx([0.5, 0.5])


def test_same_seed_same_indices_another_seed_other_design(registry, claims_file):
    g = addiction_group(registry, claims_file)
    a = screen(g.problem, g.function, g.numbers, 4, seed=3, registry=registry)
    b = screen(g.problem, g.function, g.numbers, 4, seed=3, registry=registry)
    c = screen(g.problem, g.function, g.numbers, 4, seed=4, registry=registry)
    assert a == b
    assert a != c


@pytest.fixture(scope="module")
def claims_file(registry):
    return load_claims(registry.references)


def test_addiction_effects_follow_the_risk_formula(registry, claims_file):
    """P = p (1 - exp(-365 d / tau)) (Vowles 2015's p for opioids, Kan 1997's for benzodiazepines):
    only p and tau enter each risk, so every other painkiller and oral-agent parameter has mu* = 0;
    P is linear in p (uniform, 3-17 % and 20-70 %), so mu*(p) = range(p) x the mean of
    1 - exp(-365/tau) over the visited tau, which lies between its values at tau's 7/8 and 1/8
    quantiles (tau log-uniform on 30-365 d)."""
    g = addiction_group(registry, claims_file)
    rows = {n.key.split(".", 1)[1]: r for n, r in zip(g.numbers, screen(g.problem, g.function, g.numbers, 6, 1,
                                                                           registry, top=40))}
    assert set(rows) == {name for name, (kind, _) in ADDICTION_COURSES.items() if kind}
    tau = 30.0 * (365.0 / 30.0) ** np.array([7 / 8, 1 / 8])
    low, high = 1.0 - np.exp(-365.0 / tau)
    for name, p, t, width in (("opioid painkiller (oral morphine 60 mg/day)", "opioid_addiction_risk",
                               "opioid_risk_time", 0.14),
                              ("benzodiazepine (clonazepam 2 mg/day)", "benzodiazepine_dependence_risk",
                               "benzodiazepine_dependence_time", 0.5)):
        mu = {x["parameter"]: x["mu_star"] for x in rows[name]["top"]}
        assert set(mu) == {p, t}, mu
        assert width * low - 1e-9 <= mu[p] <= width * high + 1e-9
        assert rows[name]["top"][0]["source"] in ("vowles2015", "kan1997")
        assert not rows[name]["at_stake"]                             # far above 1 % everywhere
    for name in ("non-opioid painkiller (paracetamol 4 g/day)", "baclofen (60 mg/day)"):
        assert rows[name]["top"] == [] and rows[name]["screened_range"] == [0.0, 0.0]


def test_threshold_screen_draws_the_products_thc_absorption_and_the_threshold(registry, claims_file):
    """The THC dose compared with the oral threshold depends on the product's THC, the meal and
    THC's bioavailabilities: all are factors of the screen."""
    from ecsim.products import THC_SYSTEMIC_PARAMETERS
    from ecsim.uncertainty.problem import file_parameters
    g = threshold_group(registry, claims_file, 40)
    assert set(g.problem.names) == (file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS)
                                    | {"thc_impairment_threshold_mg"})


def test_threshold_share_is_decided_by_the_threshold_when_it_is_the_only_uncertainty(registry, claims_file):
    """With every product parameter and THC bioavailability held (a scenario's value is held, not
    drawn), only the THC threshold is left: it holds all the effect on the share of patients below it."""
    from ecsim.products import THC_SYSTEMIC_PARAMETERS
    from ecsim.uncertainty.problem import file_parameters
    held = registry.with_overrides({n: registry[n].value
                                    for n in file_parameters("products.yaml") | set(THC_SYSTEMIC_PARAMETERS)})
    g = threshold_group(held, claims_file, 40)
    assert g.problem.names == ["thc_impairment_threshold_mg"]
    rows = screen(g.problem, g.function, g.numbers, 6, 2, held)
    moved = [r for r in rows if r["top"]]
    assert moved and all(r["top"][0]["parameter"] == "thc_impairment_threshold_mg" and r["top"][0]["share"] == 1.0
                         for r in moved)


def cheap_claims(claims_file):
    """The claims file with only the algebraic threshold and addiction claims (seconds, no simulation)."""
    return claims_file.model_copy(update={"claims": [c for c in claims_file.claims
                                                     if c.rule.kind in ("threshold", "addiction", "prevalence")]})


def test_claims_sensitivity_document(registry, claims_file):
    from ecsim.scenario import load_scenario
    doc = claims_sensitivity(load_scenario(None), registry, trajectories=3, seed=1, patients=40,
                             claims=cheap_claims(claims_file))
    assert set(doc["groups"]) == {"products and threshold", "addiction"}
    assert doc["groups"]["addiction"]["evaluations"] == 3 * (doc["groups"]["addiction"]["factors"] + 1)
    screened = [c.id for c in cheap_claims(claims_file).claims if c.rule.kind != "prevalence"]
    assert [c["id"] for c in doc["claims"]] == screened                  # in the claims file's order
    assert sorted(screened) == ["full_spectrum_advice", "non_psychoactive", "treatments_addictive"]
    assert doc["not_screened"] == [{"id": "us_prevalence", "rule": "prevalence",
                                    "why": doc["not_screened"][0]["why"]}]
    json.dumps(doc, allow_nan=False)
    text = format_claims_sensitivity(doc)
    assert "opioid_addiction_risk" in text and "not screened: us_prevalence" in text


def test_cli_claims_sensitivity(capsys, monkeypatch, registry, claims_file):
    import ecsim.claims.spec as spec
    monkeypatch.setattr(spec, "load_claims", lambda references=None: cheap_claims(claims_file))
    assert main(["sensitivity", "--claims", "--json", "--trajectories", "2", "--seed", "4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == 4 and doc["claims"][0]["numbers"][0]["top"]
    assert main(["sensitivity", "--claims", "--joint", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--joint" in err and "Traceback" not in err


def test_adverse_group_recomputes_the_simulated_patients_thc_doses(registry):
    """The adverse screen draws the products' THC and THC's absorption and recomputes each patient's
    oral-equivalent THC dose per set; at the registry values it must give back the risks of the
    simulated claims-doses patients (the same patients, the same doses)."""
    from ecsim.claims.context import excess_risks, run_doses
    from ecsim.claims.sensitivity import adverse_group
    from ecsim.products import THC_SYSTEMIC_PARAMETERS
    claims = load_claims()
    g = adverse_group(registry, claims, 40)
    drawn = set(THC_SYSTEMIC_PARAMETERS) | {"full_spectrum_thc_to_cbd", "thc_impairment_threshold_mg"}
    assert drawn <= set(g.problem.names)
    at_registry = np.array([[registry[n].value for n in g.problem.names]])
    got = g.function(at_registry)
    doses = run_doses(registry, 40, None)
    for key, dc in claims.dose_classes.items():
        expected = max(float(np.mean(v)) for arm in dc.arms for v in excess_risks(
            {k[len("input."):]: x for k, x in doses[arm].items() if k.startswith("input.")}, registry).values())
        assert got[f"minimal_side_effects.{key}"][0] == pytest.approx(expected, rel=1e-12), key
    no_meal_effect = at_registry.copy()
    no_meal_effect[0, g.problem.names.index("thc_food_factor")] = 1.0   # the fed arm's THC counts once, not 2.4 times
    consumer = "minimal_side_effects.consumer"
    assert g.function(no_meal_effect)[consumer][0] < 0.5 * got[consumer][0]
