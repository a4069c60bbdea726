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


def test_morris_ranks_the_ishigami_factors():
    r = morris(ISHIGAMI, ishigami, 200, seed=3)
    order = [name for name, _ in ranking(r, "y")]
    assert order[0] in ("x1", "x2") and order[-1] == "x3"     # x3 acts only through its interaction


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
    assert "isolate_300mg_day.neck_severity_vs_control_pct" in y


def test_parameter_uncertainty_is_reproducible_and_names_its_sources(short_trial, registry):
    a = parameter_uncertainty(short_trial, registry, draws=24, seed=4)
    b = parameter_uncertainty(short_trial, registry, draws=24, seed=4)
    assert a == b
    for v in a["intervals"].values():
        assert v["p05"] <= v["median"] <= v["p95"]
    drivers = a["drivers"]["isolate_300mg_day.neck_severity_vs_control_pct"]
    assert len(drivers) == 3 and all(d["citation"] for d in drivers)


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
