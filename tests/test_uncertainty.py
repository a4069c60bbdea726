"""Sensitivity analysis: the Ishigami function's analytic Sobol indices through the code path the
model uses; reproducibility; more samples give narrower confidence intervals."""

import numpy as np
import pytest

from ecsim.uncertainty.problem import Factor, Problem, from_registry
from ecsim.uncertainty.sensitivity import monte_carlo, morris, ranking, sobol

# Ishigami & Homma (1990), a = 7, b = 0.1: analytic indices (Saltelli et al. 2008, Global Sensitivity
# Analysis: The Primer, section 4.6): S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437).
S1 = np.array([0.3139, 0.4424, 0.0])
ST = np.array([0.5576, 0.4424, 0.2437])
ISHIGAMI = Problem(tuple(Factor(f"x{i}", "uniform", 0.0, (-np.pi, np.pi)) for i in (1, 2, 3)))


def ishigami(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])}


def test_sobol_recovers_ishigami_indices():
    r = sobol(ISHIGAMI, ishigami, 4096, seed=1)["outputs"]["y"]
    np.testing.assert_allclose(r["S1"], S1, atol=0.03)
    np.testing.assert_allclose(r["ST"], ST, atol=0.03)


def test_same_seed_same_indices_and_more_samples_narrow_the_intervals():
    a = sobol(ISHIGAMI, ishigami, 512, seed=7)["outputs"]["y"]
    b = sobol(ISHIGAMI, ishigami, 512, seed=7)["outputs"]["y"]
    assert a == b
    big = sobol(ISHIGAMI, ishigami, 8192, seed=7)["outputs"]["y"]
    assert np.all(np.array(big["ST_conf"]) < np.array(a["ST_conf"]))


def test_morris_elementary_effects_of_a_linear_function():
    """y = 10 x1 + x2 + 0 x3, each uniform on [-1, 1]: every elementary effect is exact. One step
    moves a factor by half its quantile range (bin centres, 4 levels: 3/4 x 2/3), i.e. by 1, so
    mu* = |coefficient| on SALib's grid scale of Delta = 2/3: mu* = |a| x 1 / (2/3) = 1.5 |a|."""
    linear = Problem(tuple(Factor(f"x{i}", "uniform", 0.0, (-1.0, 1.0)) for i in (1, 2, 3)))
    r = morris(linear, lambda x: {"y": 10 * x[:, 0] + x[:, 1]}, 20, seed=3)
    np.testing.assert_allclose(r["outputs"]["y"]["mu_star"], [15.0, 1.5, 0.0], atol=1e-9)
    assert [name for name, _ in ranking(r, "y")] == ["x1", "x2", "x3"]


def test_morris_per_quantile_and_trajectories_with_a_fault_left_out():
    """Per unit of quantile a linear function's mu* is |coefficient| x (high - low): 10 x 2 and 1 x 2.
    A set with a non-finite output (here x2 in its top bin, 0.75) drops its whole trajectory from
    that output: the rest still give the exact effects; an output with no sound trajectory gets None."""
    linear = Problem(tuple(Factor(f"x{i}", "uniform", 0.0, (-1.0, 1.0)) for i in (1, 2)))

    def faulty(x):
        y = 10 * x[:, 0] + x[:, 1]
        return {"y": np.where(x[:, 1] > 0.5, np.nan, y), "dead": np.full(len(x), np.nan)}

    r = morris(linear, faulty, 20, seed=3, per_quantile=True)["outputs"]
    assert 2 <= r["y"]["trajectories_used"] < 20
    np.testing.assert_allclose(r["y"]["mu_star"], [20.0, 2.0], atol=1e-9)
    assert r["dead"]["trajectories_used"] == 0 and r["dead"]["mu_star"] == [None, None]
    assert [name for name, _ in ranking({"method": "morris", "factors": ["x1", "x2"], "outputs": r}, "dead")] == \
        ["x1", "x2"]


def test_quantiles_follow_the_registry_uncertainty(registry):
    problem = from_registry(registry, ["cbd_kp_brain", "full_spectrum_thc_to_cbd"])
    u = np.random.default_rng(0).random((20000, 2))
    v = problem.values(u)
    kp = registry["cbd_kp_brain"]
    if kp.uncertainty.distribution == "lognormal":
        assert np.median(v[:, 0]) == pytest.approx(kp.value, rel=0.03)
        cv = np.sqrt(np.exp(np.var(np.log(v[:, 0]))) - 1)
        assert cv == pytest.approx(kp.uncertainty.cv, rel=0.05)
    thc = registry["full_spectrum_thc_to_cbd"].uncertainty
    assert v[:, 1].min() >= thc.low and v[:, 1].max() <= thc.high


def test_uniform_normal_and_log_uniform_quantiles():
    u = np.random.default_rng(1).random(40000)
    flat = Factor("a", "uniform", 2.0, (1.0, 3.0)).quantile(u)
    assert np.median(flat) == pytest.approx(2.0, rel=0.02)
    wide = Factor("b", "uniform", 50.0, (50.0, 5000.0)).quantile(u)          # 100-fold: log-uniform
    assert np.median(wide) == pytest.approx(500.0, rel=0.05)
    assert np.mean(wide < 500.0) == pytest.approx(0.5, abs=0.01)
    normal = Factor("c", "normal", 1.0, (0.5,)).quantile(u)
    assert np.std(normal) == pytest.approx(0.5, rel=0.03) and np.median(normal) == pytest.approx(1.0, abs=0.02)
    assert Factor("d", "normal", 0.1, (1.0,)).quantile(u).min() >= 0.0      # positive parameters stay positive


def test_morris_levels_stay_inside_the_distributions():
    """SALib's grid ends (0 and 1) would be the 1e-6 tails; bin centres keep them at 1/8 and 7/8."""
    from ecsim.uncertainty.sensitivity import bin_centres
    grid = np.array([[0.0], [1 / 3], [2 / 3], [1.0]])
    np.testing.assert_allclose(bin_centres(grid, 4)[:, 0], [0.125, 0.375, 0.625, 0.875])


def test_monte_carlo_interval_contains_the_median():
    r = monte_carlo(ISHIGAMI, ishigami, 2000, seed=2)["y"]
    assert r["p05"] < r["median"] < r["p95"]


# --- the model as a function of its parameters ------------------------------------------------------

from ecsim.runjob import prepared_scenario  # noqa: E402
from ecsim.uncertainty import parameter_uncertainty  # noqa: E402
from ecsim.uncertainty.model import HeadlineFunction  # noqa: E402
from ecsim.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def short_trial():
    from ecsim.scenario import Scenario
    data = prepared_scenario(None, 10, None).model_dump(mode="json")
    data["duration_days"] = 28
    data["arms"] = [a for a in data["arms"] if a["name"] in ("placebo", "isolate_300mg_day")]
    return Scenario.model_validate(data)


def test_headline_outputs_follow_their_parameters(short_trial, registry):
    """Doubling oral bioavailability doubles plasma CBD (linear PK at a fixed dose fraction) and
    deepens the CB1 signal reduction; equal parameter sets give equal outputs."""
    f = HeadlineFunction(short_trial, registry, ["cbd_f_oral_max"])
    base = registry["cbd_f_oral_max"].value
    y = f(np.array([[base], [base], [2 * base]]))
    plasma = y["isolate_300mg_day.cbd_plasma_cavg_ng_per_ml"]
    assert plasma[0] == plasma[1]
    assert plasma[2] / plasma[0] == pytest.approx(2.0, rel=0.05)
    signal = y["isolate_300mg_day.cb1_signal_striatum_gpe_rel"]
    assert signal[2] < signal[0] < 1.0
    assert "isolate_300mg_day.severity_vs_control_pct" in y


def test_parameter_uncertainty_is_reproducible(short_trial, registry):
    a = parameter_uncertainty(short_trial, registry, draws=24, seed=4)
    b = parameter_uncertainty(short_trial, registry, draws=24, seed=4)
    assert a == b
    assert len(a["drivers"]["isolate_300mg_day.severity_vs_control_pct"]) == 3


def test_drivers_find_a_parameter_that_acts_and_ignore_one_that_cannot(short_trial, registry):
    """Clobazam's clearance cannot touch an arm without clobazam; CBD's bioavailability must."""
    from ecsim.uncertainty import _correlates
    names = ["cbd_f_oral_max", "clb_cl"]
    problem = from_registry(registry, names)
    f = HeadlineFunction(short_trial, registry, problem.names)
    unit = np.random.default_rng(0).random((24, 2))
    y = f(problem.values(unit))["isolate_300mg_day.cbd_plasma_cavg_ng_per_ml"]
    top = _correlates(problem, unit, y, registry, 2)
    assert top[0]["parameter"] == "cbd_f_oral_max" and top[0]["score"] > 0.9
    assert abs(top[1]["score"]) < 0.5 and top[0]["citation"] != "assumption"


def test_sensitivity_cli_rejects_bad_options(capsys):
    assert main(["sensitivity", "--method", "fast"]) == 2
    assert "--method" in capsys.readouterr().err
    assert main(["sensitivity", "--samples", "100"]) == 2
    assert "power of 2" in capsys.readouterr().err


def test_sobol_stage_gets_every_arms_leading_parameters():
    from ecsim.uncertainty import _combined_order
    screen = {"method": "morris", "factors": ["a", "b", "c", "d"],
              "outputs": {"arm1": {"mu_star": [9.0, 8.0, 0.1, 0.0]}, "arm2": {"mu_star": [0.0, 0.0, 0.02, 0.01]}}}
    assert _combined_order(screen, ["arm1", "arm2"])[:2] == ["a", "c"]


def test_clinical_parameters_one_at_a_time(short_trial, registry):
    """A basal-ganglia weight (Girard 2008) moves CBD's effect on severity; the toxin's ED50 cannot,
    in an arm without toxin; the sweep reports both ends for each."""
    from ecsim.uncertainty.model import clinical_one_at_a_time, clinical_parameters
    names = clinical_parameters(registry)
    assert "cbg_w_gpe_stn" in names and "cbd_cb1_nam_kb" not in names
    r = clinical_one_at_a_time(short_trial, registry, "isolate_300mg_day",
                               names=["bont_ed50_dysport_units", "cbg_w_gpe_stn"])
    rows = {x["parameter"]: x for x in r["factors"]}
    toxin, weight = rows["bont_ed50_dysport_units"], rows["cbg_w_gpe_stn"]
    assert toxin["answer_low"] == toxin["answer_high"] == r["baseline"]
    assert weight["answer_low"] != weight["answer_high"]
    assert r["factors"][0]["parameter"] == "cbg_w_gpe_stn"


def test_expected_item_score_is_the_mean_over_raters():
    """The expectation of a rounded, clipped, noisy item (scales.EXPECTED) against a Monte Carlo mean
    of the rater-noise version over 200,000 raters; with no noise it is the rounded score."""
    from ecsim.circuit.scales import EXPECTED, _item
    rng = np.random.default_rng(0)
    x = np.array([0.0, 0.02, 0.3, 0.55, 0.97])
    for top, sd in ((4, 0.5), (30, 1.0), (2, 0.25)):
        z = rng.standard_normal((200_000, len(x)))
        monte_carlo = _item(np.broadcast_to(x, z.shape), top, z, sd, True).mean(axis=0)
        np.testing.assert_allclose(_item(x, top, EXPECTED, sd, True), monte_carlo, atol=0.01)
    assert list(_item(x, 4, EXPECTED, 0.0, True)) == list(np.where(x > 0, np.clip(np.rint(4 * x), 0, 4), 0.0))


def test_the_answer_in_points_moves_smoothly(short_trial, registry):
    """With items at their mean over raters the typical patient's primary scale changes by fractions
    of a point, where one rater's rounded scores would move in whole points or not at all."""
    f = HeadlineFunction(short_trial, registry, ["cbd_cb1_nam_kb"], ["isolate_300mg_day"])
    kb = registry["cbd_cb1_nam_kb"].value
    out = f(np.array([[kb * 0.1], [kb], [kb * 10]]))["isolate_300mg_day.twstrs_total_vs_control_points"]
    assert np.all(np.abs(out) < 1.0) and len(set(np.round(out, 6))) == 3


def test_each_parameter_keeps_its_draws_when_others_are_added_or_reordered():
    """Parameter draws come per parameter name: adding a factor, or listing the factors in another
    order, leaves every other factor's column as it was; the seed and stream still decide them."""
    from ecsim.uncertainty.problem import unit_draws
    base = unit_draws(["a", "b"], 64, 1, 9001)
    more = unit_draws(["b", "new", "a"], 64, 1, 9001)
    np.testing.assert_array_equal(more[:, 2], base[:, 0])
    np.testing.assert_array_equal(more[:, 0], base[:, 1])
    assert base.shape == (64, 2) and np.all((base >= 0) & (base < 1))
    assert not np.allclose(unit_draws(["a"], 64, 2, 9001), base[:, :1])
    assert not np.allclose(unit_draws(["a"], 64, 1, 9002), base[:, :1])
    assert not np.allclose(base[:, 0], base[:, 1])
    assert unit_draws([], 5, 1, 9001).shape == (5, 0)


def test_sweep_rows_with_an_undefined_answer_sort_by_what_is_defined():
    from ecsim.uncertainty.model import _moved
    base = -0.2
    rows = [{"answer_low": float("nan"), "answer_high": float("nan")}, {"answer_low": -0.1, "answer_high": 5.0},
            {"answer_low": float("nan"), "answer_high": -3.2}]
    assert [_moved(r, base) for r in sorted(rows, key=lambda r: -_moved(r, base))] == pytest.approx([5.2, 3.0, -1.0])
