"""Trial populations (ecsim.designs, ecsim.population): phenotype mixes and screening on a
baseline-score inclusion criterion."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ecsim.clinical_summary import clinical_table, trial_statistics
from ecsim.errors import InputError
from ecsim.outputs import summary
from ecsim.population import phenotype_labels
from ecsim.scenario import parse_scenario
from ecsim.simulation import Simulation

TEXT = """
name: population
duration_days: 14
output_step_h: 24
visit_interval_days: 7
population:
  n: {n}
  seed: {seed}
{population}
trial:
  placebo_response: true
  control_arm: placebo
{trial}
arms:
  - name: placebo
  - name: toxin
    botulinum: {{units: 500}}
"""


def scenario(population: str, trial: str = "  primary_scale: bfmdrs_movement", n: int = 40, seed: int = 4):
    return parse_scenario(TEXT.format(n=n, seed=seed, population=population, trial=trial))


# ---------------------------------------------------------------- schema


@pytest.mark.parametrize("population, trial, field", [
    ("  phenotype: drd\n  phenotype_mix: {tor1a: 1, cervical: 1}", "  primary_scale: bfmdrs_movement",
     "population.phenotype"),
    ("  phenotype_mix: {tor1a: 1, cervical: 1}", "", "trial.primary_scale"),
    ("  phenotype_mix: {tor1a: 1, cervical: 0}", "  primary_scale: bfmdrs_movement", "population.phenotype_mix"),
    ("  phenotype_mix: {tor1a: 1, dystonia: 1}", "  primary_scale: bfmdrs_movement", "population.phenotype_mix"),
    ("  phenotype_mix: {tor1a: 1}", "  primary_scale: bfmdrs_movement", "population.phenotype_mix"),
    ("  phenotype: cervical\n  inclusion: {scale: twstrs_total}", "", "population.inclusion.at_least"),
    ("  phenotype: cervical\n  inclusion: {at_least: 30, at_most: 20}", "", "population.inclusion.at_most"),
    ("  phenotype: cervical\n  inclusion: {scale: gpi_hz, at_least: 3}", "", "population.inclusion.scale"),
])
def test_bad_populations_name_the_field(population, trial, field):
    with pytest.raises(InputError) as err:
        scenario(population, trial)
    assert str(err.value).startswith(field), str(err.value)
    assert "\n" not in str(err.value)


def test_a_mix_names_its_largest_phenotype():
    s = scenario("  phenotype_mix: {cervical: 1, tor1a: 3}")
    assert s.population.phenotype == "tor1a"
    same_default = scenario("  phenotype_mix: {tor1a: 1, drd: 1}", trial="")
    assert same_default.population.phenotype == "drd"   # a tie: the first in alphabetical order


# ---------------------------------------------------------------- phenotype mixes


def test_mix_weights_are_reproduced_within_binomial_error():
    mix = {"tor1a": 3.0, "cervical": 1.5, "drd": 0.5}
    n = 100_000
    labels = phenotype_labels(9, 0, n, mix)
    for name, w in mix.items():
        p = w / sum(mix.values())
        assert abs(np.mean(labels == name) - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_phenotype_draws_depend_on_the_patient_only():
    mix = {"tor1a": 1.0, "cervical": 1.0}
    whole = phenotype_labels(9, 0, 3000, mix)
    parts = np.concatenate([phenotype_labels(9, a, min(a + 700, 3000), mix) for a in range(0, 3000, 700)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(phenotype_labels(9, 0, 3000, {"cervical": 1.0, "tor1a": 1.0}), whole)
    assert not np.array_equal(phenotype_labels(10, 0, 3000, mix), whole)


@pytest.fixture(scope="module")
def mixed_run():
    s = scenario("  phenotype_mix: {tor1a: 1, cervical: 1}", n=60)
    return s, Simulation(s).run()


def test_each_patient_of_a_mix_is_the_patient_of_their_phenotype(mixed_run):
    """A mixed population is the single-phenotype populations interleaved: patient i of the mix
    has the trajectory of patient i of a run of their own phenotype (same seed)."""
    s, results = mixed_run
    labels = results[1].labels["phenotype"]
    assert np.array_equal(labels, phenotype_labels(4, 0, 60, {"tor1a": 1, "cervical": 1}))
    assert 0 < np.mean(labels == "tor1a") < 1
    for phenotype in ("tor1a", "cervical"):
        alone = Simulation(scenario(f"  phenotype: {phenotype}", n=60)).run()
        rows = labels == phenotype
        for scale in ("bfmdrs_movement", "twstrs_total"):
            assert np.array_equal(results[1].clinical[scale][rows], alone[1].clinical[scale][rows])


def test_phenotype_reaches_the_statistics_and_the_patient_table(mixed_run):
    s, results = mixed_run
    doc = summary(s, results, Simulation(s).registry)["trial"]
    labels = results[0].labels["phenotype"]
    assert doc["phenotype_shares"] == {k: round(float(np.mean(labels == k)), 4) for k in ("cervical", "tor1a")}
    by = doc["by_phenotype"]
    assert by["tor1a"]["toxin"]["n"] + by["cervical"]["toxin"]["n"] == 60
    change = results[1].clinical["bfmdrs_movement"][:, -1] - results[1].clinical["bfmdrs_movement"][:, 0]
    assert by["cervical"]["toxin"]["change"]["mean"] == pytest.approx(np.mean(change[labels == "cervical"]), abs=1e-3)
    table = clinical_table(results)
    first = table[table["day"] == 0].set_index(["arm", "patient"])["phenotype"]
    assert first.loc["toxin"].tolist() == labels.tolist()


# ---------------------------------------------------------------- screening on the baseline score


@pytest.fixture(scope="module")
def screened_and_unscreened():
    criterion = "  phenotype: cervical\n  inclusion: {scale: twstrs_total, at_least: 50}"
    screened = scenario(criterion, trial="", n=30, seed=6)
    unscreened = scenario("  phenotype: cervical", trial="", n=200, seed=6)
    return Simulation(screened), Simulation(screened).run(), Simulation(unscreened).run()


def test_every_enrolled_patient_meets_the_criterion(screened_and_unscreened):
    sim, results, _ = screened_and_unscreened
    for r in results:
        assert r.n == 30
        assert np.all(r.clinical["twstrs_total"][:, 0] >= 50)


def test_screen_failures_are_the_unscreened_patients_below_the_threshold(screened_and_unscreened):
    """Screening enrols exactly the patients of an unscreened run of the same seed whose baseline
    meets the criterion, in patient order; the screen-failure fraction is the share below it among
    those screened, and enrolled patients are the same patients (same trajectories)."""
    sim, results, plain = screened_and_unscreened
    m = sim.enrolment.screened
    assert m < 200
    baseline = plain[1].clinical["twstrs_total"][:m, 0]
    assert sim.enrolment.screen_failure_fraction == pytest.approx(np.mean(baseline < 50))
    meets = np.flatnonzero(baseline >= 50)
    assert len(meets) == 30 and meets[-1] == m - 1
    for screened, unscreened in zip(results, plain):
        assert np.array_equal(screened.patients, meets)
        assert np.array_equal(screened.clinical["twstrs_total"], unscreened.clinical["twstrs_total"][meets])
    doc = trial_statistics(results, "twstrs_total", "placebo", 0.25)
    assert doc["screening"] == {"criterion": "baseline twstrs_total >= 50", "screened": m, "enrolled": 30,
                                "screen_failures": m - 30,
                                "screen_failure_fraction": round(float(np.mean(baseline < 50)), 4)}


def test_screening_on_an_upper_bound_and_a_mixed_population():
    s = scenario("  phenotype_mix: {tor1a: 1, cervical: 1}\n  inclusion: {at_most: 8}", n=20, seed=2)
    sim = Simulation(s)
    results = sim.run()
    assert all(np.all(r.clinical["bfmdrs_movement"][:, 0] <= 8) for r in results)
    assert results[0].n == 20 and sim.enrolment.screened > 20
    # a low BFMDRS movement score selects the focal (cervical) patients
    assert np.mean(results[0].labels["phenotype"] == "cervical") > 0.5


def test_a_criterion_nobody_meets_is_refused_in_one_line(tmp_path):
    s = scenario("  phenotype: cervical\n  inclusion: {scale: twstrs_total, at_least: 500}", trial="", n=3)
    with pytest.raises(InputError, match="^population.inclusion: got 'baseline twstrs_total >= 500'"):
        Simulation(s)
    path = tmp_path / "s.yaml"
    path.write_text(TEXT.format(n=3, seed=1, population="  phenotype: cervical\n  inclusion: {at_least: 500}", trial=""))
    res = subprocess.run([sys.executable, "-m", "ecsim", "run", str(path), "--no-report", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "population.inclusion" in res.stderr
    assert not (tmp_path / "o").exists()


def test_a_screened_mixed_crossover(tmp_path):
    """Screening, a mix and a crossover together: randomised by enrolment order among the enrolled,
    phenotype shares and per-phenotype crossover statistics in summary.json."""
    text = TEXT.format(n=24, seed=3, population="  phenotype_mix: {tor1a: 1, cervical: 1}\n  inclusion: {at_least: 2}",
                       trial="  primary_scale: bfmdrs_movement\n  crossover: {period_days: 7}")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    res = subprocess.run([sys.executable, "-m", "ecsim", "run", str(path), "--no-report", "--json", "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    trial = json.loads(res.stdout)["trial"]
    assert trial["design"] == "crossover" and trial["screening"]["enrolled"] == 24
    assert sum(v["patients"] for v in trial["sequences"].values()) == 24
    assert set(trial["by_phenotype"]) <= {"tor1a", "cervical"} and set(trial["phenotype_shares"]) == set(trial["by_phenotype"])


def test_per_patient_streams_are_independent_of_the_clinical_draws():
    """Phenotype, randomisation, titration and withdrawal draws each come from a stream of their
    own: none is correlated with the clinical layer's per-patient draws (severity, treatment
    responses, rater noise, physiotherapy, pain and oral-agent responsiveness)."""
    from scipy.special import ndtri
    from ecsim.circuit.clinical import PatientDraws
    from ecsim.designs import TITRATION_STREAM
    from ecsim.population import PHENOTYPE_STREAM, block_normals
    from ecsim.treatments.dropout import STREAM as DROPOUT, DropoutModel, withdrawal_days
    n, seed = 20000, 13
    z = PatientDraws(seed, 0, n)
    clinical = np.column_stack([z.phenotype, z.treatment, z.rater(0), z.physio(), z.pain(), z.oral()])
    u = np.exp(-withdrawal_days(DropoutModel(1.0, 0.0), np.arange(n), seed, 1.0) / 7.0)   # the uniform back
    mine = np.column_stack([ndtri(np.clip(u, 1e-12, 1 - 1e-12)),
                            block_normals((seed, *PHENOTYPE_STREAM), 0, n, 1),
                            block_normals((seed, *TITRATION_STREAM), 0, n, 4)])
    r = np.corrcoef(np.column_stack([mine, clinical]).T)[:mine.shape[1], mine.shape[1]:]
    assert np.abs(r).max() < 5 / np.sqrt(n)
    assert len({DROPOUT, PHENOTYPE_STREAM, TITRATION_STREAM}) == 3
