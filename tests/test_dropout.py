"""Withdrawal over a trial (treatments.dropout): hazard, adverse effects, completers and ITT-LOCF."""

import numpy as np
import pytest

from ecsim.clinical_summary import trial_statistics
from ecsim.errors import InputError
from ecsim.scenario import Dropout, parse_scenario
from ecsim.simulation import ArmResult
from ecsim.treatments.dropout import (DropoutModel, dropout_statistics, excess_adverse_risk, observed_columns,
                                      withdrawal_days)


def test_registry_hazard_reproduces_its_sources(registry):
    """dropout_weekly_hazard sits between the two control arms it is derived from: Devinsky 2017
    placebo (3 of 59 over 14 weeks) and Counsell 2016 (26 of 110 without 24-week outcomes)."""
    m = DropoutModel.from_registry(registry)
    lost = lambda weeks: 1 - np.exp(-m.weekly_hazard * weeks)   # noqa: E731
    assert 3 / 59 <= lost(14) <= 26 / 110 * 14 / 24 + 0.05
    assert 3 / 59 * 24 / 14 <= lost(24) <= 26 / 110


def test_simulated_withdrawals_match_the_hazard(registry):
    m = DropoutModel.from_registry(registry)
    t = withdrawal_days(m, np.arange(20000), seed=7, weeks=24)
    share = np.mean(t <= 24 * 7)
    assert share == pytest.approx(1 - np.exp(-m.weekly_hazard * 24), abs=0.01)


def test_withdrawal_days_do_not_depend_on_chunking_or_arm(registry):
    m = DropoutModel(0.05, 0.2)
    whole = withdrawal_days(m, np.arange(0, 1500), 11, 12)
    parts = np.concatenate([withdrawal_days(m, np.arange(a, min(a + 700, 1500)), 11, 12) for a in range(0, 1500, 700)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(withdrawal_days(m, np.array([5, 900]), 11, 12), whole[[5, 900]])
    assert np.all(np.isinf(withdrawal_days(DropoutModel(0.0, 0.2), np.arange(10), 11, 12)))


def test_adverse_effects_raise_withdrawal_as_in_devinsky_2017(registry):
    """Devinsky 2017: 9 of 61 withdrew on CBD 20 mg/kg/day vs 3 of 59 on placebo over 14 weeks.
    A patient with the model's excess adverse risk at that dose (0.53) withdraws more often by about
    w x 0.53 (about 0.1), within the trial's binomial spread."""
    m = DropoutModel.from_registry(registry)
    ids = np.arange(20000)
    base = np.mean(withdrawal_days(m, ids, 3, 14) <= 98)
    raised = np.mean(withdrawal_days(m, ids, 3, 14, np.full(len(ids), 0.532)) <= 98)
    assert raised - base == pytest.approx(9 / 61 - 3 / 59, abs=0.03)
    off = DropoutModel(m.weekly_hazard, m.adverse_share, adverse=False)
    assert np.mean(withdrawal_days(off, ids, 3, 14, np.full(len(ids), 0.532)) <= 98) == base


def test_excess_adverse_risk_is_zero_without_drug(registry):
    n = 5
    exposure = {"cbd_plasma_ng_per_ml.cavg": np.zeros(n), "max_single_thc_oral_equivalent_mg": np.zeros(n),
                "cbd_daily_mg": np.zeros(n)}
    assert np.allclose(excess_adverse_risk(exposure, registry), 0.0)
    exposure |= {"cbd_plasma_ng_per_ml.cavg": np.full(n, 300.0), "cbd_daily_mg": np.full(n, 1000.0)}
    assert np.all(excess_adverse_risk(exposure, registry) > 0.1)


def test_last_observation_carried_forward():
    values = np.array([[40.0, 35.0, 30.0, 25.0], [40.0, 35.0, 30.0, 25.0], [40.0, 35.0, 30.0, 25.0]])
    days = np.array([0.0, 28.0, 56.0, 84.0])
    locf = observed_columns(values, days, np.array([np.inf, 60.0, 10.0]))
    assert locf.tolist() == [[40, 35, 30, 25], [40, 35, 30, 30], [40, 40, 40, 40]]


def test_completers_and_itt_by_hand():
    days = np.array([0.0, 28.0, 56.0])
    arms = {"placebo": {"values": np.array([[40.0, 38, 36], [40, 38, 36]]), "leave": np.array([np.inf, np.inf])},
            "drug": {"values": np.array([[40.0, 30, 20], [40, 39, 38]]), "leave": np.array([np.inf, 30.0])}}
    doc = dropout_statistics(arms, "placebo", 2, days, lambda c, ref: {"n": len(c), "mean": float(np.mean(c)),
                                                                   "diff": None if ref is None else float(np.mean(c) - np.mean(ref))})
    assert doc["withdrawn_by_primary_day"] == {"placebo": 0.0, "drug": 0.5}
    assert doc["completers"]["drug"] == {"n": 1, "mean": -20.0, "diff": -16.0}
    # ITT-LOCF: the patient who left after day 28 keeps 39: changes -20 and -1
    assert doc["itt_locf"]["drug"] == {"n": 2, "mean": -10.5, "diff": -6.5}


def _arm(name, values, patients):
    r = ArmResult(name, np.array([0.0]))
    r.visit_days = np.array([0.0, 28.0, 56.0, 84.0])
    r.clinical = {"twstrs_total": values.astype(np.float32)}
    r.patients = patients
    n = len(patients)
    r.exposure = {"cbd_plasma_ng_per_ml.cavg": np.zeros(n), "max_single_thc_oral_equivalent_mg": np.zeros(n),
                  "cbd_daily_mg": np.zeros(n)}
    r.n = n
    return r


def test_trial_statistics_dropout_block_and_unchanged_without_it():
    rng = np.random.default_rng(4)
    n = 3000
    ids = np.arange(n)
    base = np.full((n, 1), 45.0)
    placebo = _arm("placebo", base - np.array([[0, 3, 4, 4]]) + rng.normal(0, 2, (n, 4)), ids)
    drug = _arm("drug", base - np.array([[0, 5, 9, 12]]) + rng.normal(0, 2, (n, 4)), ids)
    plain = trial_statistics([placebo, drug], "twstrs_total", "placebo", 0.25)
    with_dropout = trial_statistics([placebo, drug], "twstrs_total", "placebo", 0.25,
                                    dropout=Dropout(weekly_hazard=0.05, adverse_effects=False), seed=9)
    assert "dropout" not in plain
    assert {k: v for k, v in with_dropout.items() if k != "dropout"} == plain
    d = with_dropout["dropout"]
    assert d["withdrawn_by_primary_day"]["drug"] == pytest.approx(1 - np.exp(-0.05 * 12), abs=0.03)
    comp = d["completers"]["drug"]["difference_vs_control"]["mean"]
    itt = d["itt_locf"]["drug"]["difference_vs_control"]["mean"]
    assert comp == pytest.approx(-8.0, abs=0.4)
    assert itt > comp + 0.5            # carrying earlier, smaller improvements forward dilutes a growing effect
    assert d["itt_locf"]["drug"]["n"] == n > d["completers"]["drug"]["n"]


def test_dropout_is_off_by_default_and_scenario_values_are_checked():
    sc = parse_scenario("name: t\nduration_days: 28\npopulation: {phenotype: cervical}\narms: [{name: a}]\n")
    assert sc.trial.dropout is None
    ok = parse_scenario("name: t\nduration_days: 28\npopulation: {phenotype: cervical}\n"
                        "trial: {dropout: {weekly_hazard: 0.02}}\narms: [{name: a}]\n")
    assert ok.trial.dropout.weekly_hazard == 0.02 and ok.trial.dropout.adverse_effects


@pytest.mark.parametrize("bad", ["{weekly_hazard: -0.1}", "{weekly_hazard: 0.9}", "{weekly_hazard: .nan}",
                                 "{weekly_hazard: abc}", "{weekly_hazard: true}", "{adverse_effects: 3}",
                                 "{hazard: 0.1}", "0.1", "[0.1]"])
def test_bad_dropout_values_are_one_line_errors(bad):
    text = f"name: t\nduration_days: 28\npopulation: {{phenotype: cervical}}\ntrial: {{dropout: {bad}}}\narms: [{{name: a}}]\n"
    with pytest.raises(InputError) as err:
        parse_scenario(text)
    assert "\n" not in str(err.value) and "dropout" in err.value.field


def test_dropout_needs_a_phenotype():
    with pytest.raises(InputError, match="trial"):
        parse_scenario("name: t\nduration_days: 28\ntrial: {dropout: {}}\narms: [{name: a}]\n")
