"""The JAX engine against a closed form, SciPy's expm, and the NumPy engine (the same algorithm, so
they differ by rounding only); a patient's numbers do not depend on the chunk. Skipped without jax."""

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="jax is optional (pip install jax); the NumPy engine needs none")

from ecsim import engine, engine_jax  # noqa: E402
from ecsim.bench import COMPARED, Workload, _output_function, compared_outputs  # noqa: E402
from ecsim.engine import Bolus, Grid  # noqa: E402

from .test_engine import one_compartment_oral  # noqa: E402


def max_relative(ours: dict, theirs: dict) -> float:
    """max over states, patients and times of |ours - theirs| / max over time of |theirs|."""
    worst = 0.0
    for s, ref in theirs.items():
        scale = np.abs(ref).max(axis=1, keepdims=True)
        worst = max(worst, float((np.abs(ours[s] - ref) / np.where(scale > 0, scale, 1.0)).max()))
    return worst


@pytest.fixture(scope="module")
def bench_work():
    return Workload.build(6, days=14)


@pytest.fixture(scope="module")
def bench_inputs(bench_work):
    return bench_work.patients(0, 6)


@pytest.fixture(scope="module")
def short_work():
    """The benchmark's regimen over 2 days."""
    return Workload.build(7, days=2)


def test_matches_bateman_function():
    """Oral one-compartment model: D ka/(ka-k) (e^-kt - e^-ka t) (Bateman 1910), as tests/test_engine.py."""
    ka, cl, v, dose = 1.3, 5.0, 40.0, 100.0
    values = {"ka": np.array([ka]), "cl": np.array([cl]), "v": np.array([v])}
    grid = Grid(48.0, 0.25)
    traj = engine_jax.integrate(one_compartment_oral(), values, [Bolus(0.0, "gut", np.array([dose]))], grid, 1)
    k, t = cl / v, grid.times
    exact = dose * ka / (ka - k) * (np.exp(-k * t) - np.exp(-ka * t))
    assert isinstance(traj["central"], np.ndarray) and traj["central"].dtype == np.float64
    np.testing.assert_allclose(traj["central"][0], exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-3, 0.3, 3.0, 40.0])
def test_expm_matches_scipy(scale):
    """Patients on the last axis; up to 40 x N(0, 1) entries, so several squarings."""
    from scipy.linalg import expm as scipy_expm
    rng = np.random.default_rng(0)
    M = rng.standard_normal((50, 6, 6)) * scale
    ref = scipy_expm(M)
    with engine_jax.x64():
        ours = np.asarray(jax.jit(engine_jax.expm)(M.transpose(1, 2, 0))).transpose(2, 0, 1)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_bench_regimen_matches_numpy_engine(bench_work, bench_inputs):
    """The benchmark's model and regimen (14 days, 84 boluses; constant CBD and THC blocks, the
    clobazam Magnus block, the diagonal CB1 tolerance and FAAH blocks, the undosed PF-04457845
    block): every state within 1e-10 of its peak."""
    values, doses = bench_inputs
    ours = engine_jax.integrate(bench_work.model, values, doses, bench_work.grid, 6)
    theirs = engine.integrate(bench_work.model, values, doses, bench_work.grid, 6)
    assert set(ours) == set(theirs)
    assert max_relative(ours, theirs) <= 1e-10
    assert np.abs(theirs["clb_central"]).max() > 0 and np.abs(theirs["cb1_surface_shift_glu_stn"]).max() > 0
    assert np.all(ours["pf04457845_central"] == 0.0)


def test_every_block_kind_matches_numpy_engine(chain, registry):
    """The full chain with a dose pattern that moves every block, THC left undosed (a zero block):
    doses at t = 0, two boluses into one state at one time, PF-04457845 driving FAAH turnover,
    clobazam following CBD; two patients of different weights, a 0.5 h grid over 3 days."""
    from .conftest import typical_values
    values = typical_values(registry, n=2, body_weight_kg=60.0)
    values["body_weight_kg"] = np.array([60.0, 95.0])
    grid = Grid(72.0, 0.5)
    doses = [Bolus(0.0, "pf04457845_gut", np.array([4.0, 8.0]))]
    for t in np.arange(0, 72, 12.0):
        doses += [Bolus(t, "cbd_gut", np.array([300.0, 900.0])), Bolus(t, "clb_gut", np.array([30.0, 10.0])),
                  Bolus(t, "clb_gut", np.array([5.0, 5.0]))]
    ours = engine_jax.integrate(chain, values, doses, grid, 2)
    theirs = engine.integrate(chain, values, doses, grid, 2)
    assert max_relative(ours, theirs) <= 1e-10
    moved = {"pf04457845_central", "faah_inactivated_fraction", "clb_central", "cbd_central",
             "cb1_surface_shift_glu_corticostriatal"}
    assert all(np.abs(theirs[s]).max() > 0 for s in moved)
    assert np.all(ours["thc_central"] == 0.0)


def test_a_patients_numbers_do_not_depend_on_the_chunk(short_work):
    """Each matrix is scaled by its own norm and every sum runs in a fixed order, so a patient's
    trajectories are bitwise the same alone, in chunks of 4 (the last one padded) or among all 7."""
    values, doses = short_work.patients(0, 7)
    grid = short_work.grid
    whole = engine_jax.integrate(short_work.model, values, doses, grid, 7)
    fours = engine_jax.integrate(short_work.model, values, doses, grid, 7, chunk=4)
    one = {k: (v[4:5] if np.ndim(v) else v) for k, v in values.items()}
    alone = engine_jax.integrate(short_work.model, one, [Bolus(d.time_h, d.state, d.amount[4:5]) for d in doses],
                                 grid, 1)
    for s in whole:
        np.testing.assert_array_equal(fours[s], whole[s], err_msg=s)
        np.testing.assert_array_equal(alone[s][0], whole[s][4], err_msg=s)


def test_observed_outputs_match_numpy_outputs(short_work):
    """The benchmark's compared outputs evaluated inside the kernel, over two chunks (the second
    padded): the first patients' outputs as NumPy's engine and `compared_outputs` give them, and the
    population sum over the real patients only."""
    model, grid = short_work.model, short_work.grid
    run = engine_jax.observe(model, _output_function(model, COMPARED), short_work.patients, grid, 5, chunk=3, keep=2)
    values, doses = short_work.patients(0, 5)
    theirs = compared_outputs(model, values, engine.integrate(model, values, doses, grid, 5))
    scale = np.abs(theirs).max(axis=1, keepdims=True)
    assert run.first.shape == (2, grid.size, len(COMPARED))
    assert np.max(np.abs(run.first - theirs[:2]) / scale[:2]) <= 1e-10
    total = np.asarray(run.total)
    np.testing.assert_allclose(total, theirs.sum(axis=0), rtol=1e-10, atol=1e-10 * np.abs(theirs).max())


def test_chunks_are_equal_and_cover_every_patient():
    assert engine_jax.chunks(10, 4) == [(0, 4, 4), (4, 8, 4), (8, 10, 4)]
    assert engine_jax.chunks(1_000_000, 100_000)[-1] == (900_000, 1_000_000, 100_000)
    assert engine_jax.chunks(7, 100) == [(0, 7, 7)]
    with pytest.raises(Exception, match="chunk"):
        engine_jax.chunks(10, 0)


def test_x64_leaves_the_global_setting_alone():
    before = jax.config.jax_enable_x64
    with engine_jax.x64():
        assert jax.numpy.zeros(1).dtype == np.float64
    assert jax.config.jax_enable_x64 == before
