"""SBML export: the same model in libroadrunner gives the engine's trajectories (rel. 1e-4)."""

import numpy as np
import pytest

from ecsim.engine import Bolus, Grid, integrate
from ecsim.model.sbml import to_sbml

from .conftest import typical_values

roadrunner = pytest.importorskip("roadrunner")


def test_roadrunner_reproduces_engine(chain, registry):
    model = chain
    rr = roadrunner.RoadRunner(to_sbml(model, registry))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-14
    p = typical_values(registry)
    grid = Grid(72.0, 0.5)
    doses = {"cbd_gut": 3000.0, "thc_gut": 10.0, "clb_gut": 30.0}
    ours = integrate(model, p, [Bolus(0.0, s, np.array([a])) for s, a in doses.items()], grid, 1)
    for state, amount in doses.items():
        rr[state] = amount
    compared = ("cbd_central", "cbd7oh_central", "thc_central", "nclb_central", "cb1_surface_shift_glu_corticostriatal")
    res = rr.simulate(0, 72, grid.size, ["time", *compared])
    for i, state in enumerate(compared, start=1):
        np.testing.assert_allclose(res[:, i], ours[state][0], rtol=0, atol=1e-4 * np.abs(ours[state][0]).max(), err_msg=state)


def test_roadrunner_reproduces_faah_turnover(chain, registry):
    """PF-04457845 PK and the FAAH protein state (Magnus steps in the engine) against CVODE."""
    rr = roadrunner.RoadRunner(to_sbml(chain, registry))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-14
    p = typical_values(registry)
    grid = Grid(96.0, 1.0)
    ours = integrate(chain, p, [Bolus(0.0, "pf04457845_gut", np.array([5.0]))], grid, 1)
    rr["pf04457845_gut"] = 5.0
    compared = ("pf04457845_central", "faah_inactivated_fraction")
    res = rr.simulate(0, 96, grid.size, ["time", *compared])
    for i, state in enumerate(compared, start=1):
        np.testing.assert_allclose(res[:, i], ours[state][0], rtol=0, atol=1e-4 * np.abs(ours[state][0]).max(), err_msg=state)
    assert ours["faah_inactivated_fraction"][0, -1] > 0.5
