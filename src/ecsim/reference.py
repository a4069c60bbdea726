"""Reference solver: the full model's right-hand side (and its symbolic Jacobian) through SciPy's
LSODA, patient by patient.

Slow and simple on purpose: it integrates the whole declared model (no block splitting, no
matrix exponentials) between doses at tight tolerances, so tests can check the engine against it.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from .engine import Bolus, Grid
from .model.compile import full_jacobian, full_rhs
from .model.declaration import Model


def integrate_reference(model: Model, values: dict[str, np.ndarray], doses: list[Bolus], grid: Grid,
                        patient: int, rtol: float = 1e-10, atol: float = 1e-14) -> dict[str, np.ndarray]:
    """Trajectories of every state for one patient on the grid (post-dose values at dose times)."""
    rhs, jacobian = full_rhs(model), full_jacobian(model)
    states = model.states
    n = len(states)
    fixed = {k: np.asarray(v[patient], dtype=float).reshape(1) for k, v in values.items()}

    def env(y):
        return fixed | {s: y[i:i + 1] for i, s in enumerate(states)}

    def f(t, y):
        return rhs(env(y), 1)[0]

    def jac(t, y):
        return jacobian(env(y), 1)[0].reshape(n, n)

    times = grid.times
    kicks = _kicks(doses, states, patient, grid)
    y = kicks.get(0, np.zeros(len(states)))
    out = np.zeros((len(times), len(states)))
    out[0] = y
    stops = sorted(set(kicks) | {len(times) - 1})
    k0 = 0
    for k1 in (k for k in stops if k > 0):
        sol = solve_ivp(f, (times[k0], times[k1]), y, method="LSODA", t_eval=times[k0:k1 + 1], rtol=rtol, atol=atol,
                        jac=jac)
        out[k0:k1 + 1] = sol.y.T
        y = sol.y[:, -1] + kicks.get(k1, 0.0)
        out[k1] = y
        k0 = k1
    return {s: out[:, i] for i, s in enumerate(states)}


def _kicks(doses: list[Bolus], states: list[str], patient: int, grid: Grid) -> dict[int, np.ndarray]:
    kicks: dict[int, np.ndarray] = {}
    for d in doses:
        k = grid.index(d.time_h)
        kicks.setdefault(k, np.zeros(len(states)))[states.index(d.state)] += np.asarray(d.amount)[patient]
    return kicks
