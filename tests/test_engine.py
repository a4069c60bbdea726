"""The engine against closed-form solutions and against the full-model reference solver."""

import numpy as np
import pytest
import sympy as sp

from ecsim.engine import Bolus, Grid, integrate
from ecsim.model.declaration import Model, Submodel, symbols
from ecsim.reference import integrate_reference

from .conftest import typical_values


def one_compartment_oral() -> Model:
    gut, central, ka, cl, v = symbols("gut central ka cl v")
    sub = Submodel("oral1", {"gut": "umol", "central": "umol"}, {"ka": "1/h", "cl": "L/h", "v": "L"},
                   {"gut": -ka * gut, "central": ka * gut - cl / v * central})
    return Model((sub,))


def test_matches_bateman_function():
    """Oral one-compartment model: exact solution D ka/(ka-k) (e^-kt - e^-ka t) (Bateman 1910)."""
    model = one_compartment_oral()
    ka, cl, v, dose = 1.3, 5.0, 40.0, 100.0
    values = {"ka": np.array([ka]), "cl": np.array([cl]), "v": np.array([v])}
    grid = Grid(48.0, 0.25)
    traj = integrate(model, values, [Bolus(0.0, "gut", np.array([dose]))], grid, 1)
    k, t = cl / v, grid.times
    exact = dose * ka / (ka - k) * (np.exp(-k * t) - np.exp(-ka * t))
    np.testing.assert_allclose(traj["central"][0], exact, rtol=1e-10, atol=1e-12)


def test_superposition_of_repeated_doses_is_exact():
    model = one_compartment_oral()
    values = {"ka": np.array([0.7]), "cl": np.array([3.0]), "v": np.array([50.0])}
    grid = Grid(72.0, 0.5)
    doses = [Bolus(t, "gut", np.array([10.0])) for t in (0.0, 12.0, 24.0, 36.0)]
    traj = integrate(model, values, doses, grid, 1)
    k, ka, t = 3.0 / 50.0, 0.7, grid.times
    single = lambda s: np.where(s >= 0, 10 * ka / (ka - k) * (np.exp(-k * s) - np.exp(-ka * s)), 0.0)
    exact = sum(single(t - d) for d in (0.0, 12.0, 24.0, 36.0))
    np.testing.assert_allclose(traj["central"][0], exact, rtol=1e-10, atol=1e-12)


def test_rejects_nonlinear_submodel():
    x, k = symbols("x k")
    sub = Submodel("bad", {"x": "umol"}, {"k": "1/h"}, {"x": -k * x * x})
    with pytest.raises(Exception, match="not linear"):
        integrate(Model((sub,)), {"k": np.ones(1)}, [], Grid(1.0, 0.5), 1)


@pytest.mark.parametrize("step, tolerance", [(0.25, 1e-6), (1.0, 2e-4)])
def test_engine_matches_full_model_reference(chain, registry, step, tolerance):
    """Whole chain (CBD, THC, the CBD-clobazam coupling, CB1 tolerance): engine vs LSODA at rtol 1e-10.

    Uncoupled blocks are exact; the coupled blocks (clobazam, CB1 tolerance) use fourth-order Magnus steps.
    Stated tolerances, relative to each state's peak: 1e-6 at 0.25 h and 2e-4 at 1 h (measured on
    this model, worst state CB1 tolerance: 4.4e-7 and 1.1e-4; clobazam states lower).
    """
    values = typical_values(registry, n=2, body_weight_kg=60.0)
    values["body_weight_kg"] = np.array([60.0, 95.0])
    grid = Grid(96.0, step)
    doses = []
    for t in np.arange(0, 96, 12.0):
        doses += [Bolus(t, "cbd_gut", np.array([300.0, 900.0])), Bolus(t, "thc_gut", np.array([2.0, 5.0])),
                  Bolus(t, "clb_gut", np.array([30.0, 30.0]))]
    fast = integrate(chain, values, doses, grid, 2)
    for patient in (0, 1):
        ref = integrate_reference(chain, values, doses, grid, patient)
        for state, traj in ref.items():
            scale = max(np.abs(traj).max(), 1e-6)
            np.testing.assert_allclose(fast[state][patient], traj, atol=tolerance * scale, rtol=0, err_msg=state)


@pytest.mark.parametrize("scale", [1e-3, 0.3, 3.0])
def test_batched_expm_matches_scipy(scale):
    from scipy.linalg import expm as scipy_expm
    from ecsim.engine import expm
    rng = np.random.default_rng(0)
    M = rng.standard_normal((50, 6, 6)) * scale
    ref = scipy_expm(M)
    np.testing.assert_allclose(expm(M), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_batched_expm_on_stiff_compartmental_matrices():
    """Transit chains with equal rates (defective matrices) and fast exchange, as the model builds
    them, over a 1 h step with rates up to 60/h."""
    from scipy.linalg import expm as scipy_expm
    from ecsim.engine import expm
    rng = np.random.default_rng(1)
    M = np.zeros((20, 8, 8))
    k = rng.uniform(0.5, 60.0, size=(20, 7))
    for i in range(7):
        M[:, i, i] -= k[:, i]
        M[:, i + 1, i] += k[:, i]
    ref = scipy_expm(M)
    np.testing.assert_allclose(expm(M), ref, rtol=0, atol=1e-12)
