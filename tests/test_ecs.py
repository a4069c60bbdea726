"""Targets and endocannabinoid tone: bounds, drug-free baseline, monotonicity, closed forms."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ecsim.chain import full_model
from ecsim.engine import outputs

from .conftest import typical_values
from .test_scenario import run_cli

FRACTIONS = ("faah_inhibition", "magl_inhibition", "fabp_inhibition", "cb2_occupancy_cbd", "cb2_occupancy_thc",
             "cb1_occupancy_thc", "cb1_nam_occupancy_cbd", "ent1_inhibition", "ht1a_occupancy_cbd",
             "gpr55_inhibition", "trpv1_activation")


def ecs(registry, cbd_nM=0.0, thc_nM=0.0, species="human", **interventions):
    """ECS outputs for one typical patient at fixed free CBD and THC concentrations."""
    model = full_model()
    n = np.size(cbd_nM)
    p = typical_values(registry, n=n, cbd_faah_ic50_uM=registry[f"cbd_faah_ic50_{species}"].value,
                       faah_extra_inhibition=0.0, magl_extra_inhibition=0.0, d2_agonist_occupancy=0.0)
    p["cbd_fixed_free_nM"] = np.broadcast_to(np.asarray(cbd_nM, dtype=float), (n,)).copy()
    p |= {k: np.full(n, float(v)) for k, v in interventions.items()}
    states = {s: np.zeros((n, 1)) for s in model.states}
    v1 = registry["thc_v1"].value
    states["thc_central"] = np.full((n, 1), thc_nM * v1 / (1000 * registry["thc_fu_plasma"].value))
    return {k: v[:, 0] for k, v in outputs(model, p, states).items()}


def test_drug_free_state_is_baseline(registry):
    out = ecs(registry)
    for name, value in out.items():
        if name.endswith(("_fold_brain", "_fold_striatum", "_fold_plasma", "_rel")):
            assert value[0] == pytest.approx(1.0, abs=1e-12), name
        if name in FRACTIONS:
            assert value[0] == 0.0, name


@settings(max_examples=50, deadline=None)
@given(cbd=st.floats(0, 1e6), thc=st.floats(0, 1e4), faah=st.floats(0, 1), magl=st.floats(0, 1), d2=st.floats(0, 1))
def test_fractions_stay_in_unit_interval(registry, cbd, thc, faah, magl, d2):
    out = ecs(registry, cbd, thc, faah_extra_inhibition=faah, magl_extra_inhibition=magl, d2_agonist_occupancy=d2)
    for name in FRACTIONS + tuple(k for k in out if k.startswith("cb1_signal_") and not k.endswith("_rel")):
        assert 0.0 <= out[name][0] <= 1.0, name
    for name in (k for k in out if k.startswith("release_")):
        assert out[name][0] > 0, name


def test_monotone_in_cbd(registry):
    cbd = np.geomspace(1e-2, 1e6, 40)
    out = ecs(registry, cbd)
    for name in ("faah_inhibition", "fabp_inhibition", "aea_fold_brain", "cb1_nam_occupancy_cbd"):
        assert np.all(np.diff(out[name]) > 0), name
    # Up to 10 µM (above any free brain level a dose reaches) the allosteric brake dominates; at
    # millimolar CBD the FAAH/FABP-driven anandamide rise can outweigh it.
    reachable = cbd <= 1e4
    assert np.all(np.diff(out["cb1_signal_gaba_striatum_to_gpe_rel"][reachable]) < 0), "NAM lowers CB1 signalling"
    assert np.all(np.diff(out["release_gaba_striatum_to_gpe_rel"][reachable]) > 0), "less CB1 signal, more GABA release"


def test_thc_raises_cb1_signal_and_cuts_release(registry):
    out = ecs(registry, np.zeros(5), 0.0)
    low, high = (ecs(registry, 0.0, thc) for thc in (1.0, 100.0))
    assert high["cb1_signal_glu_corticostriatal_rel"][0] > low["cb1_signal_glu_corticostriatal_rel"][0] > 1.0
    assert high["release_gaba_striatum_to_gpi_snr_rel"][0] < 1.0
    assert out["release_glu_stn_rel"][0] == pytest.approx(1.0)


def test_species_switch_for_faah(registry):
    """The same 30 µM CBD inhibits rat FAAH about half and human FAAH hardly (Bisogno 2001; Elmes 2015)."""
    rat, human = (ecs(registry, 30000.0, species=s)["faah_inhibition"][0] for s in ("rat", "human"))
    assert rat == pytest.approx(30 / (30 + 27.5))
    assert human < 0.05


def test_single_agonist_operational_model(registry):
    """FAAH knockout alone: AEA fold 1/(1 - fm) and the Black-Leff signal E = tau x / (1 + x (1 + tau))."""
    out = ecs(registry, faah_extra_inhibition=1.0)
    fm = registry["aea_fm_faah"].value
    assert out["aea_fold_brain"][0] == pytest.approx(1 / (1 - fm))
    ag = registry["twoag_free_brain_baseline"].value / registry["twoag_cb1_kd"].value
    aea = registry["aea_free_brain_baseline"].value / (1 - fm) / registry["aea_cb1_kd"].value
    t2, ta = registry["cb1_tau_2ag"].value, registry["cb1_tau_aea"].value
    expected = (t2 * ag + ta * aea) / (1 + ag * (1 + t2) + aea * (1 + ta))
    assert out["cb1_signal_glu_corticostriatal"][0] == pytest.approx(expected)


def test_plasma_anandamide_has_its_own_faah_share(registry):
    """Complete FAAH inhibition: brain AEA 1/(1 - fm_brain) = 15x (Cravatt 2001), plasma AEA
    1/(1 - fm_plasma) = 10x (Mayo 2020); the two shares are separate parameters."""
    out = ecs(registry, faah_extra_inhibition=1.0)
    assert out["aea_fold_brain"][0] == pytest.approx(1 / (1 - registry["aea_fm_faah"].value))
    assert out["aea_fold_plasma"][0] == pytest.approx(1 / (1 - registry["aea_plasma_fm_faah"].value))
    assert out["aea_fold_plasma"][0] == pytest.approx(10.0)


def test_cbd_raises_plasma_anandamide_in_proportion_to_the_plasma_faah_share(registry):
    """1 - 1/fold = fm x (share of FAAH-mediated clearance removed) in each compartment, so under
    CBD the plasma and brain rises keep the exact ratio fm_plasma / fm_brain (0.9 / 0.933)."""
    out = ecs(registry, np.geomspace(1.0, 1e5, 12))
    ratio = (1 - 1 / out["aea_fold_plasma"]) / (1 - 1 / out["aea_fold_brain"])
    expected = registry["aea_plasma_fm_faah"].value / registry["aea_fm_faah"].value
    np.testing.assert_allclose(ratio, expected, rtol=1e-9)
    assert np.all(out["aea_fold_plasma"] < out["aea_fold_brain"])


def test_plasma_faah_share_moves_only_the_plasma_fold(registry):
    """With the plasma share set to the brain's, the plasma fold is bitwise the brain fold (the model
    before plasma had its own share); changing it leaves every other output bitwise unchanged."""
    from ecsim.registry import Registry
    cbd = np.geomspace(1.0, 1e5, 6)
    kwargs = dict(faah_extra_inhibition=0.3, d2_agonist_occupancy=0.5)
    params = dict(registry.parameters)
    params["aea_plasma_fm_faah"] = params["aea_plasma_fm_faah"].model_copy(
        update={"value": registry["aea_fm_faah"].value})
    old = ecs(Registry(params, registry.references), cbd, 3.0, **kwargs)
    new = ecs(registry, cbd, 3.0, **kwargs)
    np.testing.assert_array_equal(old["aea_fold_plasma"], old["aea_fold_brain"])
    assert np.all(new["aea_fold_plasma"] != old["aea_fold_plasma"])
    for name in new.keys() - {"aea_fold_plasma"}:
        np.testing.assert_array_equal(new[name], old[name], err_msg=name)
    # no state reads it, so trajectories (PK, FAAH protein, CB1 tolerance) cannot move either
    assert not any("aea_plasma_fm_faah" in map(str, rate.free_symbols) for rate in full_model().rates.values())


def test_faah_knockout_case_reads_the_brain_share_only(registry):
    """CRAV01 (mouse brain) gives 1/(1 - aea_fm_faah_mouse) whatever the human plasma share."""
    from ecsim.registry import Registry
    from ecsim.validation import evaluate_case, load_cases
    case = next(c for c in load_cases() if c.id == "CRAV01_FAAH_KO")
    params = dict(registry.parameters)
    params["aea_plasma_fm_faah"] = params["aea_plasma_fm_faah"].model_copy(update={"value": 0.5})
    for reg in (registry, Registry(params, registry.references)):
        result = evaluate_case(case, reg)[0]
        assert result.simulated == pytest.approx(1 / (1 - registry["aea_fm_faah_mouse"].value), rel=1e-6)  # 6 digits reported


def test_targets_cli_json(tmp_path):
    res = run_cli("targets", "--patients", "6", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    arm = doc["arms"][0]
    assert {"faah_inhibition", "aea_fold_brain", "release_gaba_striatum_to_gpe_rel"} <= set(arm["targets"])
    assert arm["targets"]["faah_inhibition"]["p95"] < 0.01


def test_cb1_tolerance_develops_and_recovers(make_scenario):
    """Chronic THC lowers surface CB1 (D'Souza 2016: about 15 % in dependent users); it recovers
    once THC has gone."""
    from ecsim.simulation import simulate_chunk
    sc = make_scenario("  - {name: thc, thc: [{dose: 20 mg, times_h: [8, 14, 20], to_day: 10}]}", days=16, step=1.0, n=1)
    sc = sc.model_copy(update={"population": sc.population.model_copy(update={"typical": True})})
    surface = simulate_chunk(sc, sc.arms[0], 0, 1).outputs["cb1_surface_glu_corticostriatal_rel"][0]
    assert 0.75 < surface[24 * 9] < 0.95
    assert surface[-1] > 0.99


def test_cb1_recovery_rate_closed_form(chain, registry):
    """Without drug, a displaced surface fraction relaxes at k_rec + k_int occ0 (the linear equation's
    exact solution): y(t) = y0 exp(-(k_rec + k_int occ0) t)."""
    from ecsim.engine import Bolus, Grid, integrate
    p = typical_values(registry)
    state = "cb1_surface_shift_glu_stn"
    traj = integrate(chain, p, [Bolus(0.0, state, np.array([-0.1]))], Grid(48.0, 1.0), 1)[state][0]
    k_rec, k_int = registry["cb1_recovery_rate"].value, registry["cb1_internalisation_rate"].value
    x = (registry["twoag_free_brain_baseline"].value / registry["twoag_cb1_kd"].value
         + registry["aea_free_brain_baseline"].value / registry["aea_cb1_kd"].value)
    rate = k_rec + k_int * x / (1 + x)
    np.testing.assert_allclose(traj, -0.1 * np.exp(-rate * np.arange(49.0)), rtol=1e-9)


def test_no_drug_no_tolerance(make_scenario):
    from ecsim.simulation import simulate_chunk
    sc = make_scenario("  - {name: none}", days=3, step=1.0, n=2)
    out = simulate_chunk(sc, sc.arms[0], 0, 2).outputs
    np.testing.assert_allclose(out["cb1_surface_glu_stn_rel"], 1.0, atol=1e-12)


def test_reversible_inhibition_acts_on_the_enzyme_that_is_left(registry):
    """Half the FAAH protein covalently inactivated, CBD at the rat IC50 on the rest: 1 - 0.5 x 0.5."""
    model = full_model()
    p = typical_values(registry, cbd_faah_ic50_uM=registry["cbd_faah_ic50_rat"].value,
                       cbd_fixed_free_nM=1000 * registry["cbd_faah_ic50_rat"].value)
    states = {s: np.zeros((1, 1)) for s in model.states}
    states["faah_inactivated_fraction"] = np.full((1, 1), 0.5)
    out = outputs(model, p, states)
    assert out["faah_inhibition"][0, 0] == pytest.approx(0.75)
    assert out["faah_active_fraction"][0, 0] == pytest.approx(0.5)


def test_no_pf04457845_leaves_faah_state_exactly_at_baseline(make_scenario, registry):
    """Without PF-04457845 the FAAH protein state stays exactly at baseline, so every output is the
    rapid-equilibrium one: FAAH inhibition is C / (C + IC50) alone, C the free CBD plus 7-OH-CBD
    times its relative potency."""
    from ecsim.simulation import simulate_chunk
    sc = make_scenario("  - {name: cbd, cbd: [{dose: 300 mg, times_h: [8, 20]}]}", days=3, step=1.0, n=3)
    chunk = simulate_chunk(sc, sc.arms[0], 0, 3)
    assert np.all(chunk.states["faah_inactivated_fraction"] == 0.0)
    assert np.all(chunk.outputs["faah_active_fraction"] == 1.0)
    potency = registry["cbd7oh_relative_potency"].value
    c_uM = (chunk.outputs["cbd_brain_free_nM"] + potency * chunk.outputs["cbd7oh_plasma_free_nM"]) / 1000
    ic50 = registry["cbd_faah_ic50_human"].value
    # 1 - (1 - x) in the model loses the last digits of a tiny x: an absolute tolerance on a fraction
    np.testing.assert_allclose(chunk.outputs["faah_inhibition"], c_uM / (c_uM + ic50), rtol=0, atol=1e-15)


def test_faah_protein_recovers_at_its_turnover_rate(chain, registry):
    """Without drug, inactivated FAAH is replaced at k_deg = 0.0051 /h (Benson 2014): half-life 135.9 h."""
    from ecsim.engine import Bolus, Grid, integrate
    p = typical_values(registry)
    traj = integrate(chain, p, [Bolus(0.0, "faah_inactivated_fraction", np.array([0.8]))], Grid(272.0, 1.0), 1)
    u = traj["faah_inactivated_fraction"][0]
    assert u[136] == pytest.approx(0.4, rel=2e-3)
    assert u[272] == pytest.approx(0.2, rel=4e-3)


def test_pf04457845_inhibits_faah_and_the_enzyme_returns_slowly(make_scenario):
    """Li 2012: > 97 % FAAH inhibition with 0.5 mg once daily; after the last dose activity comes back
    over days (new synthesis), not hours as a reversible inhibitor's would."""
    from ecsim.simulation import simulate_chunk
    arm = ("  - {name: pf, comedication: [{drug: pf04457845, steps: [{dose: 0.5 mg, times_h: [8], "
           "to_day: 14}]}]}")
    sc = make_scenario(arm, days=21, step=1.0, n=1)
    sc = sc.model_copy(update={"population": sc.population.model_copy(update={"typical": True})})
    out = simulate_chunk(sc, sc.arms[0], 0, 1).outputs
    inhibition = out["faah_inhibition"][0]
    assert inhibition[24 * 14] > 0.97
    assert np.all((inhibition >= 0) & (inhibition <= 1))
    assert inhibition[24 * 15] > 0.9, "still inhibited a day after the last dose"
    assert inhibition[24 * 21] < inhibition[24 * 15], "recovering"
    # no faster than new synthesis allows: the drug left can only slow recovery further
    assert inhibition[24 * 21] >= inhibition[24 * 15] * np.exp(-0.0051 * 144)
    # plasma fatty-acid amides 3.5-10-fold (Li 2012); plasma anandamide at most 1/(1 - 0.9) = 10-fold
    assert 3.5 < out["aea_fold_plasma"][0, 24 * 14] <= 10.0
    plasma = out["pf04457845_plasma_ng_per_ml"][0]
    assert plasma[24 * 21] < 0.02 * plasma[24 * 14] and inhibition[24 * 21] > 0.5, "enzyme still lost, drug gone"


@pytest.mark.parametrize("case_id, parameter, value, expected", [
    ("CRAV01_FAAH_KO", "aea_fm_faah_mouse", 0.9, 10.0),        # 1 / (1 - fm)
    ("LONG09_MAGL", "twoag_fm_magl_mouse", 0.75, 4.0),          # 1 / (1 - fm)
    ("GIUF99_D2", "aea_d2_release_gain_rat", 3.0, 4.0),         # 1 + gain
])
def test_rodent_cases_run_with_their_species_set(registry, case_id, parameter, value, expected):
    """The mouse and rat cases read the rodent entries: changing one moves the case, the default does not."""
    from ecsim.registry import Registry
    from ecsim.validation import evaluate_case, load_cases
    case = next(c for c in load_cases() if c.id == case_id)
    changed = dict(registry.parameters)
    changed[parameter] = changed[parameter].model_copy(update={"value": value})
    first = evaluate_case(case, Registry(changed, registry.references))[0]
    assert first.simulated == pytest.approx(expected)
    default_name = parameter.rsplit("_", 1)[0]
    changed = dict(registry.parameters)
    changed[default_name] = changed[default_name].model_copy(update={"value": value})
    assert evaluate_case(case, Registry(changed, registry.references))[0].simulated == pytest.approx(first.observed, rel=0.25)


def test_rodent_must_show_cases_pass(registry):
    """Cravatt 2001, Long 2009, Giuffrida 1999 and Bisogno 2001 with their species' parameter sets."""
    from ecsim.validation import evaluate_case, load_cases
    for case in (c for c in load_cases() if c.id in ("CRAV01_FAAH_KO", "LONG09_MAGL", "GIUF99_D2", "FAAH_SPECIES")):
        assert case.scenario.species in ("rat", "mouse")
        for result in evaluate_case(case, registry):
            assert result.passed, result


def test_species_set_leaves_human_untouched(registry):
    from ecsim.ecs.species import species_registry
    assert species_registry(registry, "human") is registry
    mouse = species_registry(registry, "mouse")
    assert mouse["aea_fm_faah"].source == "cravatt2001" and mouse["aea_fm_faah"].species == "mouse brain"
    assert all(mouse[n].value == registry[n].value for n in ("cbd_cl", "aea_d2_release_gain"))
