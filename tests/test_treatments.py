"""Botulinum toxin, placebo response and trial statistics."""

import numpy as np
import pytest
from scipy import stats

from ecsim.circuit.clinical import ClinicalModel, assess, drug_free_drivers
from ecsim.circuit.regions import agonist, antagonist
from ecsim.clinical_summary import planned_sample_size, replicate_power, trial_statistics
from ecsim.errors import InputError
from ecsim.scenario import Botulinum, parse_scenario
from ecsim.simulation import ArmResult
from ecsim.treatments import BotulinumModel, Course, PlaceboModel, TreatmentModels, botulinum_strength, placebo_fraction


@pytest.fixture(scope="module")
def bm(registry):
    return BotulinumModel.from_registry(registry)


def test_toxin_time_course_peaks_at_four_weeks(bm):
    g = bm.time_course(np.array([0.0, 14.0, 28.0, 56.0, 84.0]))
    assert g[0] == 0 and g[2] == pytest.approx(1.0)
    assert np.argmax(g) == 2
    # Odergren 1998: week-2 improvement was 84-94 % of the week-4 peak
    assert 0.84 <= g[1] <= 0.94
    assert g[4] < g[3] < g[2]   # waning after the peak (retreatment at 81-84 days, Odergren 1998)


def test_toxin_weakens_only_the_injected_region(bm):
    course = Botulinum(units=500, region="neck")
    strength = botulinum_strength(bm, course, 28.0, np.zeros(3))
    assert np.all(strength[:, agonist("neck")] < strength[:, antagonist("neck")])
    assert np.all(strength[:, antagonist("neck")] < 1.0)
    others = np.delete(strength, [agonist("neck"), antagonist("neck")], axis=1)
    assert np.all(others == 1.0)
    assert np.all(botulinum_strength(bm, None, 28.0, np.zeros(3)) == 1.0)
    # Botox is converted at 3 Dysport units per unit (Odergren 1998)
    botox = botulinum_strength(bm, Botulinum(product="onabotulinumtoxinA", units=500 / 3, region="neck"), 28.0,
                               np.zeros(1))
    assert botox == pytest.approx(strength[:1])


def test_reinjection_cycles_add_and_stay_bounded(bm):
    course = Botulinum(units=2000, region="neck", every_days=28)
    s = botulinum_strength(bm, course, 200.0, np.array([3.0]))
    assert 0.0 <= s.min() and s[0, agonist("neck")] >= 1 - bm.emax - 1e-12


def test_placebo_response_grows_and_is_bounded(registry):
    pm = PlaceboModel.from_registry(registry)
    days = [0.0, 7.0, 28.0, 84.0]
    p = [placebo_fraction(pm, d, np.zeros(1))[0] for d in days]
    assert p[0] == 0 and np.all(np.diff(p) > 0) and p[-1] <= pm.max_fraction + 1e-12
    assert placebo_fraction(pm, 84.0, np.array([10.0]))[0] <= 0.9


def test_toxin_and_placebo_act_in_the_clinical_layer(registry):
    cm = ClinicalModel.from_registry(registry)
    days = np.array([0.0, 28.0])
    runs = {name: assess(cm, registry, "cervical", days, drug_free_drivers(300, 2), Course(**kw), 21, 0, 300)
            for name, kw in {"none": {}, "placebo": {"placebo": True},
                             "toxin": {"placebo": True, "botulinum": Botulinum(units=500, region="neck")}}.items()}
    change = {k: (r.totals["twstrs_total"][:, 1] - r.totals["twstrs_total"][:, 0]).mean() for k, r in runs.items()}
    assert abs(change["none"]) < 0.5
    assert change["toxin"] < change["placebo"] - 3 < change["none"] - 3
    # placebo changes ratings, not the circuit
    assert np.array_equal(runs["none"].totals["gpi_hz"], runs["placebo"].totals["gpi_hz"])


def _arm(name, baseline, final):
    r = ArmResult(name, np.array([0.0]))
    r.visit_days = np.array([0.0, 28.0])
    r.clinical = {"twstrs_total": np.column_stack([baseline, final]).astype(np.float32)}
    r.n = len(baseline)
    return r


def test_trial_statistics_arithmetic():
    rng = np.random.default_rng(1)
    base = np.full(1000, 40.0)
    control = _arm("placebo", base, base - 4 + rng.normal(0, 2, 1000))
    active = _arm("drug", base, base - 10 + rng.normal(0, 2, 1000))
    doc = trial_statistics([control, active], "twstrs_total", "placebo", 0.25, size=20, replicates=50)
    d = doc["arms"]["drug"]["difference_vs_control"]
    assert d["mean"] == pytest.approx(-6.0, abs=0.3)
    assert d["ci95"][1] - d["ci95"][0] == pytest.approx(2 * 1.96 * np.sqrt(8 / 1000), rel=0.1)
    # responders: improvement of 10 or more (25 % of 40) when changes are N(-10, 2): half of them
    assert doc["arms"]["drug"]["responders"] == pytest.approx(0.5, abs=0.05)
    assert doc["arms"]["drug"]["replicate_trials"]["share_significant"] == 1.0


def test_null_trial_is_null_in_most_replicates():
    rng = np.random.default_rng(2)
    a, b = rng.normal(-4, 6, 2000), rng.normal(-4, 6, 2000)
    assert replicate_power(a, b, 40, 400, seed=3) < 0.1


@pytest.mark.parametrize("values", [1_000_000, 3 * 25])   # one batch; batches of 3 trials, the last one short
def test_replicate_power_counts_the_trials_one_at_a_time_would(monkeypatch, values):
    # the straightforward form: one replicate trial at a time from the same stream, one t-test each
    import ecsim.clinical_summary as summary
    monkeypatch.setattr(summary, "REPLICATE_VALUES", values)
    rng = np.random.default_rng(4)
    a, b = rng.normal(-0.5, 2.0, 300), rng.normal(0.0, 2.0, 250)
    draws, hits = np.random.default_rng([9, 4242, 17]), 0
    for _ in range(100):
        x, y = a[draws.choice(300, 25, replace=False)], b[draws.choice(250, 25, replace=False)]
        hits += bool(stats.ttest_ind(x, y, equal_var=False).pvalue < 0.05)
    assert 0 < hits < 100   # some trials find the difference, some miss it
    assert replicate_power(a, b, 25, 100, seed=9) == hits / 100

def test_planned_sample_size_gives_the_power_it_promises():
    # the closed-form n (normal approximation) against simulated trials of that size with the
    # Welch t-test: about 80 % of them must find a difference of 1 with SD 2 in both arms
    n = planned_sample_size(1.0, 4.0, 4.0)
    assert n == 63   # (1.96 + 0.8416)^2 x 8 / 1 = 62.8, rounded up
    rng = np.random.default_rng(11)
    a, b = rng.normal(-1.0, 2.0, 40_000), rng.normal(0.0, 2.0, 40_000)
    assert replicate_power(a, b, n, 2000, seed=5) == pytest.approx(0.80, abs=0.03)
    assert planned_sample_size(0.0, 4.0, 4.0) is None
    assert planned_sample_size(1e-6, 4.0, 4.0) is None   # beyond any trial


def test_control_arm_must_be_an_arm():
    text = """
name: t
duration_days: 1
population: {phenotype: cervical}
trial: {control_arm: nobody}
arms: [{name: a}]
"""
    with pytest.raises(InputError, match="control_arm"):
        parse_scenario(text)


def test_stimulation_fast_part_stops_when_switched_off(registry):
    from ecsim.scenario import Stimulation
    from ecsim.treatments.course import transmission
    tm = TreatmentModels.from_registry(registry)
    on = Course(stimulation=Stimulation(from_day=0))
    off90 = Course(stimulation=Stimulation(from_day=0, to_day=90))
    assert transmission(tm, Course(), 90.0) == 1.0
    assert transmission(tm, on, 0.0) == 1.0                         # switched on after the baseline visit
    t_on, t_off = transmission(tm, on, 90.0), transmission(tm, off90, 90.0)
    assert t_on < t_off < 1.0                                       # the slow part persists when off
    assert t_on == pytest.approx((1 - tm.dbs_fast) * t_off)
    assert transmission(tm, on, 360.0) < t_on                       # and keeps growing while on
    assert transmission(tm, off90, 360.0) == pytest.approx(t_off)   # but not after switching off


def test_trihexyphenidyl_shrinks_the_phenotype_shift(registry):
    from ecsim.treatments.course import shift_scale
    tm = TreatmentModels.from_registry(registry)
    doses = [0.0, 5.0, 30.0, 120.0]
    scales = [shift_scale(tm, Course(trihexyphenidyl_mg_per_day=d), 28.0) for d in doses]
    assert scales[0] == 1.0 and np.all(np.diff(scales) < 0) and scales[-1] >= 1.0 - tm.thp_max - 1e-12
    assert shift_scale(tm, Course(trihexyphenidyl_mg_per_day=30.0), 0.0) == 1.0


# --- sham stimulation (Kupsch 2006) --------------------------------------------------------------

def test_sham_stimulation_has_no_circuit_effect_but_is_blinded(registry):
    from ecsim.scenario import Stimulation
    from ecsim.simulation import arm_course
    from ecsim.treatments.course import transmission
    tm = TreatmentModels.from_registry(registry)
    sham = Course(stimulation=Stimulation(from_day=0, sham=True))
    assert transmission(tm, sham, 90.0) == 1.0 == transmission(tm, sham, 360.0)
    sc = parse_scenario("""
name: t
duration_days: 90
population: {phenotype: tor1a}
arms: [{name: sham, gpi_stimulation: {sham: true}}, {name: active, gpi_stimulation: {}}]
""")
    # the sham arm is blinded: its ratings carry the expectation response even without trial.placebo_response
    assert arm_course(sc.arms[0], sc).placebo is True
    assert arm_course(sc.arms[1], sc).placebo is False


def test_kupsch_sham_controlled_difference(registry):
    """Kupsch 2006 (abstract): BFMDRS movement change at 3 months -15.8 +- 14.1 (stimulation) vs
    -1.4 +- 3.8 (sham), 40 patients; with 20 per arm the difference -14.4 has a 95 % CI of about
    [-20.8, -8.0] (derived from the SDs). Validation: nothing here was fitted to Kupsch."""
    from pathlib import Path
    from ecsim.validation.cases import load_case
    from ecsim.simulation import Simulation
    import ecsim
    case = load_case(Path(ecsim.__file__).parent / "data/cases/kupsch06_sham.yaml")
    sc = case.scenario.model_copy(update={"population": case.scenario.population.model_copy(update={"n": 200})})
    results = Simulation(sc).run()
    doc = trial_statistics(results, "bfmdrs_movement", "sham", 0.25, 90.0, size=20, replicates=200, seed=1)
    sham = doc["arms"]["sham"]["change"]["mean"]
    stim = doc["arms"]["neurostimulation"]
    assert -1.4 - 3.8 <= sham <= 0.0                     # a small expectation response, within one SD
    assert -20.8 <= stim["difference_vs_control"]["mean"] <= -8.0
    assert stim["replicate_trials"]["share_significant"] > 0.9   # P < 0.001 in the trial: detected


# --- physiotherapy (Counsell 2016) ---------------------------------------------------------------

def test_physiotherapy_is_slow_modest_and_local(registry):
    from ecsim.scenario import Physiotherapy
    from ecsim.treatments.course import physio_fraction, strength
    tm = TreatmentModels.from_registry(registry)
    pt = Physiotherapy(region="neck", from_day=0)
    f = [physio_fraction(tm, pt, d, np.zeros(1))[0] for d in (0.0, 7.0, 28.0, 168.0)]
    assert f[0] == 0 and np.all(np.diff(f) > 0) and f[-1] <= tm.physio_max + 1e-12
    assert f[2] == pytest.approx(tm.physio_max * (1 - np.exp(-1)), rel=1e-9)   # 63 % by the time constant
    s = strength(tm, Course(physiotherapy=pt), 168.0, np.zeros(2))
    assert np.all(s[:, agonist("neck")] < 1.0) and np.all(s[:, antagonist("neck")] == 1.0)
    assert np.all(np.delete(s, agonist("neck"), axis=1) == 1.0)
    # with toxin, the two multiply on the same channel
    tox = Botulinum(units=500, region="neck")
    both = strength(tm, Course(botulinum=tox, physiotherapy=pt), 28.0, np.zeros(1))
    alone = strength(tm, Course(botulinum=tox), 28.0, np.zeros(1))
    assert both[0, agonist("neck")] == pytest.approx(alone[0, agonist("neck")] * (1 - physio_fraction(
        tm, pt, 28.0, np.zeros(1))[0]))


def test_counsell_full_design_is_null(registry):
    """Counsell 2016: toxin in both arms (92 %), TWSTRS before each due injection, 24 weeks; adjusted
    difference 1.44 (95 % CI -3.63 to 6.51): no benefit. The simulated difference must lie in the part
    of the CI that holds under either sign convention, and a trial of the published size (84 analysed,
    42 per arm) must come out null in most replicates."""
    from ecsim.simulation import Simulation
    sc = parse_scenario("""
name: counsell16_full
duration_days: 168
output_step_h: 24
visit_interval_days: 28
population: {n: 240, seed: 2016, phenotype: cervical}
trial: {placebo_response: true, control_arm: standard, primary_scale: twstrs_total, sample_size_per_arm: 42}
arms:
- {name: specialised, botulinum: {units: 500, every_days: 84}, physiotherapy: {region: neck}}
- {name: standard, botulinum: {units: 500, every_days: 84}}
""")
    results = Simulation(sc).run()
    doc = trial_statistics(results, "twstrs_total", "standard", 0.25, 168.0, size=42, replicates=300, seed=5)
    d = doc["arms"]["specialised"]
    assert -3.63 <= d["difference_vs_control"]["mean"] <= 3.63
    assert d["difference_vs_control"]["mean"] < 0          # modest benefit in the model, not none
    assert d["replicate_trials"]["share_significant"] < 0.5
    # both arms improve (toxin and expectation), as both did in the trial
    assert doc["arms"]["standard"]["change"]["mean"] < -1.0


@pytest.mark.parametrize("block, bad", [
    ("physiotherapy", "{region: elbow}"), ("physiotherapy", "{from_day: -1}"), ("physiotherapy", "{from_day: 1000}"),
    ("physiotherapy", "{sessions: 3}"), ("physiotherapy", "yes"), ("gpi_stimulation", "{sham: 2}"),
    ("gpi_stimulation", "{sham: maybe}"), ("gpi_stimulation", "{sham: true, from_day: -3}"),
])
def test_bad_sham_and_physiotherapy_values_are_one_line_errors(block, bad):
    text = f"""
name: t
duration_days: 28
population: {{phenotype: cervical}}
arms: [{{name: a, {block}: {bad}}}]
"""
    with pytest.raises(InputError) as err:
        parse_scenario(text)
    assert "\n" not in str(err.value) and block in err.value.field


def test_physiotherapy_needs_a_phenotype():
    with pytest.raises(InputError, match="physiotherapy"):
        parse_scenario("name: t\nduration_days: 28\narms: [{name: a, physiotherapy: {}}]\n")


def test_replicate_trials_of_shared_virtual_patients_keep_the_5_percent_false_positive_rate():
    """Every arm of a run holds the same virtual patients. A replicate parallel trial must put
    distinct patients in its two arms; with no effect, Welch's test at P < 0.05 then finds one in
    about 5 % of trials (the test's size). Drawing each arm from the whole pool put patients in both
    arms and gave about 1 % (the clinical review of 2026-11-26)."""
    rng = np.random.default_rng(21)
    control = rng.normal(-4.0, 6.0, 100)              # each patient's change without the drug
    change = control + rng.normal(0.0, 0.3, 100)      # the same patients on a drug with no mean effect
    share = replicate_power(change, control, 50, 4000, seed=1, same_patients=True)
    assert share == pytest.approx(0.05, abs=0.015)
    with pytest.raises(ValueError):
        replicate_power(change, control[:90], 40, 10, seed=1, same_patients=True)


def test_trial_statistics_give_the_paired_interval_of_the_shared_patients():
    """The Welch interval is what a parallel trial of this size would report; the paired one is
    the mean of each patient's own difference, by hand here."""
    from ecsim.clinical_summary import _versus
    rng = np.random.default_rng(5)
    control = rng.normal(-4.0, 6.0, 400)
    change = control + rng.normal(-0.5, 1.0, 400)
    d = _versus(change, control, None, 0, 0, paired=(change, control))["difference_vs_control"]
    own = change - control
    half = stats.t.ppf(0.975, 399) * own.std(ddof=1) / np.sqrt(400)
    assert d["paired_ci95"] == pytest.approx([own.mean() - half, own.mean() + half], abs=1e-3)
    assert d["paired_ci95"][1] - d["paired_ci95"][0] < 0.3 * (d["ci95"][1] - d["ci95"][0])
    assert "paired_ci95" not in _versus(change, control, None, 0, 0)["difference_vs_control"]


def _arm_with_faults(name: str, baseline: np.ndarray, change: np.ndarray, faulted: list[int]) -> ArmResult:
    """An arm of ``len(baseline)`` virtual patients that lost ``faulted`` to numerical faults."""
    kept = np.setdiff1d(np.arange(len(baseline)), faulted)
    r = ArmResult(name, np.array([0.0]), visit_days=np.array([0.0, 28.0]), patients=kept, n=len(kept))
    r.clinical = {"twstrs_total": np.column_stack([baseline, baseline + change])[kept]}
    r.faults = {int(i): "circuit" for i in faulted}
    return r


def test_paired_statistics_match_patients_when_arms_lose_different_ones():
    """Each patient's change in the drug arm is exactly 4 points more negative than on placebo, so
    the paired interval is [-4, -4] whichever patients faulted; pairing rows by position after the
    drug arm lost patient 3 and placebo patient 150 would pair different patients (whose baselines,
    and so changes, differ) and give a wide interval."""
    rng = np.random.default_rng(0)
    baseline = rng.normal(40.0, 8.0, 200)
    placebo_change = -0.3 * baseline + rng.normal(0.0, 1.0, 200)
    arms = [_arm_with_faults("placebo", baseline, placebo_change, [150]),
            _arm_with_faults("drug", baseline, placebo_change - 4.0, [3])]
    d = trial_statistics(arms, "twstrs_total", "placebo", 0.25, size=50, replicates=20)["arms"]["drug"]
    assert d["difference_vs_control"]["paired_ci95"] == pytest.approx([-4.0, -4.0], abs=1e-6)
    assert d["replicate_trials"]["patients_per_arm"] == 50


def test_an_end_point_is_read_at_its_own_visit_never_the_nearest():
    from ecsim.clinical_summary import visit_index
    days = np.array([0.0, 7.0, 14.0, 28.0])
    assert visit_index(days, 14.0) == 2
    with pytest.raises(ValueError, match="day 21 is not a visit day"):
        visit_index(days, 21.0)
