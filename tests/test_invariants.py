"""Physical invariants of the PK model: mass balance, non-negativity, dose-exposure, steady state."""

import numpy as np
from hypothesis import given, settings, strategies as st

from ecsim.engine import Grid, integrate
from ecsim.products import Food, Formulation, Route, cbd_boluses
from ecsim.scenario import parse_scenario
from ecsim.simulation import simulate_chunk

from .conftest import scenario_text, typical_values

DRUG_STATES = {"cbd": ("cbd_",), "thc": ("thc_", "thc11oh_"), "clobazam": ("clb_", "nclb_")}


def total(traj, prefixes):
    return sum(v for k, v in traj.items() if k.startswith(prefixes))


@settings(max_examples=25, deadline=None)
@given(dose=st.floats(1, 6000), weight=st.floats(15, 150), route=st.sampled_from(list(Route)),
       food=st.sampled_from(list(Food)), activity=st.sampled_from([0.0, 0.5, 1.0, 1.25]))
def test_cbd_mass_balance_and_non_negative(model, registry, dose, weight, route, food, activity):
    """Every µmol that enters stays in a compartment or in the eliminated sink, to 1e-9 relative."""
    p = typical_values(registry, body_weight_kg=weight, cyp2c19_activity=activity, cbd_f_oral_eta=1.0)
    grid = Grid(240.0, 2.0)
    boluses = cbd_boluses(p, 0.0, np.array([dose]), route, food, Formulation.oil)
    given = sum(b.amount[0] for b in boluses)
    traj = integrate(model, p, boluses, grid, 1)
    amount = total(traj, ("cbd_", "cbd7"))[0]
    np.testing.assert_allclose(amount, given, rtol=1e-9)
    assert min(v.min() for v in traj.values()) > -1e-12 * given


def test_thc_and_clobazam_mass_balance(model, registry):
    from ecsim.products import clobazam_bolus, thc_boluses
    p = typical_values(registry, cbd_f_oral_eta=1.0)
    grid = Grid(480.0, 1.0)
    doses = [*thc_boluses(p, 0.0, np.array([5.0]), Route.oral, Food.fasted), clobazam_bolus(p, 0.0, np.array([10.0])),
             *cbd_boluses(p, 0.0, np.array([1500.0]), Route.oral, Food.high_fat, Formulation.oil)]
    traj = integrate(model, p, doses, grid, 1)
    np.testing.assert_allclose(total(traj, ("thc_", "thc11oh_"))[0], doses[0].amount[0], rtol=1e-9)
    np.testing.assert_allclose(total(traj, ("clb_", "nclb_"))[0], doses[1].amount[0], rtol=1e-6)


def _run(arms, days=3.0, n=30):
    sc = parse_scenario(scenario_text(arms, days=days, step=0.5, n=n))
    return {a.name: simulate_chunk(sc, a, 0, n) for a in sc.arms}


def test_monotone_dose_exposure():
    """Bioavailability falls with dose, yet exposure rises: AUC is increasing in dose, per patient."""
    doses = [5, 25, 100, 300, 1000, 3000, 6000]
    arms = "\n".join(f"  - {{name: d{d}, product: pharmaceutical, cbd: [{{dose: {d} mg, times_h: [0], to_day: 1}}]}}"
                     for d in doses)
    chunks = _run(arms)
    auc = np.array([np.trapezoid(chunks[f"d{d}"].outputs["cbd_plasma_ng_per_ml"], dx=0.5, axis=1) for d in doses])
    assert np.all(np.diff(auc, axis=0) > 0)
    assert np.all(np.diff(auc / np.array(doses)[:, None], axis=0) < 0), "less than dose-proportional"


def test_no_drug_no_levels():
    chunks = _run("  - {name: none, product: pharmaceutical}")
    for name, traj in chunks["none"].outputs.items():
        if name.endswith(("ng_per_ml", "nM")):
            assert np.all(traj == 0), name


def test_steady_state_equals_single_dose_auc():
    """Linear kinetics: AUC over a dosing interval at steady state equals single-dose AUC to infinity."""
    from ecsim.pk import pk_model
    from ecsim.registry import default_registry
    reg = default_registry()
    p = typical_values(reg, cbd_f_oral_eta=1.0)
    dose, = cbd_boluses(p, 0.0, np.array([300.0]), Route.oral, Food.fasted, Formulation.oil)
    single = integrate(pk_model(), p, [dose], Grid(24 * 120, 0.5), 1)
    auc_inf = np.trapezoid(single["cbd_central"][0], dx=0.5)
    repeated = [type(dose)(t, dose.state, dose.amount) for t in np.arange(0, 24 * 60, 12.0)]
    multi = integrate(pk_model(), p, repeated, Grid(24 * 60, 0.5), 1)
    last = multi["cbd_central"][0][-25:]
    auc_tau = np.trapezoid(last, dx=0.5)
    np.testing.assert_allclose(auc_tau, auc_inf, rtol=0.01)
    day_before = multi["cbd_central"][0][-49:-24]
    np.testing.assert_allclose(last.min(), day_before.min(), rtol=0.01)
