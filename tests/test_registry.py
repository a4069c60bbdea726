"""Provenance: every parameter the model reads has a complete, cited registry entry."""

import pytest

from ecsim.calibration import STAGES
from ecsim.errors import InputError
from ecsim.registry import _load_parameters
from ecsim.validation import load_cases


def test_every_model_parameter_has_an_entry(model, registry):
    missing = sorted(set(model.parameters) - set(registry.parameters))
    assert not missing


def test_model_units_convert(model, registry):
    for name, unit in model.parameters.items():
        registry.value(name, unit)


def test_sources_resolve_to_bibliography_with_locator(registry):
    for p in registry.parameters.values():
        if p.source == "assumption":
            assert len(p.reason) >= 10, p.name
        else:
            ref = registry.references[p.source]
            assert ref.doi or ref.pmid or ref.url, p.name


def test_every_entry_has_uncertainty_and_species(registry):
    for p in registry.parameters.values():
        assert p.uncertainty is not None and p.species, p.name


def test_fitted_parameters_name_calibration_cases_only(registry):
    cases = {c.id: c for c in load_cases()}
    fitted = {p.name for p in registry.parameters.values() if p.kind == "fitted"}
    assert fitted == {p for s in STAGES for p in s.parameters}
    for name in fitted:
        for case_id in registry[name].fitted_to:
            assert cases[case_id].kind == "calibration", (name, case_id)


def test_no_validation_case_comes_from_a_study_that_set_a_parameter(registry):
    """DESIGN §4: 'A study used to fit any parameter is calibration and does not count as
    validation.' A study sets parameters when it is the source of a registry entry or the study of
    a calibration case (whose arms the fits use); another arm of it is not independent."""
    cases = load_cases()
    used = {p.source for p in registry.parameters.values()} | {c.citation for c in cases if c.kind == "calibration"}
    offending = sorted(c.id for c in cases if c.kind == "validation" and c.citation in used)
    assert not offending


def test_entry_without_source_is_rejected():
    text = "parameters:\n  x: {value: 1, unit: L, species: human, source: assumption, kind: assumption, description: d, uncertainty: {distribution: lognormal, cv: 0.1}}\n"
    with pytest.raises(InputError, match="reason"):
        _load_parameters(text, "bad.yaml")


def test_entry_with_bad_unit_is_rejected():
    text = "parameters:\n  x: {value: 1, unit: furlongs/fortnightz, species: human, source: s, kind: measured, description: d, uncertainty: {distribution: lognormal, cv: 0.1}}\n"
    with pytest.raises(InputError, match="unit"):
        _load_parameters(text, "bad.yaml")


def test_override_checks_units(registry):
    assert registry.with_overrides({"cbd_cl": "1000 mL/min"})["cbd_cl"].value == pytest.approx(60.0)
    with pytest.raises(InputError, match="cbd_cl"):
        registry.with_overrides({"cbd_cl": "5 mg"})
    with pytest.raises(InputError, match="parameter"):
        registry.with_overrides({"no_such_parameter": 1.0})


def test_fractions_cannot_be_overridden_above_one(registry):
    """An unbound fraction of 5 ran until 2026-11-27 (plasma CBD Cavg 49 -> 0.7 ng/mL, no warning)."""
    with pytest.raises(InputError, match="parameters.cbd_fu_plasma.*at most 1"):
        registry.with_overrides({"cbd_fu_plasma": 5})
    assert registry.with_overrides({"cbd_fu_plasma": 1})["cbd_fu_plasma"].value == 1.0


def test_every_fraction_share_chance_and_bioavailability_is_capped_at_one(registry):
    """Entries described as a fraction, share, chance, probability, frequency or bioavailability
    carry max 1, so no override and no uncertainty draw can exceed it."""
    import re
    words = re.compile(r"^(unbound fraction|fraction|share|chance|excess chance|background \(placebo\) probability|"
                       r"frequency|largest fraction|maximal fractional|(\w+ )*bioavailability(?! multiplier))\b", re.I)
    named = [p.name for p in registry.parameters.values() if p.unit == "dimensionless" and words.match(p.description)]
    assert len(named) >= 50 and [n for n in named if registry[n].max != 1] == []


def test_uncertainty_of_a_capped_fraction_is_the_truncated_lognormal():
    """Quantiles against SciPy's truncated normal on the log scale (an independent formula)."""
    import numpy as np
    from scipy import stats
    from ecsim.uncertainty.problem import Factor
    center, cv, u = 0.7, 0.289, np.array([0.01, 0.3, 0.5, 0.9, 0.999])
    sigma = np.sqrt(np.log1p(cv * cv))
    expected = center * np.exp(sigma * stats.truncnorm.ppf(u, -np.inf, np.log(1 / center) / sigma))
    got = Factor("thp", "lognormal", center, (cv,), upper=1.0).quantile(u)
    assert got == pytest.approx(expected, rel=1e-9) and got.max() < 1.0
    assert Factor("thp", "lognormal", center, (cv,)).quantile(np.array([0.95]))[0] > 1.0   # without the cap


@pytest.mark.parametrize("se_log", [0.1, 0.5, 1.0, 2.0])
def test_fitted_uncertainty_draws_with_the_fits_log_sd(se_log):
    """The fit's log-scale standard error is what the draws' log-SD must be: the CV stored in
    fitted.yaml, read back by the sampler, gives back se (to its 3 stored digits). Storing se itself as
    the CV, as until 2026-11-26, gave log-SD 1.27 for se 2."""
    from ecsim.calibration import fitted_uncertainty
    from ecsim.uncertainty.problem import Factor
    import numpy as np
    cv = fitted_uncertainty(se_log)["cv"]
    factor = Factor("x", "lognormal", 1.0, (cv,))
    z84 = np.log(factor.quantile(np.array([0.8413447460685429]))[0])   # one SD above the median
    assert z84 == pytest.approx(se_log, rel=5e-3)


def test_fitted_entries_store_their_log_sd_as_a_cv(registry):
    """Every fitted entry's CV is sqrt(exp(se^2) - 1) of the se its basis states."""
    import math
    import re
    for p in registry.parameters.values():
        if p.kind != "fitted" or "on the log scale" not in p.uncertainty.basis:
            continue
        se = float(re.search(r"([0-9.]+) on the log scale", p.uncertainty.basis).group(1))
        # both are stored to 3 significant digits: compare on the log-SD scale
        assert math.sqrt(math.log1p(p.uncertainty.cv ** 2)) == pytest.approx(se, rel=5e-3, abs=2e-3), p.name


def test_fit_covariance_keeps_what_the_data_identify_and_gives_the_rest_the_prior():
    """Two log-parameters of which the data fix only the difference (residual (x1 - x2) / 0.1, as
    Taylor 2018's metabolite data fix formation over clearance): the Laplace covariance with the
    log-SD 2 prior gives the difference the data's variance and the sum the prior's, by hand:
    information 100 [[1, -1], [-1, 1]] + I / 4, so var(x1 - x2) = 2 / 200.25, var(x1 + x2) = 2 x 4."""
    import numpy as np
    from ecsim.calibration import _covariance
    cov = _covariance(np.array([[10.0, -10.0]]))
    assert np.array([1, -1]) @ cov @ np.array([1, -1]) == pytest.approx(2 / 200.25)
    assert np.array([1, 1]) @ cov @ np.array([1, 1]) == pytest.approx(8.0)


def test_draws_of_values_fitted_together_keep_the_fits_correlation(registry):
    """The uncertainty draws of a calibration stage's values follow the correlation stored with the
    fit (Gaussian copula), so a ratio the data identify keeps a narrow spread: with Taylor 2018's
    metabolite fit, 7-OH-CBD's formation fraction over its clearance varies far less than either."""
    import numpy as np
    from scipy.special import ndtri
    from ecsim.uncertainty import parameter_draws
    from ecsim.uncertainty.problem import fitted_correlations
    problem, values = parameter_draws(registry, 4000, seed=3)
    names = problem.names
    members, matrix = next((m, r) for m, r in fitted_correlations() if "cbd_fm_7oh" in m)
    i, j = names.index("cbd_fm_7oh"), names.index("cbd7oh_cl")
    stored = matrix[members.index("cbd_fm_7oh"), members.index("cbd7oh_cl")]
    z = np.log(values[:, [i, j]])
    assert np.corrcoef(z.T)[0, 1] == pytest.approx(stored, abs=0.02)
    assert np.std(z[:, 0] - z[:, 1]) < 0.5 * min(np.std(z[:, 0]), np.std(z[:, 1]))
    # Morris and Sobol designs take the factors independently
    unit = np.random.default_rng(0).random((4000, len(names)))
    free = np.log(problem.independent().values(unit)[:, [i, j]])
    assert abs(np.corrcoef(free.T)[0, 1]) < 0.05
