"""Painkillers: pain items only, opioid tolerance, misuse and addiction risk, scenario bounds.

Expected values come from the papers (registry/bibliography.yaml). Calibration (the parameter was
read from the same number, so the test only checks the wiring): Busse 2018, Vowles 2015, Krebs 2018
(shaped opioid_tolerance_max). Validation (never used to set a parameter): Toupin April 2019.
"""

import numpy as np
import pytest

from ecsim.circuit.clinical import ClinicalModel, assess, drug_free_drivers
from ecsim.errors import InputError
from ecsim.registry import default_registry
from ecsim.scenario import Painkiller, parse_scenario
from ecsim.treatments.course import Course
from ecsim.treatments.painkillers import (OPIOID_EVENTS, PainkillerModel, painkiller_adverse_effects,
                                          relief_fraction)

Z = np.random.default_rng(5).standard_normal(200_000)   # a large virtual population of responses


@pytest.fixture(scope="module")
def pm():
    return PainkillerModel.from_registry(default_registry())


def mean_relief(pm, drug, mg, day, from_day=0.0):
    return float(relief_fraction(pm, Painkiller(drug=drug, mg_per_day=mg, from_day=from_day), day, Z).mean())


def test_busse_2018_opioid_effect_at_the_trials_follow_up(pm):
    """Calibration identity: at the reference dose and the trials' follow-up (60 days), a patient
    with the trials' baseline pain loses 0.69 of 10 (Busse 2018: -0.69, 95 % CI -0.82 to -0.56)."""
    r = mean_relief(pm, "morphine", pm.ref_dose["opioid"], pm.followup_days)
    assert 0.56 <= 10 * pm.baseline_pain * r <= 0.82
    assert 10 * pm.baseline_pain * r == pytest.approx(0.69, abs=0.01)


def test_toupin_april_2019_tramadol_in_osteoarthritis(pm):
    """Validation (not used for any parameter): tramadol alone vs placebo in hip/knee osteoarthritis,
    mean duration two months: pain 4 points lower on 0-100 (95 % CI 3 to 5), 7 % relative improvement
    (6 % to 9 %), placebo mean 54.3. Doses 37.5-400 mg/day were pooled; 200 mg/day is taken as the
    typical dose (the middle of the usual 100-300 mg/day; per-trial doses not read)."""
    r = mean_relief(pm, "tramadol", 200.0, 60.0)
    assert 0.06 <= r <= 0.09
    absolute = 54.3 * r                    # treated = placebo arm's mean pain (54.3) x (1 - r)
    assert 3.0 <= absolute <= 5.0


def test_krebs_2018_opioids_no_better_than_nonopioids_at_12_months(pm):
    """Calibration (Krebs 2018 shaped opioid_tolerance_max): at 12 months of a fixed opioid dose the
    analgesic effect has fallen to no more than an NSAID's or paracetamol's, as SPACE found (pain
    intensity better with non-opioid medication); at 8 weeks it is still larger."""
    opioid_12m = mean_relief(pm, "morphine", pm.ref_dose["opioid"], 365.0)
    nsaid = mean_relief(pm, "ibuprofen", pm.ref_dose["nsaid"], 365.0)
    paracetamol = mean_relief(pm, "paracetamol", pm.ref_dose["paracetamol"], 365.0)
    assert opioid_12m <= max(nsaid, paracetamol) * 1.05
    assert mean_relief(pm, "morphine", pm.ref_dose["opioid"], 56.0) > 1.5 * nsaid


def test_opioid_tolerance_wanes_at_fixed_dose_non_opioids_do_not(pm):
    days = [7.0, 28.0, 56.0, 84.0, 182.0, 365.0]
    opioid = [mean_relief(pm, "tramadol", 200.0, d) for d in days]
    assert all(a > b for a, b in zip(opioid, opioid[1:]))
    assert opioid[-1] < 0.5 * opioid[0]
    para = [mean_relief(pm, "paracetamol", 3000.0, d) for d in days]
    assert max(para) == pytest.approx(min(para))
    # tolerance counts from the first day on the drug, not from the trial's start
    assert mean_relief(pm, "tramadol", 200.0, 100.0, from_day=72.0) == pytest.approx(opioid[1])
    assert mean_relief(pm, "tramadol", 200.0, 72.0, from_day=72.0) == 0.0


def test_dose_response_and_tramadol_equivalence(pm):
    doses = [50.0, 100.0, 200.0, 400.0]
    r = [mean_relief(pm, "tramadol", d, 60.0) for d in doses]
    assert all(a < b for a, b in zip(r, r[1:]))
    # tramadol counts as 0.2 mg oral morphine per mg (CDC 2022)
    assert mean_relief(pm, "tramadol", 300.0, 60.0) == pytest.approx(mean_relief(pm, "morphine", 60.0, 60.0))


def test_vowles_2015_misuse_and_addiction_over_a_year(pm):
    """Calibration identity: on an opioid for a year, misuse and addiction come out within Vowles
    2015's averages (21-29 %, 8-12 %); none on paracetamol or without a painkiller; fewer on a short course."""
    year = painkiller_adverse_effects(Painkiller(drug="tramadol", mg_per_day=200), 365.0, 5)
    assert set(year) == set(OPIOID_EVENTS)
    assert all(v.shape == (5,) for v in year.values())
    assert 0.21 <= year["opioid_misuse"][0] <= 0.29
    assert 0.08 <= year["opioid_use_disorder"][0] <= 0.12
    short = painkiller_adverse_effects(Painkiller(drug="morphine", mg_per_day=30), 28.0, 5)
    assert 0 < short["opioid_use_disorder"][0] < year["opioid_use_disorder"][0] / 2
    late = painkiller_adverse_effects(Painkiller(drug="morphine", mg_per_day=30, from_day=337), 365.0, 5)
    assert late["opioid_misuse"][0] == pytest.approx(short["opioid_misuse"][0])
    for pk in (None, Painkiller(drug="paracetamol", mg_per_day=3000), Painkiller(drug="ibuprofen", mg_per_day=1200)):
        risks = painkiller_adverse_effects(pk, 365.0, 3)
        assert all(np.all(v == 0.0) for v in risks.values())


def test_pain_items_only_in_the_clinical_model():
    """In virtual cervical dystonia, a painkiller lowers TWSTRS pain and the 'pain' symptom and
    leaves every motor read-out exactly as it was; no painkiller leaves everything unchanged."""
    registry = default_registry()
    cm = ClinicalModel.from_registry(registry)
    days = np.array([0.0, 28.0, 56.0])
    run = lambda course: assess(cm, registry, "cervical", days, drug_free_drivers(300, 3), course, 21, 0, 300)  # noqa: E731
    base, again = run(Course()), run(Course(painkiller=None))
    on = run(Course(painkiller=Painkiller(drug="morphine", mg_per_day=60)))
    for k in ("twstrs_severity", "twstrs_disability", "bfmdrs_movement", "jrs", "gpi_hz"):
        assert np.array_equal(on.totals[k], base.totals[k]), k
        assert np.array_equal(again.totals[k], base.totals[k]), k
    for k in ("uncontrollable_blinking", "dragging_leg", "abnormal_twisting", "speech_difficulty", "spasms_and_cramps"):
        assert np.array_equal(on.symptoms[k], base.symptoms[k]), k
    assert np.array_equal(on.totals["twstrs_pain"][:, 0], base.totals["twstrs_pain"][:, 0])   # baseline visit untreated
    diff = (on.totals["twstrs_pain"] - base.totals["twstrs_pain"])[:, 1:].mean(axis=0)
    assert np.all(diff < -0.5) and np.all(diff > -3.0)        # about 1-2 of 20 points, as in the trials
    assert np.all(on.symptoms["pain"][:, 1:] <= base.symptoms["pain"][:, 1:])
    assert np.array_equal(on.totals["twstrs_total"] - on.totals["twstrs_pain"],
                          base.totals["twstrs_total"] - base.totals["twstrs_pain"])


SCENARIO = """
name: t
duration_days: 28
population: {{n: 5, phenotype: cervical}}
arms:
  - name: a
    painkiller: {pk}
"""


@pytest.mark.parametrize("pk, field", [
    ("{drug: tramadol, mg_per_day: 500}", "mg_per_day"),
    ("{drug: paracetamol, mg_per_day: 5000}", "mg_per_day"),
    ("{drug: morphine, mg_per_day: 0}", "mg_per_day"),
    ("{drug: morphine, mg_per_day: -5}", "mg_per_day"),
    ("{drug: morphine, mg_per_day: .inf}", "mg_per_day"),
    ("{drug: morphine, mg_per_day: true}", "mg_per_day"),
    ("{drug: morphine, mg_per_day: '30 mg'}", "mg_per_day"),
    ("{drug: aspirin, mg_per_day: 300}", "drug"),
    ("{drug: morphine, mg_per_day: 30, from_day: -1}", "from_day"),
    ("{drug: morphine, mg_per_day: 30, from_day: 1000}", "from_day"),
    ("{drug: morphine, mg_per_day: 30, to_day: 3}", "to_day"),
    ("{drug: morphine}", "mg_per_day"),
])
def test_bad_painkiller_values_give_one_line_input_errors(pk, field):
    with pytest.raises(InputError) as exc:
        parse_scenario(SCENARIO.format(pk=pk))
    text = str(exc.value)
    assert f"painkiller.{field}" in text and "\n" not in text.strip()


def test_painkiller_needs_a_phenotype_and_is_optional():
    ok = parse_scenario(SCENARIO.format(pk="{drug: ibuprofen, mg_per_day: 1200, from_day: 7}"))
    assert ok.arms[0].painkiller.drug == "ibuprofen"
    assert parse_scenario(SCENARIO.format(pk="null")).arms[0].painkiller is None
    with pytest.raises(InputError, match="phenotype"):
        parse_scenario(SCENARIO.format(pk="{drug: ibuprofen, mg_per_day: 1200}").replace("phenotype: cervical", "phenotype: null"))


def test_opioid_risks_reach_the_run_summary(tmp_path):
    """`ecsim run` reports opioid misuse and addiction per arm with the other adverse effects."""
    from ecsim.runjob import run_job
    from ecsim.scenario import Scenario
    sc = Scenario.model_validate({
        "name": "pain", "duration_days": 28, "output_step_h": 2.0, "visit_interval_days": 14,
        "population": {"n": 4, "seed": 3, "phenotype": "cervical"},
        "trial": {"control_arm": "placebo", "primary_day": 28},
        "arms": [{"name": "placebo"}, {"name": "morphine", "painkiller": {"drug": "morphine", "mg_per_day": 60}}]})
    adverse = run_job(sc, tmp_path / "out", quiet=True, report=False)["adverse_effects"]
    assert adverse["placebo"]["opioid_use_disorder"]["mean"] == 0.0
    # 28 days of a one-year risk of about 10 % that builds up over 90 days: 1-e^(-28/90) of it
    assert 0.02 < adverse["morphine"]["opioid_use_disorder"]["mean"] < 0.03
    assert adverse["morphine"]["opioid_misuse"]["excess_vs_control"] > 0.05
