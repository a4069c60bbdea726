"""Joint uncertainty conditioned on the calibration data: the pieces that decide which draws count.
(A full run costs about a minute per draw; its figures are in docs/uncertainty.md.)"""

import pytest

from ecsim.registry import default_registry
from ecsim.uncertainty.joint import accepted, acceptance_targets, phenotype_stages, recalibrated, smaller_cases

CERVICAL = {"TRUONG05_BASELINE": ("twstrs_total_mean", "twstrs_total_sd"),
            "TRUONG05_WEEK4": ("active_change_week4", "placebo_change_week4")}


def test_cervical_draws_are_conditioned_on_its_calibration_cases_only():
    assert acceptance_targets("cervical") == CERVICAL        # TRUONG05_WEEK4's week-12 metric is validation-like: not fitted
    assert [s.name for s in phenotype_stages("cervical")] == ["focal dystonia", "toxin and placebo"]
    assert acceptance_targets("normal") == {}


def test_cases_are_shortened_to_what_the_targets_need():
    cases = smaller_cases(CERVICAL, 200)
    assert set(cases) == set(CERVICAL)
    assert cases["TRUONG05_WEEK4"].scenario.duration_days == 28
    assert all(c.scenario.population.n == 200 for c in cases.values())


@pytest.fixture(scope="module")
def cases():
    return smaller_cases(CERVICAL, 200)


def test_the_calibrated_model_is_accepted_and_a_changed_phenotype_is_not(cases):
    reg = default_registry()
    assert accepted(reg, CERVICAL, cases) == (True, "")
    stronger = reg.with_overrides({"pheno_focal_loop_gain": reg["pheno_focal_loop_gain"].value * 1.5})
    assert accepted(stronger, CERVICAL, cases) == (False, "TRUONG05_BASELINE.twstrs_total_mean")


@pytest.mark.parametrize("factor", [0.8, 1.15, 1.3, 1.5])
def test_a_refit_brings_a_perturbed_draw_back_to_the_data(cases, factor):
    # with 4 evaluations per stage only 1-2 of these came back (the refit stopped short and the draw
    # was rejected although it could be brought to the data); REFIT_EVALUATIONS = 8 brings all four
    reg = default_registry()
    moved = reg.with_overrides({"pheno_focal_loop_gain": reg["pheno_focal_loop_gain"].value * factor})
    refitted = recalibrated(moved, phenotype_stages("cervical")[:1], cases)
    back = refitted["pheno_focal_loop_gain"].value - reg["pheno_focal_loop_gain"].value
    assert abs(back) < abs(moved["pheno_focal_loop_gain"].value - reg["pheno_focal_loop_gain"].value)
    ok, miss = accepted(refitted, {"TRUONG05_BASELINE": CERVICAL["TRUONG05_BASELINE"]}, cases)
    assert ok, miss


def test_joint_needs_a_calibrated_phenotype(tmp_path, capsys):
    from ecsim.cli import main
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nduration_days: 7\noutput_step_h: 1\npopulation: {n: 5, seed: 1, phenotype: huntington}\n"
                    "trial: {control_arm: placebo}\narms:\n  - name: placebo\n  - name: cbd\n    cbd: [{dose: 5 mg, times_h: [8]}]\n")
    assert main(["sensitivity", str(path), "--joint", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: population.phenotype: got 'huntington'") and "\n" not in err
