"""Crossover trials (ecsim.designs): schema, windowing, randomisation, Hills-Armitage statistics,
and what the model predicts about carry-over."""

import numpy as np
import pytest

from ecsim.clinical_summary import trial_statistics
from ecsim.designs import allocation, hills_armitage, sequence_arms, shifted_steps
from ecsim.errors import InputError
from ecsim.outputs import summary
from ecsim.scenario import DosingStep, parse_scenario
from ecsim.simulation import Simulation

TOXIN_VS_PLACEBO = """
name: crossover
duration_days: {duration}
output_step_h: {step}
visit_interval_days: {visits}
population: {{n: {n}, seed: {seed}, phenotype: {phenotype}}}
trial:
  placebo_response: true
  control_arm: placebo
  {trial}
arms:
{arms}
"""

TOXIN = "  - {name: toxin, botulinum: {units: 500}}\n  - {name: placebo}"


def scenario(arms=TOXIN, trial="crossover: {period_days: 42, washout_days: 14}", duration=98, n=20, seed=5,
             step=24, visits=14, phenotype="cervical"):
    return parse_scenario(TOXIN_VS_PLACEBO.format(duration=duration, step=step, visits=visits, n=n, seed=seed,
                                                  phenotype=phenotype, trial=trial, arms=arms))


# ---------------------------------------------------------------- schema and bad input


@pytest.mark.parametrize("arms, trial, duration, field", [
    (TOXIN, "crossover: {period_days: 42, washout_days: 14}", 90, "duration_days"),
    (TOXIN, "primary_day: 42\n  crossover: {period_days: 42}", 98, "trial.primary_day"),
    (TOXIN, "dropout: {}\n  crossover: {period_days: 42}", 98, "trial.dropout"),
    (TOXIN, "crossover: {period_days: 42, sequences: [[toxin, plaecbo], [placebo, toxin]]}", 98,
     "trial.crossover.sequences"),
    (TOXIN, "crossover: {period_days: 42, sequences: [[toxin, placebo], [placebo]]}", 98, "trial.crossover.sequences"),
    (TOXIN, "crossover: {period_days: 42, sequences: [[toxin, placebo], [toxin, placebo]]}", 98,
     "trial.crossover.sequences"),   # every patient takes toxin first: treatment confounded with period
    (TOXIN, "crossover: {period_days: 42.5}", 98, "trial.crossover.period_days"),
    (TOXIN, "crossover: {period_days: 42, washout_days: -1}", 98, "trial.crossover.washout_days"),
    ("  - {name: toxin, botulinum: {units: 500, every_days: 28}}\n  - {name: placebo}",
     "crossover: {period_days: 42}", 98, "arms.toxin.botulinum.every_days"),
    ("  - {name: l, interventions: {levodopa_mg_per_day: 300}}\n  - {name: placebo}",
     "crossover: {period_days: 42}", 98, "arms.l.interventions.levodopa_mg_per_day"),
    ("  - {name: p, physiotherapy: {region: neck}}\n  - {name: placebo}", "crossover: {period_days: 42}", 98,
     "arms.p.physiotherapy"),
    ("  - {name: k, painkiller: {drug: ibuprofen, mg_per_day: 1200}}\n  - {name: placebo}",
     "crossover: {period_days: 42}", 98, "arms.k.painkiller"),
    ("  - {name: a, food: low_fat, cbd: [{dose: 5 mg, times_h: [0]}]}\n  - {name: placebo, cbd: [{dose: 1 mg, times_h: [0]}]}",
     "crossover: {period_days: 42}", 98, "trial.crossover.sequences"),
    # a treatment that starts after its period ends would be dropped by windowing: refused
    ("  - {name: c, cbd: [{dose: 5 mg, times_h: [0], from_day: 50}]}\n  - {name: placebo}",
     "crossover: {period_days: 42}", 98, "arms.c.cbd.0.from_day"),
    ("  - {name: toxin, botulinum: {units: 500, first_day: 45}}\n  - {name: placebo}",
     "crossover: {period_days: 42}", 98, "arms.toxin.botulinum.first_day"),
    ("  - {name: s, gpi_stimulation: {from_day: 42}}\n  - {name: placebo}",
     "crossover: {period_days: 42}", 98, "arms.s.gpi_stimulation.from_day"),
])
def test_bad_crossovers_name_the_field(arms, trial, duration, field):
    with pytest.raises(InputError) as err:
        scenario(arms, trial, duration)
    assert str(err.value).startswith(field), str(err.value)
    assert "\n" not in str(err.value)


def test_a_crossover_needs_a_control_arm():
    text = TOXIN_VS_PLACEBO.format(duration=98, step=24, visits=14, n=4, seed=1, phenotype="cervical",
                                   trial="crossover: {period_days: 42}", arms=TOXIN).replace("control_arm: placebo", "")
    with pytest.raises(InputError, match="^trial.control_arm"):
        parse_scenario(text)


def test_visits_include_every_period_boundary():
    s = scenario(trial="crossover: {period_days: 40, washout_days: 15}", duration=100, visits=30)
    assert s.visit_days() == [0.0, 30.0, 40.0, 55.0, 60.0, 90.0, 95.0, 100.0]


# ---------------------------------------------------------------- windowing into periods


def test_dosing_steps_are_moved_into_the_period_and_cut_at_its_end():
    steps = [DosingStep(dose="5 mg", times_h=[8], to_day=7), DosingStep(dose="10 mg", times_h=[8], from_day=7, to_day=30),
             DosingStep(dose="20 mg", times_h=[8], from_day=30, to_day=50), DosingStep(dose="40 mg", times_h=[8], from_day=50)]
    moved = shifted_steps(steps, 56, 98)   # a 42-day period
    assert [(s.from_day, s.to_day, s.dose.mg) for s in moved] == [(56, 63, 5.0), (63, 86, 10.0), (86, 98, 20.0)]


def test_each_sequence_is_one_timeline_of_windowed_treatments():
    arms = """  - name: cbd
    cbd: [{dose: 300 mg, times_h: [8, 20]}]
  - name: toxin
    botulinum: {units: 500, first_day: 3}
  - name: dbs
    gpi_stimulation: {from_day: 2}
  - name: placebo"""
    s = scenario(arms, "crossover: {period_days: 28, washout_days: 7, sequences: [[cbd, placebo, toxin, dbs], "
                 "[dbs, toxin, placebo, cbd]]}", duration=133, step=2)
    (first, second), sequences = sequence_arms(s)
    assert [p.start_day for p in sequences[0].periods] == [0, 35, 70, 105]
    assert first.name == "seq1.cbd.placebo.toxin.dbs" and sequences[1].order == ["dbs", "toxin", "placebo", "cbd"]
    assert [(x.from_day, x.to_day) for x in first.cbd] == [(0, 28)]
    assert first.botulinum.first_day == 73 and first.gpi_stimulation.from_day == 107
    assert first.gpi_stimulation.to_day == 133
    assert [(x.from_day, x.to_day) for x in second.cbd] == [(105, 133)]
    assert second.botulinum.first_day == 38 and (second.gpi_stimulation.from_day, second.gpi_stimulation.to_day) == (2, 28)


def test_period_one_is_the_parallel_arm_up_to_its_end():
    """Causality: what comes after period 1 cannot change it, so period 1 of a sequence is the
    first arm of the sequence run as a parallel arm, visit for visit, to the bit."""
    arms = "  - {name: cbd, cbd: [{dose: 300 mg, times_h: [8, 20]}], botulinum: {units: 500}}\n  - {name: placebo}"
    cx = scenario(arms, "crossover: {period_days: 21, washout_days: 7}", duration=49, n=12, step=2, visits=7,
                  phenotype="tor1a")
    par = scenario(arms, "", duration=21, n=12, step=2, visits=7, phenotype="tor1a")
    crossed, parallel = Simulation(cx).run(), Simulation(par).run()
    visits = len(parallel[0].visit_days)
    for seq, arm in ((crossed[0], parallel[0]), (crossed[1], parallel[1])):
        for scale in ("bfmdrs_movement", "twstrs_total"):
            assert np.array_equal(seq.clinical[scale][:, :visits], arm.clinical[scale])


# ---------------------------------------------------------------- randomisation


def test_allocation_is_balanced_in_blocks_and_does_not_depend_on_trial_size():
    a = allocation(11, np.arange(1000), 2)
    assert all(np.bincount(a[k:k + 4], minlength=2).tolist() == [2, 2] for k in range(0, 1000, 4))
    assert np.array_equal(allocation(11, np.arange(37), 2), a[:37])
    assert not np.array_equal(allocation(12, np.arange(1000), 2), a)
    three = allocation(11, np.arange(600), 3)
    assert np.bincount(three).tolist() == [200, 200, 200]
    # the order within blocks is random: each of the 6 orders of a block of four should turn up
    assert len({tuple(a[k:k + 4]) for k in range(0, 1000, 4)}) == 6


# ---------------------------------------------------------------- statistics


def test_hills_armitage_equals_a_fixed_subject_linear_model():
    """The Hills-Armitage estimates equal ordinary least squares with one intercept per patient,
    a period term and a treatment term, and its t statistic the model's (same residual variance,
    n - 2 degrees of freedom): an independent computation of the same analysis."""
    rng = np.random.default_rng(3)
    n_ab, n_ba = 13, 9
    subject = rng.normal(0, 3, n_ab + n_ba)
    tau, pi = -2.0, 1.0
    y_ab = np.column_stack([subject[:n_ab] + tau + pi, subject[:n_ab]]) + rng.normal(0, 1, (n_ab, 2))
    y_ba = np.column_stack([subject[n_ab:] + pi, subject[n_ab:] + tau]) + rng.normal(0, 1, (n_ba, 2))
    y = np.concatenate([y_ab.ravel(), y_ba.ravel()])
    n = n_ab + n_ba
    x = np.zeros((2 * n, n + 2))
    for i in range(n):
        x[2 * i:2 * i + 2, i] = 1
        x[2 * i, n] = 1                                          # period 1
        x[2 * i + (0 if i < n_ab else 1), n + 1] = 1             # on treatment A
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    sigma2 = resid @ resid / (2 * n - (n + 2))
    cov = sigma2 * np.linalg.inv(x.T @ x)
    ha = hills_armitage(y_ab, y_ba)
    assert ha["treatment_effect"]["mean"] == pytest.approx(beta[n + 1], abs=1e-3)
    assert ha["period_effect"]["mean"] == pytest.approx(beta[n], abs=1e-3)
    assert ha["treatment_effect"]["t"] == pytest.approx(beta[n + 1] / np.sqrt(cov[n + 1, n + 1]), abs=1e-3)
    assert ha["treatment_effect"]["df"] == n - 2
    from scipy import stats
    assert ha["carryover"]["p"] == pytest.approx(stats.ttest_ind(y_ab.sum(1), y_ba.sum(1)).pvalue)


@pytest.fixture(scope="module")
def identical_placebos():
    arms = "  - {name: placebo_a}\n  - {name: placebo}"
    s = scenario(arms, "sample_size_per_arm: 20\n  replicates: 2000\n  crossover: {period_days: 28, washout_days: 14}",
                 duration=70, n=400, seed=21, visits=14)
    return s, Simulation(s).run()


def test_two_identical_placebos_differ_by_nothing(identical_placebos):
    """Two identical treatments: the difference's 95 % CI covers 0 and the Hills-Armitage test
    rejects in about 5 % of replicate trials (a correct test at its nominal level)."""
    s, results = identical_placebos
    doc = trial_statistics(results, "twstrs_total", "placebo", 0.25, size=20, replicates=2000, seed=21)
    comparison = doc["comparisons"]["placebo_a"]
    lo, hi = comparison["hills_armitage"]["treatment_effect"]["ci95"]
    assert lo < 0 < hi
    lo, hi = comparison["within_patient_difference"]["ci95"]
    assert lo < 0 < hi
    share = comparison["replicate_trials"]["share_significant"]
    assert 0.05 - 3 * np.sqrt(0.05 * 0.95 / 2000) - 0.01 < share < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 2000) + 0.01
    # the expectation response develops in period 1 (time constant a week): a period effect, not a difference
    assert comparison["hills_armitage"]["period_effect"]["ci95"][1] < 0


def test_the_summary_carries_the_crossover(identical_placebos):
    s, results = identical_placebos
    doc = summary(s, results, Simulation(s).registry)
    trial = doc["trial"]
    assert trial["design"] == "crossover" and trial["control_arm"] == "placebo"
    assert {v["patients"] for v in trial["sequences"].values()} == {200}
    assert set(trial["arms"]) == {"placebo_a", "placebo"}
    assert trial["arms"]["placebo_a"]["difference_vs_control"]["mean"] == \
        trial["comparisons"]["placebo_a"]["hills_armitage"]["treatment_effect"]["mean"]
    assert [a["arm"] for a in doc["arms"]] == ["seq1.placebo_a.placebo", "seq2.placebo.placebo_a"]


def test_clinical_table_marks_the_sequence_each_patient_was_randomised_to(identical_placebos):
    """Every patient is simulated in every sequence; the table's `randomised` column keeps the one
    they were allocated to: exactly one per patient, and as many per sequence as the summary says."""
    from ecsim.clinical_summary import clinical_table
    s, results = identical_placebos
    table = clinical_table(results, s.population.seed)
    first_visit = table[table["day"] == 0]
    per_patient = first_visit.groupby("patient")["randomised"].sum()
    assert (per_patient == 1).all() and len(per_patient) == s.population.n
    doc = summary(s, results, Simulation(s).registry)
    counted = first_visit[first_visit["randomised"].astype(bool)].groupby("arm").size().to_dict()
    assert counted == {name: v["patients"] for name, v in doc["trial"]["sequences"].items()}
    assert "randomised" not in clinical_table(results).columns   # no seed, no claim about allocation


# ---------------------------------------------------------------- carry-over from the model itself


def _toxin_crossover(washout: int, n: int):
    s = scenario(TOXIN, f"crossover: {{period_days: 42, washout_days: {washout}}}", duration=84 + washout, n=n,
                 seed=8, visits=42)
    results = Simulation(s).run()
    doc = trial_statistics(results, "twstrs_total", "placebo", 0.25, seed=8)
    return doc, results


@pytest.fixture(scope="module")
def toxin_short_washout():
    return _toxin_crossover(14, 400)


@pytest.fixture(scope="module")
def toxin_long_washout():
    return _toxin_crossover(182, 200)


def _counterfactual_carryover(results) -> float:
    """The model's own carry-over, free of randomisation: every patient is simulated in both
    orders, so the mean difference of their period sums (toxin first minus placebo first) is the
    sum test's expectation on these patients."""
    sums = []
    for r in results:
        v, days = r.clinical["twstrs_total"].astype(float), r.visit_days
        at = lambda day: v[:, int(np.argmin(np.abs(days - day)))]   # noqa: E731
        sums.append(sum(at(p.end_day) - at(p.start_day) for p in r.sequence.periods))
    toxin_first = 0 if results[0].sequence.order[0] == "toxin" else 1
    return float(np.mean(sums[toxin_first] - sums[1 - toxin_first]))


def test_toxin_carries_over_a_two_week_washout(toxin_short_washout):
    """Botulinum toxin wears off over about 12 weeks (hence reinjection every 12 weeks), so 6
    weeks of toxin and a 2-week washout leave part of the effect into period 2: the toxin-first
    patients start period 2 better than the placebo-first ones and worsen through it as the toxin
    wears off (their period sums are higher). Both show in the trial's tests: the period-2 baselines
    differ, and the Hills-Armitage carry-over test rejects at its customary P < 0.10."""
    doc, results = toxin_short_washout
    assert _counterfactual_carryover(results) > 1.0
    comparison = doc["comparisons"]["toxin"]
    baseline = comparison["carryover_at_period_2_baseline"]
    assert baseline["mean"] < -1.0 and baseline["p"] < 0.01
    ha = comparison["hills_armitage"]
    assert ha["carryover"]["mean"] > 0 and ha["carryover"]["p"] < 0.10
    assert ha["treatment_effect"]["ci95"][1] < 0


def test_a_six_month_washout_removes_the_carry_over(toxin_short_washout, toxin_long_washout):
    """Six months is twice the toxin's wear-off time: both sequences start period 2 alike and
    the carry-over is gone (CIs cover 0; the model's own carry-over is a fraction of the 2-week
    washout's)."""
    doc, results = toxin_long_washout
    assert abs(_counterfactual_carryover(results)) < 0.2 * _counterfactual_carryover(toxin_short_washout[1])
    comparison = doc["comparisons"]["toxin"]
    for block in (comparison["carryover_at_period_2_baseline"], comparison["hills_armitage"]["carryover"]):
        lo, hi = block["ci95"]
        assert lo < 0 < hi
    assert comparison["hills_armitage"]["treatment_effect"]["ci95"][1] < 0


def test_without_carry_over_the_crossover_agrees_with_the_parallel_trial(toxin_long_washout):
    """With the toxin washed out, the crossover's treatment effect is the parallel trial's
    difference at the end of a period of the same length, on the same virtual patients, within
    sampling error (the two CIs' half-widths added)."""
    doc, _ = toxin_long_washout
    par = scenario(TOXIN, "", duration=42, n=200, seed=8, visits=42)
    parallel = trial_statistics(Simulation(par).run(), "twstrs_total", "placebo", 0.25, seed=8)
    p = parallel["arms"]["toxin"]["difference_vs_control"]
    c = doc["comparisons"]["toxin"]["hills_armitage"]["treatment_effect"]
    half = lambda ci: (ci[1] - ci[0]) / 2   # noqa: E731
    assert abs(c["mean"] - p["mean"]) < half(c["ci95"]) + half(p["ci95"])
    assert p["mean"] < -2 and c["mean"] < -2


def test_the_shipped_crossover_runs_from_the_command_line(tmp_path):
    import json
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "ecsim", "run", "crossover-toxin", "--patients", "8", "--no-report",
                          "--json", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    trial = json.loads(res.stdout)["trial"]
    assert trial["design"] == "crossover" and trial["periods"] == [[0.0, 42.0], [56.0, 98.0]]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["trial"] == trial


def test_a_crossovers_side_effects_belong_to_the_treatment_of_the_exposure_window():
    """A run reads drug levels and side-effect risks from its last 24 h, which in a sequence is its
    last period. User review 2026-11-26: the CBD-then-placebo sequence showed placebo-level risks
    under the name of a CBD sequence, and no excess over the control arm was given. Now the risks
    are per treatment (from the sequence it ends), with the excess over the control arm."""
    cbd = "  - {name: cbd, product: pharmaceutical, food: low_fat, cbd: [{dose: 10 mg/kg, times_h: [8, 20]}]}\n" \
          "  - {name: placebo}"
    s = scenario(cbd, "sample_size_per_arm: 10\n  replicates: 50\n  crossover: {period_days: 28, washout_days: 14}",
                 duration=70, n=30, seed=4, step=2, visits=14)
    sim = Simulation(s)
    doc = summary(s, sim.run(), sim.registry)
    rows = {a["arm"]: a for a in doc["arms"]}
    assert {k: a["last_period"] for k, a in rows.items()} == {"seq1.cbd.placebo": "placebo", "seq2.placebo.cbd": "cbd"}
    assert rows["seq2.placebo.cbd"]["cbd_plasma_cavg_ng_per_ml"]["geometric_mean"] > 100
    assert rows["seq1.cbd.placebo"]["cbd_plasma_cavg_ng_per_ml"]["geometric_mean"] < 0.01   # two weeks' washout
    adverse = doc["adverse_effects"]
    assert set(adverse) == {"cbd", "placebo"}
    p0 = sim.registry.value("adverse_diarrhoea_p0", "dimensionless")
    assert adverse["placebo"]["diarrhoea"]["mean"] == pytest.approx(p0, abs=1e-3)
    assert adverse["cbd"]["diarrhoea"]["excess_vs_control"] > 0.05
    assert "replicate_trials" in doc["trial"]["arms"]["cbd"]   # where the console and report tables read it
