"""Clonazepam and baclofen: efficacy at their layer, adverse effects, scenario bounds.

Expected values come from the papers (registry/bibliography.yaml). Calibration (the efficacy
parameter was set from the same number, so the test checks the wiring): Woo 2020 clonazepam 40 %,
Greene & Fahn 1992 baclofen 7/16. Validation (never used to set a parameter): Woo 2020 baclofen
20 % and Greene 1992's cranial series 18 %, both **missed** by the model (it gives baclofen as much
benefit in adult focal dystonia as in children); the tests record the miss so a change shows.
"""

from pathlib import Path

import numpy as np
import pytest

from ecsim.circuit.clinical import ClinicalModel, assess, drug_free_drivers
from ecsim.errors import InputError
from ecsim.registry import default_registry
from ecsim.scenario import Interventions, parse_scenario
from ecsim.treatments.course import Course
from ecsim.treatments.oral_agents import (ORAL_AGENT_EVENTS, OralAgentModel, drive_fraction, gain_fraction,
                                          oral_agent_adverse_effects)
from ecsim.validation.cases import load_case
from ecsim.validation.runner import evaluate_case

CASES = Path(__file__).resolve().parents[1] / "src" / "ecsim" / "data" / "cases"
Z = np.random.default_rng(11).standard_normal(100_000)


@pytest.fixture(scope="module")
def om():
    return OralAgentModel.from_registry(default_registry())


def responders(case_file):
    (result,) = evaluate_case(load_case(CASES / case_file))
    return result


def test_woo_2020_clonazepam_calibration():
    """Calibration: 40 % of 172 (Wilson 95 % 33-47 %) found clonazepam beneficial in one week."""
    r = responders("woo20_clonazepam.yaml")
    assert r.kind == "calibration" and 0.33 <= r.simulated <= 0.47


def test_greene_fahn_1992_baclofen_calibration():
    """Calibration: 7 of 16 children (Wilson 95 % 23-67 %) improved substantially or moderately."""
    r = responders("greene92_baclofen.yaml")
    assert r.kind == "calibration" and 0.23 <= r.simulated <= 0.67


def test_baclofen_in_adult_focal_dystonia_is_a_documented_miss():
    """Not tuned: Woo 2020 found baclofen beneficial in 20 % (14.5-27 %) of mostly focal, adult
    patients; the model gives over 30 % (the same drive reduction as in children): a miss. The case
    is calibration since 2026-11-26 (the same study's clonazepam arm is fitted, DESIGN §4), but
    nothing is fitted to it. If this starts passing, the model learnt something and
    docs/treatments.md must change."""
    r = responders("woo20_baclofen.yaml")
    assert r.kind == "calibration"
    assert r.simulated > 0.27 and not r.passed


def test_oral_agents_are_modest_and_dose_dependent(om):
    """At usual doses, clonazepam and baclofen remove a minority of the drive for the median
    patient (modest, as the reviews say); more with dose; nothing on day 0 or without the drug."""
    for f, doses in ((drive_fraction, (0.5, 1.0, 2.0, 4.0)), (gain_fraction, (20.0, 40.0, 80.0, 120.0))):
        med = [float(np.median(f(om, d, 28.0, Z))) for d in doses]
        assert all(a < b for a, b in zip(med, med[1:]))
        assert med[1] < 0.5
        assert np.all(f(om, doses[-1], 0.0, Z) == 0) and np.all(f(om, 0.0, 28.0, Z) == 0)
        assert f(om, 1000.0, 28.0, Z).max() <= 0.9
    # clonazepam accumulates over days (half-life 30-40 h); baclofen is at steady state in a day
    assert np.median(drive_fraction(om, 1.0, 1.0, Z)) < 0.5 * np.median(drive_fraction(om, 1.0, 28.0, Z))


def test_oral_agents_in_the_clinical_model():
    """In virtual TOR1A dystonia either drug lowers BFMDRS; the baseline visit is untreated; an
    arm without them is bit-identical to before (nothing new drawn)."""
    registry = default_registry()
    cm = ClinicalModel.from_registry(registry)
    days = np.array([0.0, 28.0])
    run = lambda course: assess(cm, registry, "tor1a", days, drug_free_drivers(200, 2), course, 5, 0, 200)  # noqa: E731
    base, again = run(Course()), run(Course(clonazepam_mg_per_day=0.0, baclofen_mg_per_day=0.0))
    for k in base.totals:
        assert np.array_equal(base.totals[k], again.totals[k]), k
    for course in (Course(clonazepam_mg_per_day=2.0), Course(baclofen_mg_per_day=60.0)):
        on = run(course)
        assert np.array_equal(on.totals["bfmdrs_movement"][:, 0], base.totals["bfmdrs_movement"][:, 0])
        diff = on.totals["bfmdrs_movement"][:, 1].mean() - base.totals["bfmdrs_movement"][:, 1].mean()
        assert diff < -1.0
    both = run(Course(clonazepam_mg_per_day=2.0, baclofen_mg_per_day=60.0))
    assert both.totals["bfmdrs_movement"][:, 1].mean() < run(Course(clonazepam_mg_per_day=2.0)).totals["bfmdrs_movement"][:, 1].mean()


def test_adverse_effects_shape_and_published_rates():
    """Per-patient arrays in [0, 1]: clonazepam drowsiness 9/13 at 2.2 mg/day (Beauclair 1994),
    baclofen excess drowsiness 63 - 36 % and weakness 5-15 % at its reference dose (label),
    benzodiazepine dependence 40 % of long-term users (Kan 1997) after a year; none without drugs."""
    none = oral_agent_adverse_effects(None, 365.0, 4)
    assert set(none) == set(ORAL_AGENT_EVENTS) and all(np.all(v == 0) for v in none.values())
    assert all(np.all(v == 0) for v in oral_agent_adverse_effects(Interventions(), 365.0, 4).values())
    clz = oral_agent_adverse_effects(Interventions(clonazepam_mg_per_day=2.2), 365.0, 4)
    assert all(v.shape == (4,) and np.all((v >= 0) & (v <= 1)) for v in clz.values())
    assert clz["sedation"][0] == pytest.approx(9 / 13, abs=0.01)
    assert 0.35 <= clz["benzodiazepine_dependence"][0] <= 0.40
    assert clz["muscle_weakness"][0] == 0 and clz["baclofen_withdrawal_on_abrupt_stop"][0] == 0
    short = oral_agent_adverse_effects({"clonazepam_mg_per_day": 1.0}, 14.0, 2)
    assert 0 < short["benzodiazepine_dependence"][0] < clz["benzodiazepine_dependence"][0] / 4
    bac = oral_agent_adverse_effects({"baclofen_mg_per_day": 60.0}, 365.0, 2)
    assert bac["sedation"][0] == pytest.approx(0.63 - 0.36, abs=0.01)
    assert 0.05 <= bac["muscle_weakness"][0] <= 0.15
    assert bac["benzodiazepine_dependence"][0] == 0 and bac["baclofen_withdrawal_on_abrupt_stop"][0] > 0
    both = oral_agent_adverse_effects({"clonazepam_mg_per_day": 2.2, "baclofen_mg_per_day": 60.0}, 365.0, 2)
    assert both["sedation"][0] > max(clz["sedation"][0], bac["sedation"][0])


SCENARIO = """
name: t
duration_days: 28
population: {{n: 5, phenotype: tor1a}}
arms:
  - name: a
    interventions: {{{field}: {value}}}
"""


@pytest.mark.parametrize("field, value", [
    ("clonazepam_mg_per_day", "-1"), ("clonazepam_mg_per_day", "25"), ("clonazepam_mg_per_day", ".inf"),
    ("clonazepam_mg_per_day", "true"), ("clonazepam_mg_per_day", "'2 mg'"), ("clonazepam_mg_per_day", ".nan"),
    ("baclofen_mg_per_day", "-5"), ("baclofen_mg_per_day", "200"), ("baclofen_mg_per_day", "yes"),
    ("baclofen_mg_per_day", "[30]"),
])
def test_bad_oral_agent_values_give_one_line_input_errors(field, value):
    with pytest.raises(InputError) as exc:
        parse_scenario(SCENARIO.format(field=field, value=value))
    text = str(exc.value)
    assert field in text and "\n" not in text.strip()


def test_oral_agent_fields_are_optional_and_parse():
    sc = parse_scenario(SCENARIO.format(field="clonazepam_mg_per_day", value="2"))
    assert sc.arms[0].interventions.clonazepam_mg_per_day == 2.0
    assert sc.arms[0].interventions.baclofen_mg_per_day == 0.0
    from ecsim.simulation import arm_course
    course = arm_course(sc.arms[0], sc)
    assert course.clonazepam_mg_per_day == 2.0 and course.oral_agents


def test_oral_agent_risks_reach_the_run_summary(tmp_path):
    """`ecsim run` reports sedation and benzodiazepine dependence per arm with the other adverse effects."""
    from ecsim.runjob import run_job
    from ecsim.scenario import Scenario
    sc = Scenario.model_validate({
        "name": "oral", "duration_days": 28, "output_step_h": 2.0, "visit_interval_days": 14,
        "population": {"n": 4, "seed": 3, "phenotype": "cervical"},
        "trial": {"control_arm": "placebo", "primary_day": 28},
        "arms": [{"name": "placebo"}, {"name": "clonazepam", "interventions": {"clonazepam_mg_per_day": 2.0}}]})
    adverse = run_job(sc, tmp_path / "out", quiet=True, report=False)["adverse_effects"]
    assert adverse["placebo"]["benzodiazepine_dependence"]["mean"] == 0.0
    assert adverse["clonazepam"]["benzodiazepine_dependence"]["mean"] > 0.05
    assert adverse["clonazepam"]["sedation"]["excess_vs_control"] > 0.3     # Beauclair 1994: 9 of 13 drowsy
