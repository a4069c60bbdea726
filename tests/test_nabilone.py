"""Nabilone as a co-medication (ecsim.pk.nabilone; docs/treatments.md, "Nabilone").

Expected values come from closed forms (one-compartment oral absorption), from the published
properties named at each test, or from invariants; none is copied from the code's output."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from ecsim.chain import full_model
from ecsim.engine import integrate, outputs
from ecsim.model.declaration import Model, Submodel
from ecsim.registry import default_registry
from ecsim.regimen import COMEDICATION_BOLUS
from ecsim.scenario import CoMedication, Scenario
from ecsim.simulation import grid_for, patient_inputs, simulate_chunk
from ecsim.validation.nca import auc_last, t_half

FREE = sp.Symbol("nabilone_free_nM", real=True, nonnegative=True)


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def scenario(doses_mg: list[float], days: float = 2.0, step_h: float = 0.25, extra: dict | None = None,
             typical: bool = True) -> Scenario:
    arms = [{"name": f"mg{d:g}", **(extra or {}),
             "comedication": [{"drug": "nabilone", "steps": [{"dose": f"{d} mg", "times_h": [0], "to_day": 1}]}]}
            for d in doses_mg]
    return Scenario.model_validate({"name": "nabilone", "duration_days": days, "output_step_h": step_h,
                                    "population": {"n": 1, "typical": typical, "weight_mean_kg": 70.0,
                                                   "weight_sd_kg": 0.0}, "arms": arms})


def run(sc: Scenario, n: int = 1) -> dict[str, dict[str, np.ndarray]]:
    return {arm.name: simulate_chunk(sc, arm, 0, n).outputs for arm in sc.arms}


def test_plasma_profile_is_the_closed_form_bateman_function(registry):
    """One compartment, first-order absorption: C(t) = D ka / (V (ka - k)) (e^-kt - e^-ka t), with
    k = CL/V (70 kg: no scaling); evaluated by hand, not by the engine."""
    sc = scenario([2.0])
    c = run(sc)["mg2"]["nabilone_plasma_ng_per_ml"][0]
    t = grid_for(sc).times
    ka, cl, v = (registry[n].value for n in ("nabilone_ka", "nabilone_cl_f", "nabilone_v_f"))
    k = cl / v
    expected = 2.0 / v * ka / (ka - k) * (np.exp(-k * t) - np.exp(-ka * t)) * 1000.0   # mg/L -> ng/mL
    assert np.allclose(c, expected, rtol=1e-9, atol=1e-12)


def test_half_life_and_tmax_follow_the_sources(registry):
    """Rubin 1977: parent half-life about 2 h; monograph: peak within 2 h. NCA on the simulated
    profile against the declared rate and the published tmax. The terminal slope is taken at 24-48 h,
    where the absorption term (e^-ka t, ka = 2k) is below 3e-4 of the elimination term."""
    sc = scenario([2.0])
    c = run(sc)["mg2"]["nabilone_plasma_ng_per_ml"]
    t = grid_for(sc).times
    late = (t >= 24) & (t <= 48)
    assert t_half(t[late], c[:, late])[0] == pytest.approx(
        np.log(2) * registry["nabilone_v_f"].value / registry["nabilone_cl_f"].value, rel=1e-3)
    assert t_half(t[late], c[:, late])[0] == pytest.approx(2.0, rel=0.01)
    assert t[np.argmax(c[0])] == pytest.approx(2.0)


def test_single_dose_exposure_is_linear_from_1_to_4_mg(registry):
    """McGilveray 2005: nabilone pharmacokinetics linear from 1 to 4 mg. AUC(0-48 h) of 4 mg is
    four times that of 1 mg, and equals dose / (CL/F) (mass balance) within the truncated tail."""
    sc = scenario([1.0, 4.0], days=2.0)
    out = run(sc)
    t = grid_for(sc).times
    auc = {name: auc_last(t, o["nabilone_plasma_ng_per_ml"])[0] for name, o in out.items()}
    assert auc["mg4"] / auc["mg1"] == pytest.approx(4.0, rel=1e-9)
    assert auc["mg4"] == pytest.approx(4.0 / registry["nabilone_cl_f"].value * 1000.0, rel=0.01)


def test_receptor_engagement_rises_with_the_dose():
    """Occupancy and CB1 signal at every synapse class increase strictly with the dose (0.5-8 mg)."""
    doses = [0.5, 1.0, 2.0, 4.0, 8.0]
    out = run(scenario(doses, days=0.5))
    for output in ("cb1_occupancy_nabilone", "cb2_occupancy_nabilone", "nabilone_brain_free_nM",
                   "cb1_signal_glu_corticostriatal_rel", "cb1_signal_gaba_striatum_to_gpe_rel",
                   "cb1_signal_gaba_striatum_to_gpi_snr_rel", "cb1_signal_glu_stn_rel"):
        peaks = [out[f"mg{d:g}"][output][0].max() for d in doses]
        assert np.all(np.diff(peaks) > 0), (output, peaks)
    occ = [out[f"mg{d:g}"]["cb1_occupancy_nabilone"][0].max() for d in doses]
    assert 0 < occ[0] < occ[-1] < 1


def test_nabilone_reaches_release_and_tolerance():
    """A full agonist lowers transmitter release while it is on board, and internalises surface CB1
    (dR/dt = k_rec (1 - R) - k_int occ R: more occupancy, lower R)."""
    o = run(scenario([4.0], days=1.0))["mg4"]
    for name in ("release_glu_corticostriatal_rel", "release_gaba_striatum_to_gpe_rel"):
        assert o[name][0].min() < 0.99
    assert o["cb1_surface_glu_corticostriatal_rel"][0].min() < 1.0


def test_every_comedication_name_has_a_bolus():
    """The scenario schema's co-medication names are exactly those the regimen can dose."""
    names = set(CoMedication.model_fields["drug"].annotation.__args__)
    assert names == set(COMEDICATION_BOLUS)


def _without_nabilone(model: Model) -> Model:
    """The model as it was before nabilone: its block dropped, its free concentration set to 0 in
    every expression (SymPy then removes the zero terms)."""
    zero = {FREE: sp.Integer(0)}
    subs = []
    for sub in model.submodels:
        if sub.name == "nabilone":
            continue
        subs.append(Submodel(sub.name, sub.states, sub.parameters, {k: sp.sympify(v).xreplace(zero)
                                                                     for k, v in sub.rates.items()},
                             sub.covariates, {k: sp.sympify(v).xreplace(zero) for k, v in sub.algebra.items()},
                             {k: sp.sympify(v).xreplace(zero) for k, v in sub.outputs.items()}, sub.description))
    return Model(tuple(subs))


def test_without_nabilone_every_output_is_unchanged(registry):
    """A full-spectrum oil (CBD and THC at CB1, CB1 tolerance) for 3 days: every output of the model
    with nabilone equals that of the model without its terms, to rounding. (Bit for bit until the
    CB1 tolerance rate was written so that its drug-free source is exactly zero: SymPy orders that
    expression differently once nabilone's terms are substituted away; measured 2.2e-16, one ulp.)"""
    sc = Scenario.model_validate({
        "name": "no-nabilone", "duration_days": 3, "output_step_h": 1,
        "population": {"n": 6, "seed": 5},
        "arms": [{"name": "oil", "product": "full_spectrum", "cbd": [{"dose": "25 mg", "times_h": [8, 20]}]}]})
    arm = sc.arms[0]
    p, doses = patient_inputs(sc, arm, 0, 6, registry)
    grid = grid_for(sc)
    full = full_model()
    reduced = _without_nabilone(full)
    with_terms = outputs(full, p, integrate(full, p, doses, grid, 6))
    without = outputs(reduced, p, integrate(reduced, p, doses, grid, 6))
    assert set(without) < set(with_terms)
    for name, values in without.items():
        np.testing.assert_allclose(values, with_terms[name], rtol=1e-15, atol=0, err_msg=name)
    assert not np.any(with_terms["cb1_occupancy_nabilone"])
