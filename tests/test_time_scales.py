"""The endocannabinoid layer's rapid-equilibrium reduction against the full stiff model.

`ecsim.ecs.kinetics` writes brain anandamide, 2-AG and CB1 occupancy by THC as ODEs that relax, at a
finite rate λ, to the algebraic value Q that ecsim uses (F' = λ (Q - F)), and integrates them with
the drug PK and the FAAH protein by SciPy's BDF (rtol 1e-8, analytic Jacobian). With d = F - Q,
d' = -λ d - Q', so on a window [t - W, t] where λ ≥ m and |Q'| ≤ G,

    |F - Q|(t) ≤ G / m + D exp(-m W),   D = sup |Q'| / inf λ over [0, t]  (d(0) = 0),

whose first-order form is the lag |F - Q| / Q ≈ τ |d ln Q / dt|, τ = 1/λ (for the folds, λ = k_deg/Q).
Maxima are over samples every 0.02 h (both sides of each dose), raised by 10 % for what Q' can add
between samples: the drugs' fastest rate constant is about 2.3 /h, so Q' moves by ~5 % within a step.
Turnover rates and their sources: `ecsim.ecs.kinetics` and docs/time-scales.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from ecsim.chain import full_model
from ecsim.ecs import kinetics
from ecsim.ecs.kinetics import (AEA_BRAIN_TURNOVER_PER_H, THC_KOFF_RANGE_PER_H, TWOAG_TURNOVER_PER_H,
                                fast_layers)
from ecsim.engine import Grid, integrate, outputs
from ecsim.scenario import Arm, load_scenario
from ecsim.simulation import scenario_registry, patient_inputs

DAYS = 8          # the Epidiolex-like arm doubles its dose on day 7
SAMPLE_H = 0.02   # stiff-model samples; hourly outputs are every 50th
HOURLY = 50
RTOL, ATOL = 1e-8, 1e-10
SOLVER_SLACK = 10 * RTOL   # relative to Q, for the integrator's own error
ACCURACY_GOAL = 1e-3       # issue 6: max relative error against the reference


@dataclass(frozen=True)
class Run:
    """One arm: per-patient values and doses, the stiff samples of each patient, the engine's outputs."""

    values: dict[str, np.ndarray]
    samples: list[kinetics.Samples]
    engine: dict[str, np.ndarray]


def scenario():
    return load_scenario(None).model_copy(update={"duration_days": DAYS, "output_step_h": 1.0})


PF04457845 = Arm.model_validate({"name": "pf04457845_4mg", "comedication": [
    {"drug": "pf04457845", "steps": [{"dose": "4 mg", "times_h": [8]}]}]})   # Mayo 2020's dose


def simulate(arm_name: str, n: int, **rates: list[float]) -> Run:
    """Patients 0..n-1 of the default scenario on one arm, with the fast layers' rates (one per patient)."""
    sc = scenario()
    arm = PF04457845 if arm_name == PF04457845.name else next(a for a in sc.arms if a.name == arm_name)
    values, doses = patient_inputs(sc, arm, 0, n, scenario_registry(sc))
    defaults = {"aea_brain_turnover_rate": AEA_BRAIN_TURNOVER_PER_H,
                "twoag_brain_turnover_rate": TWOAG_TURNOVER_PER_H, "thc_cb1_koff": THC_KOFF_RANGE_PER_H[1]}
    values |= {k: np.broadcast_to(np.asarray(rates.get(k, v), dtype=float), (n,)).copy() for k, v in defaults.items()}
    fine = Grid(DAYS * 24.0, SAMPLE_H)
    samples = [kinetics.integrate_stiff(values, doses, fine, i, rtol=RTOL, atol=ATOL) for i in range(n)]
    hourly = Grid(DAYS * 24.0, 1.0)
    engine = outputs(full_model(), values, integrate(full_model(), values, doses, hourly, n))
    return Run(values, samples, engine)


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """The default scenario's Epidiolex-like and full-spectrum (THC) arms, two patients each (the
    second full-spectrum patient at the slow end of the assumed THC koff range), and PF-04457845."""
    slow_last = list(THC_KOFF_RANGE_PER_H[::-1])
    return {"epidiolex_10mg_kg_day_fed": simulate("epidiolex_10mg_kg_day_fed", 2),
            "full_spectrum_25mg_bid": simulate("full_spectrum_25mg_bid", 2, thc_cb1_koff=slow_last),
            PF04457845.name: simulate(PF04457845.name, 1)}


def hourly_layer(run: Run, patient: int, name: str) -> dict[str, np.ndarray]:
    """F, Q and the lag bound of one layer at the hourly outputs, for one patient."""
    s = run.samples[patient]
    ev = kinetics.evaluate_layer(name, run.values, s, patient)
    rows = s.grid_rows[::HOURLY]
    window = 10.0 / ev["rate"].min()   # exp(-m W) <= exp(-10)
    bound = kinetics.lag_bound(s.times, ev["rate"], ev["slope"], s.times[rows], window)
    return {"t": s.times[rows], "F": ev["F"][rows], "Q": ev["Q"][rows], "bound": bound}


CASES = [(arm, patient, layer.name) for arm, n in (("epidiolex_10mg_kg_day_fed", 2), ("full_spectrum_25mg_bid", 2),
                                                    (PF04457845.name, 1))
         for patient in range(n) for layer in fast_layers()]


@pytest.mark.parametrize("arm, patient, layer", CASES)
def test_stiff_model_stays_within_the_lag_bound(runs, arm, patient, layer):
    """|F - Q| <= G/m + D exp(-m W) (module docstring) at every hourly output, plus the solver's error."""
    h = hourly_layer(runs[arm], patient, layer)
    allowed = h["bound"] + SOLVER_SLACK * np.abs(h["Q"]) + 10 * ATOL
    excess = np.abs(h["F"] - h["Q"]) - allowed
    assert excess.max() <= 0, f"{layer} exceeds its lag bound by {excess.max():.3g} at {h['t'][excess.argmax()]} h"


@pytest.mark.parametrize("arm", ["epidiolex_10mg_kg_day_fed", "full_spectrum_25mg_bid"])
@pytest.mark.parametrize("layer", ["aea_fold_brain", "twoag_fold_brain"])
def test_folds_at_rapid_equilibrium_meet_the_accuracy_goal(runs, arm, layer):
    """With the slowest published turnover (AEA 34 /h, Benson 2014; 2-AG 900 /h, Kim 2013), the hourly
    folds of the CBD arms are within 1e-3 (issue 6's accuracy goal) of the full model."""
    for patient in range(2):
        h = hourly_layer(runs[arm], patient, layer)
        assert np.max(np.abs(h["F"] / h["Q"] - 1)) < ACCURACY_GOAL, (layer, patient)


def test_slow_turnover_breaks_the_reduction(runs):
    """Anandamide turning over in hours (half-life 2 h) instead of minutes: on the same Epidiolex-like
    regimen the hourly fold lags the algebraic one by more than the accuracy goal, and the lag bound
    (which holds for any rate) grows in proportion to τ = Q / k_deg."""
    slow = simulate("epidiolex_10mg_kg_day_fed", 1, aea_brain_turnover_rate=np.log(2) / 2.0)
    h_slow = hourly_layer(slow, 0, "aea_fold_brain")
    h_fast = hourly_layer(runs["epidiolex_10mg_kg_day_fed"], 0, "aea_fold_brain")
    assert np.max(np.abs(h_slow["F"] / h_slow["Q"] - 1)) > ACCURACY_GOAL
    assert np.all(np.abs(h_slow["F"] - h_slow["Q"]) <= h_slow["bound"] + SOLVER_SLACK * h_slow["Q"])
    assert np.max(np.abs(h_slow["F"] - h_slow["Q"])) > 10 * np.max(np.abs(h_fast["F"] - h_fast["Q"]))


def test_faah_inhibitor_onset_is_where_the_reduction_lags(runs):
    """PF-04457845 inactivates brain FAAH within the hour after the first dose and the fold climbs from
    1 to ~15 while its relaxation slows to τ = Q / k_deg (26 min at Q = 15): the first-order lag
    τ d ln Q/dt is then of order 1, so the hour after the first dose is the one place where the
    algebraic anandamide is off by more than the goal. Reported in docs/time-scales.md, not tuned."""
    h = hourly_layer(runs[PF04457845.name], 0, "aea_fold_brain")
    error = np.abs(h["F"] / h["Q"] - 1)
    assert error[h["t"] == 9.0][0] > 0.1   # one hour after the first dose, given at 8 h


@pytest.mark.parametrize("arm, layer, tolerance", [
    ("epidiolex_10mg_kg_day_fed", "aea_fold_brain", 10 * SOLVER_SLACK),
    ("full_spectrum_25mg_bid", "cb1_occupancy_thc", 10 * SOLVER_SLACK),
    # the FAAH state is a Magnus block: 2e-4 of its peak at 1-h steps (tests/test_engine.py), and
    # d ln Q / du = fm Q <= 14 near full inactivation
    (PF04457845.name, "aea_fold_brain", 14 * 2e-4)])
def test_engine_outputs_are_the_algebraic_values_of_the_stiff_trajectory(runs, arm, layer, tolerance):
    """What ecsim reports hourly is Q on the same drug trajectory, so the comparisons above are with
    ecsim's own outputs, up to the engine's and the stiff solver's errors."""
    run = runs[arm]
    for patient in range(len(run.samples)):
        h = hourly_layer(run, patient, layer)
        scale = h["Q"].max() if layer.startswith("cb1") else h["Q"]   # occupancy: relative to its peak
        assert np.max(np.abs(run.engine[layer][patient] - h["Q"]) / scale) < tolerance, patient


def test_fold_relaxes_as_its_closed_form():
    """Constant inhibition (no drug): Q is constant and F(t) = Q - (Q - 1) exp(-k t / Q), from F(0) = 1.
    FAAH 90 % inhibited (Q = 1 / (fm 0.1 + 1 - fm)), MAGL 50 % (Q = 1 / (fm 0.5 + 1 - fm)), each fm
    the enzyme's share of clearance."""
    sc = scenario()
    values, _ = patient_inputs(sc, Arm(name="none"), 0, 1, scenario_registry(sc))
    values |= {"faah_extra_inhibition": np.array([0.9]), "magl_extra_inhibition": np.array([0.5]),
               "aea_brain_turnover_rate": np.array([3.0]), "twoag_brain_turnover_rate": np.array([2.0]),
               "thc_cb1_koff": np.array([1.0])}
    s = kinetics.integrate_stiff(values, [], Grid(4.0, 0.25), 0, rtol=1e-10, atol=1e-12)
    fm_aea, fm_2ag = values["aea_fm_faah"][0], values["twoag_fm_magl"][0]
    for name, q, k in (("aea_fold_brain", 1 / (fm_aea * 0.1 + 1 - fm_aea), 3.0),
                       ("twoag_fold_brain", 1 / (fm_2ag * 0.5 + 1 - fm_2ag), 2.0)):
        exact = q - (q - 1) * np.exp(-k * s.times / q)
        np.testing.assert_allclose(kinetics.evaluate_layer(name, values, s, 0)["F"], exact, rtol=1e-7, err_msg=name)
