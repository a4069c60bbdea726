"""Dose titration (scenario.Titration, designs.titrated_chunk): forced schedules as dosing steps,
flexible (response-guided) titration as a per-patient choice among forced schedules."""

import numpy as np
import pytest

from ecsim.clinical_summary import clinical_table, trial_statistics
from ecsim.errors import InputError
from ecsim.scenario import parse_scenario
from ecsim.simulation import Simulation, simulate_chunk

TEXT = """
name: titration
duration_days: {duration}
output_step_h: 2
visit_interval_days: 7
population: {{n: {n}, seed: {seed}, phenotype: cervical}}
trial: {{placebo_response: true, control_arm: placebo, responder_fraction: {responder}}}
arms:
  - name: placebo
  - name: cbd
    food: low_fat
{arm}
"""

FLEXIBLE = """    titration:
      levels: [5 mg/kg, 10 mg/kg, 20 mg/kg]
      times_h: [0, 12]
      step_days: 7
      dose_limiting: {limiting}"""


def scenario(arm=FLEXIBLE.format(limiting="[]"), n=24, seed=3, duration=21, responder=0.15):
    return parse_scenario(TEXT.format(arm=arm, n=n, seed=seed, duration=duration, responder=responder))


# ---------------------------------------------------------------- schema


@pytest.mark.parametrize("arm, field", [
    ("    titration: {levels: [10 mg/kg, 5 mg/kg], times_h: [8], step_days: 7}", "levels"),
    ("    titration: {levels: [10 mg, 20 mg/kg], times_h: [8], step_days: 7}", "levels"),
    ("    titration: {levels: [10 mg], times_h: [8], step_days: 7}", "levels"),
    ("    titration: {levels: [10 mg, 20 mg], times_h: [8], step_days: 5}", "arms.cbd.titration.step_days"),
    ("    titration: {levels: [10 mg, 20 mg, 30 mg, 40 mg], times_h: [8], step_days: 14}",
     "arms.cbd.titration.step_days"),
    ("    titration: {levels: [10 mg, 20 mg], times_h: [8.5], step_days: 7}", "arms.cbd.titration"),
    ("    cbd: [{dose: 5 mg, times_h: [8]}]\n    titration: {levels: [10 mg, 20 mg], times_h: [8], step_days: 7}",
     "cbd"),
    ("    titration: {levels: [10 mg, 20 mg], times_h: [8], step_days: 7, dose_limiting: [headache]}",
     "dose_limiting"),
    ("    titration: {levels: [10 mg, 20 mg], times_h: [8], step_days: 7, rule: sometimes}", "rule"),
])
def test_bad_titrations_name_the_field(arm, field):
    with pytest.raises(InputError) as err:
        scenario(arm)
    where = str(err.value).split(":")[0]
    assert field in (where if where != "scenario" else str(err.value)), str(err.value)
    assert "\n" not in str(err.value)


def test_a_forced_titration_must_reach_its_top_level_inside_the_run():
    """Four weekly levels need more than 21 days; in 14 the top two would never be given."""
    arm = FLEXIBLE.format(limiting="[]").replace("20 mg/kg]", "20 mg/kg, 40 mg/kg]") + "\n      rule: forced"
    with pytest.raises(InputError, match="^arms.cbd.titration.step_days: got 7.*on day 21"):
        scenario(arm, duration=21)
    assert scenario(arm, duration=22).arms[1].titration.rule == "forced"


def test_flexible_titration_needs_a_phenotype_and_no_crossover():
    text = TEXT.format(arm=FLEXIBLE.format(limiting="[]"), n=4, seed=1, duration=21, responder=0.2)
    with pytest.raises(InputError, match="^arms.cbd.titration"):
        parse_scenario(text.replace(", phenotype: cervical", "").replace(
            "trial: {placebo_response: true, control_arm: placebo, responder_fraction: 0.2}", ""))
    with pytest.raises(InputError, match="^arms.cbd.titration"):
        parse_scenario(text.replace("responder_fraction: 0.2}", "responder_fraction: 0.2, crossover: {period_days: 21}}")
                       .replace("duration_days: 21", "duration_days: 42"))


# ---------------------------------------------------------------- forced titration


def test_forced_titration_is_its_dosing_steps():
    forced = scenario(FLEXIBLE.format(limiting="[]") + "\n      rule: forced", n=6)
    steps = """    cbd:
      - {dose: 5 mg/kg, times_h: [0, 12], to_day: 7}
      - {dose: 10 mg/kg, times_h: [0, 12], from_day: 7, to_day: 14}
      - {dose: 20 mg/kg, times_h: [0, 12], from_day: 14}"""
    written = scenario(steps, n=6)
    a, b = Simulation(forced).run()[1], Simulation(written).run()[1]
    assert np.array_equal(a.clinical["twstrs_total"], b.clinical["twstrs_total"])
    assert np.array_equal(a.mean["cbd_plasma_ng_per_ml"], b.mean["cbd_plasma_ng_per_ml"])
    assert "titration_level" not in a.labels


# ---------------------------------------------------------------- flexible titration


@pytest.fixture(scope="module")
def forced_schedules():
    s = scenario(n=24)
    arm = s.arms[1]
    return s, [simulate_chunk(s, arm.forced(k), 0, 24) for k in range(3)]


def test_forced_schedules_agree_until_each_decision(forced_schedules):
    """The argument behind flexible titration: escalating to level k and holding it has the same
    inputs as escalating further until the decision visit at day k x step, so the schedules agree
    there, drug levels to the visit and clinical visits through it (doses at 0 h included)."""
    s, schedules = forced_schedules
    top = schedules[-1]
    t = top.times_h
    for k, forced in enumerate(schedules[:-1]):
        day = (k + 1) * 7
        upto = t <= day * 24
        for name in top.outputs:
            assert np.array_equal(forced.outputs[name][:, upto], top.outputs[name][:, upto]), name
        visits = int(np.flatnonzero(forced.clinical.visit_days == day)[0]) + 1
        for name in top.clinical.totals:
            assert np.array_equal(forced.clinical.totals[name][:, :visits], top.clinical.totals[name][:, :visits])
        assert not np.array_equal(forced.outputs["cbd_plasma_ng_per_ml"], top.outputs["cbd_plasma_ng_per_ml"])


def test_each_patient_follows_the_forced_schedule_of_the_level_chosen(forced_schedules):
    """Escalation on response only: each patient stops at the first decision visit where TWSTRS
    has improved by 15 % of baseline (read here from the top schedule), and their whole trajectory
    is that forced schedule's."""
    s, schedules = forced_schedules
    titrated = simulate_chunk(s, s.arms[1], 0, 24)
    score = schedules[-1].clinical.totals["twstrs_total"]
    base = score[:, 0]
    expected = np.full(24, 3)
    for k in (2, 1):   # from the last decision back, so the first one wins
        expected[(base > 0) & (base - score[:, k] >= 0.15 * base)] = k
    level = titrated.labels["titration_level"]
    assert np.array_equal(level, expected)
    assert 0 < np.mean(level < 3) < 1   # some patients respond on the way, some reach the top
    for i in range(24):
        forced = schedules[level[i] - 1]
        for name in ("cbd_plasma_ng_per_ml", "cb1_signal_glu_corticostriatal_rel"):
            assert np.array_equal(titrated.outputs[name][i], forced.outputs[name][i])
        assert np.array_equal(titrated.clinical.totals["twstrs_total"][i], forced.clinical.totals["twstrs_total"][i])
    reasons = titrated.labels["titration_reason"]
    assert set(reasons[level < 3]) <= {"responded"} and set(reasons[level == 3]) == {"top_level"}


def test_dose_limiting_effects_stop_escalation_at_their_rate():
    """With a 20-fold dose range, ALT elevation and somnolence become likely at the top levels;
    escalation stops for them, and the share stopped at the first level matches the per-step
    chance computed from the first level's exposure (binomial error)."""
    from ecsim.designs import COURSE_DAYS
    from ecsim.exposure import exposure_metrics
    from ecsim.treatments.adverse import adverse_effects
    arm = """    titration:
      levels: [5 mg/kg, 25 mg/kg, 50 mg/kg]
      times_h: [0, 12]
      step_days: 14
      dose_limiting: [somnolence, alt_over_3x_uln]"""
    s = scenario(arm, n=300, duration=35, responder=0.99)   # nobody responds by 99 %; level 3 from day 28
    titrated = simulate_chunk(s, s.arms[1], 0, 300)
    level, reasons = titrated.labels["titration_level"], titrated.labels["titration_reason"]
    assert set(reasons) <= {"dose_limiting", "top_level"}
    first = simulate_chunk(s, s.arms[1].forced(0), 0, 300)
    e = exposure_metrics(first.times_h, first.outputs, first.values)
    on = adverse_effects(e, e["cbd_daily_mg"])
    off = adverse_effects({k: np.zeros(300) for k in e}, np.zeros(300))
    p = 1 - np.prod([1 - np.clip(on[k] - off[k], 0, 1) for k in ("somnolence", "alt_over_3x_uln")], axis=0)
    q = 1 - (1 - p) ** (14 / COURSE_DAYS)
    stopped = np.mean(level == 1)
    assert abs(stopped - q.mean()) < 4 * np.sqrt(q.mean() * (1 - q.mean()) / 300) + 1 / 300
    assert np.mean(level == 2) > stopped   # the second level is far more toxic


@pytest.fixture(scope="module")
def titration_run():
    s = scenario(FLEXIBLE.format(limiting="[somnolence, diarrhoea, decreased_appetite, alt_over_3x_uln]"), n=40)
    return s, Simulation(s).run()


def test_the_distribution_of_final_doses_is_reported(titration_run):
    s, results = titration_run
    doc = trial_statistics(results, "twstrs_total", "placebo", 0.15)["titration"]["cbd"]
    level = results[1].labels["titration_level"]
    assert doc["levels"] == ["5 mg/kg", "10 mg/kg", "20 mg/kg"]
    assert doc["final_level_share"] == [round(float(np.mean(level == k)), 4) for k in (1, 2, 3)]
    assert sum(doc["stopped_because"].values()) == pytest.approx(1.0)
    weight = results[1].exposure["body_weight_kg"]
    assert doc["final_daily_dose_mg"]["mean"] == pytest.approx(np.mean(np.array([5, 10, 20])[level - 1] * 2 * weight),
                                                               abs=0.01)
    # the exposure of each patient is the one of their final level: labelled CBD per day on the last day
    assert np.allclose(results[1].exposure["cbd_daily_mg"], np.array([5, 10, 20])[level - 1] * 2 * weight)
    table = clinical_table(results)
    assert set(table[table["arm"] == "cbd"]["titration_level"]) == set(level.tolist())


def test_titration_does_not_depend_on_chunking(titration_run):
    s, results = titration_run
    from ecsim.simulation import Simulation as Sim
    chunked = Sim(s, chunk=7).run()
    assert np.array_equal(chunked[1].labels["titration_level"], results[1].labels["titration_level"])
    assert np.array_equal(chunked[1].clinical["twstrs_total"], results[1].clinical["twstrs_total"])
