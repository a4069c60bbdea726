"""The endocannabinoid layer with its fast processes written as ODEs: the full stiff model that the
rapid-equilibrium reduction of `ecsim.ecs.model` (DESIGN §5, step 2) is checked against.

In `ecsim.ecs.model` anandamide, 2-AG and CB1 occupancy by THC are algebraic in the drug states.
Here each relaxes to that value at a finite rate:

- brain anandamide and 2-AG, as folds F = L / L0 of their drug-free level: dL/dt = k_syn - k_deg c L,
  with c the clearance relative to baseline that the algebraic model uses (c = 1 / Q, Q its fold),
  and k_syn = k_deg L0, so dF/dt = k_deg (1 - c F) = (k_deg / Q)(Q - F): the steady state is exactly Q;
- CB1 occupancy by THC and 11-OH-THC (one K, as the algebraic output): dθ/dt = kon C (1 - θ) - koff θ
  with kon = koff / K_i, so dθ/dt = koff (1 + C/K_i)(Q - θ), Q = C / (C + K_i).

Each is F' = λ(t) (Q(t) - F): with d = F - Q, d' = -λ d - Q'. On a window [t - W, t] where λ ≥ m and
|Q'| ≤ G, |d(t)| ≤ G / m + |d(t - W)| exp(-m W) (comparison with the constant-coefficient equation),
and from d(0) = 0, |d| ≤ sup |Q'| / inf λ everywhere. To first order d ≈ -Q'/λ, i.e. the relative
lag |F - Q| / Q ≈ τ |d ln Q / dt| with τ = 1/λ (`lag_bound`).

Turnover rates (only this check uses them; they are not model parameters of ecsim):

- brain anandamide, 34.1 /h (half-life 1.2 min): Benson et al. 2014, CPT Pharmacometrics Syst
  Pharmacol 3:e91, doi:10.1038/psp.2013.72, model BIOMD0000000512 (human, systems model), read from
  the model's equations and constants (Heta translation): FAAH-mediated kcat FAAH_b / Km =
  18000 /h x 15.366 nM / 8200 nM = 33.73 /h plus other routes 0.197 x 1.74 /h = 0.34 /h (brain to
  exchange-compartment transport is < 0.001 /h per brain volume). The slowest rate found: the
  striatal-neuron model of Cui et al. 2016 (eLife 5:e13185, doi:10.7554/eLife.13185) hydrolyses AEA
  far faster, at Vmax/Km = 4 /s (not re-read here: the project's evidence survey, ecs.md row 6);
- 2-AG, 900 /h (0.25 /s, half-life 2.8 s): first-order 2-AG degradation in the spiny-neuron spine model
  of Kim et al. 2013 (PLoS Comput Biol, doi:10.1371/journal.pcbi.1002953; neurord/D1pathways);
  Cui et al. 2016 use 0.5 /s. Both are synaptic model rates, not measured tissue turnover; not re-read
  here (ecs.md rows 3-4). The slower one is used;
- THC at CB1, koff: no measured value was found. `THC_KOFF_RANGE_PER_H` (residence time 1 min to
  1 h) is an assumption, not a sourced range; the test reports both ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from ..engine import Bolus, Grid
from ..model.compile import VectorFunction
from ..model.declaration import Model, Submodel, symbols
from ..pk.model import cbd_submodel, pf04457845_submodel, thc_submodel
from .model import S, ecs_submodel, faah_turnover_submodel

AEA_BRAIN_TURNOVER_PER_H = 34.1      # Benson 2014 (BIOMD0000000512), human brain, model value
TWOAG_TURNOVER_PER_H = 900.0         # Kim 2013 spine model, 0.25 /s (not re-read)
THC_KOFF_RANGE_PER_H = (1.0, 60.0)   # assumption: residence time 1 h to 1 min (no measured value found)

RATES = {"aea_brain_turnover_rate": "1/h", "twoag_brain_turnover_rate": "1/h", "thc_cb1_koff": "1/h"}


@dataclass(frozen=True)
class FastLayer:
    """One fast process: its state, how the state maps to the quantity F, the algebraic (quasi-steady)
    value Q it relaxes to, and the relaxation rate λ in F' = λ (Q - F)."""

    name: str
    state: str
    quantity: sp.Expr        # F in terms of the state
    steady: sp.Expr          # Q, as the algebraic model computes it
    rate: sp.Expr            # λ, 1/h
    relative: bool           # report |F - Q| / Q (folds) rather than |F - Q| (occupancy, 0 without drug)


def _thc_nM() -> sp.Expr:
    return S["thc_free_nM"] + S["thc11oh_free_nM"]


def fast_layers() -> tuple[FastLayer, ...]:
    """Brain anandamide fold, 2-AG fold and CB1 occupancy by THC, each as a relaxation.

    The fold states are shifts y = F - 1 and the occupancy θ itself, so every state starts at 0,
    the drug-free steady state, as the engine and the reference solver start them."""
    y_aea, y_2ag, theta = symbols("aea_fold_brain_shift twoag_fold_brain_shift cb1_occupancy_thc_bound")
    k_aea, k_2ag, koff = symbols(" ".join(RATES))
    q_aea, q_2ag = (sp.Symbol(n, real=True, nonnegative=True) for n in ("AEA_FOLD_BRAIN", "TWOAG_FOLD"))
    x_thc = _thc_nM() / S["thc_cb1_ki"]
    return (FastLayer("aea_fold_brain", str(y_aea), 1 + y_aea, q_aea, k_aea / q_aea, True),
            FastLayer("twoag_fold_brain", str(y_2ag), 1 + y_2ag, q_2ag, k_2ag / q_2ag, True),
            FastLayer("cb1_occupancy_thc", str(theta), theta, x_thc / (1 + x_thc), koff * (1 + x_thc), False))


def fast_submodel() -> Submodel:
    """The fast layers as states: F' = λ (Q - F), written in each state."""
    rates, outputs = {}, {}
    for layer in fast_layers():
        rates[layer.state] = layer.rate * (layer.steady - layer.quantity)
        outputs[f"{layer.name}_kinetic"] = layer.quantity
    return Submodel(name="ecs_fast_kinetics", description=fast_submodel.__doc__ or "",
                    states={layer.state: "dimensionless" for layer in fast_layers()},
                    parameters=RATES, rates=rates, outputs=outputs)


@lru_cache(maxsize=1)
def stiff_model() -> Model:
    """CBD, THC and PF-04457845 pharmacokinetics, the FAAH protein, the algebraic targets and tone,
    and the fast layers as ODEs (clobazam, nabilone and CB1 tolerance do not reach these outputs)."""
    return Model((cbd_submodel(), thc_submodel(), pf04457845_submodel(), faah_turnover_submodel(),
                  ecs_submodel(), fast_submodel()))


@lru_cache(maxsize=1)
def layer_functions() -> dict[str, VectorFunction]:
    """For each layer, F, Q, λ and dQ/dt (by the chain rule over the drug states' rates) as
    functions of states and parameters, stacked in that order."""
    model = stiff_model()
    drug_states = [sp.Symbol(s, real=True, nonnegative=True) for s in model.states
                   if s not in {layer.state for layer in fast_layers()}]
    functions = {}
    for layer in fast_layers():
        steady = model.expand(layer.steady)
        slope = sum(sp.diff(steady, x) * model.rates[str(x)] for x in drug_states)
        functions[layer.name] = VectorFunction.build([layer.quantity, steady, model.expand(layer.rate), slope])
    return functions


@dataclass(frozen=True)
class Samples:
    """States of one patient at increasing times (hours), both sides of each dose: at a dose time the
    pre-dose sample comes first. ``grid_rows`` picks the post-dose sample at each grid time."""

    times: np.ndarray
    states: dict[str, np.ndarray]
    grid_rows: np.ndarray


@dataclass(frozen=True)
class _ScalarSystem:
    """The stiff model's right-hand side and Jacobian (its nonzero entries) as plain-float functions
    of (states..., parameters...): one patient at a time, a SciPy solver calls them thousands of
    times, and on floats they cost about 25 µs against about 280 µs for the batched NumPy version."""

    states: tuple[str, ...]
    parameters: tuple[str, ...]
    rhs: object
    jacobian: object
    nonzero: tuple[tuple[int, int], ...]


@lru_cache(maxsize=1)
def _scalar_system() -> _ScalarSystem:
    model = stiff_model()
    x = [sp.Symbol(s, real=True, nonnegative=True) for s in model.states]
    rates = [model.rates[s] for s in model.states]
    J = sp.Matrix(rates).jacobian(x)
    names = sorted({str(s) for e in rates for s in e.free_symbols} - set(model.states))
    args = [*x, *(sp.Symbol(n, real=True, nonnegative=True) for n in names)]
    nonzero = tuple((i, j) for i in range(len(x)) for j in range(len(x)) if J[i, j] != 0)
    return _ScalarSystem(tuple(model.states), tuple(names), sp.lambdify(args, rates, modules="math", cse=True),
                         sp.lambdify(args, [J[i, j] for i, j in nonzero], modules="math", cse=True), nonzero)


def integrate_stiff(values: dict[str, np.ndarray], doses: list[Bolus], grid: Grid, patient: int,
                    method: str = "BDF", rtol: float = 1e-10, atol: float = 1e-12) -> Samples:
    """The full stiff model for one patient, dose to dose with SciPy's implicit ``method`` and the
    analytic Jacobian, sampled at every time of ``grid`` (and just before each dose)."""
    system = _scalar_system()
    n = len(system.states)
    fixed = [float(np.asarray(values[k])[patient]) for k in system.parameters]
    rows_j, cols_j = (np.array(i, dtype=int) for i in zip(*system.nonzero))

    def rhs(t, y):
        return np.array(system.rhs(*y.tolist(), *fixed))

    def jac(t, y):
        J = np.zeros((n, n))
        J[rows_j, cols_j] = system.jacobian(*y.tolist(), *fixed)
        return J

    kicks: dict[int, np.ndarray] = {}
    for d in doses:
        kicks.setdefault(grid.index(d.time_h), np.zeros(n))[system.states.index(d.state)] += \
            np.asarray(d.amount)[patient]
    times, rows, grid_rows = grid.times, [], []
    y = kicks.get(0, np.zeros(n))
    rows.append((times[0], y))
    grid_rows.append(0)
    k0 = 0
    for k1 in sorted(k for k in set(kicks) | {grid.size - 1} if k > 0):
        sol = solve_ivp(rhs, (times[k0], times[k1]), y, method=method, t_eval=times[k0 + 1:k1 + 1],
                        rtol=rtol, atol=atol, jac=jac)
        if not sol.success:
            raise RuntimeError(f"stiff reference failed between {times[k0]} h and {times[k1]} h: {sol.message}")
        for t, x in zip(sol.t, sol.y.T):
            rows.append((t, x))
            grid_rows.append(len(rows) - 1)
        y = sol.y[:, -1]
        if k1 in kicks:   # the post-dose sample becomes the grid row; the pre-dose one stays before it
            y = y + kicks[k1]
            rows.append((times[k1], y))
            grid_rows[-1] = len(rows) - 1
        k0 = k1
    t_all = np.array([t for t, _ in rows])
    y_all = np.array([x for _, x in rows])
    return Samples(t_all, {s: y_all[:, i] for i, s in enumerate(system.states)}, np.array(grid_rows))


def evaluate_layer(name: str, values: dict[str, np.ndarray], samples: Samples, patient: int) -> dict[str, np.ndarray]:
    """F, Q, λ and dQ/dt of layer ``name`` at every sample of one patient."""
    fn = layer_functions()[name]
    size = len(samples.times)
    env = {k: np.asarray(v[patient], dtype=float) for k, v in values.items()} | samples.states
    stacked = fn(env, size)
    return dict(zip(("F", "Q", "rate", "slope"), stacked.T))


SAMPLING_ALLOWANCE = 0.1   # the bound's maxima are over samples, not continuous time (see lag_bound)


def lag_bound(times: np.ndarray, rate: np.ndarray, slope: np.ndarray, at: np.ndarray,
              window_h: float) -> np.ndarray:
    """Upper bound on |F - Q| at each time in ``at`` for F' = λ (Q - F), F(0) = Q(0).

    With d = F - Q, d' = -λ d - Q'. On [t - W, t], with m = min λ and G = max |Q'| there,
    |d(t)| ≤ G/m + D exp(-m W), D = sup |Q'| / inf λ over [0, t] bounding |d| everywhere before t
    (d(0) = 0); when the window reaches back to 0 the second term is 0. Maxima and minima are taken
    over the samples (``times``, hours, both sides of each dose, where Q' jumps), and G/m is raised
    by `SAMPLING_ALLOWANCE` for what Q' can add between samples: the caller keeps the sampling step
    small against the drugs' fastest time constant.
    """
    out = np.empty(len(at))
    for j, t in enumerate(at):
        upto = times <= t + 1e-12
        window = upto & (times >= t - window_h - 1e-12)
        m, g = rate[window].min(), np.abs(slope[window]).max()
        local = (1 + SAMPLING_ALLOWANCE) * g / m
        if t - window_h <= 0:
            out[j] = local
        else:
            earlier = (1 + SAMPLING_ALLOWANCE) * np.abs(slope[upto]).max() / rate[upto].min()
            out[j] = local + earlier * np.exp(-m * window_h)
    return out
