"""The engine: exact integration of each linear block on a fixed output grid.

Between output times a block with constant coefficients is advanced exactly by the matrix
exponential of its augmented matrix [[A, b], [0, 0]]. A block whose coefficients depend on earlier
blocks (the CBD-clobazam interaction, CB1 tolerance) takes fourth-order Magnus substeps, with the
upstream states computed exactly at the Gauss points; upstream blocks must have constant
coefficients. Doses are boluses at grid times; the value stored at a dose time is the post-dose
value. Patients are the batch axis throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .errors import InputError, ModelError
from .model.compile import LinearBlock, compile_model, output_function
from .model.declaration import Model


@dataclass(frozen=True)
class Bolus:
    """An amount (one value per patient, in the state's unit) added to ``state`` at ``time_h``."""

    time_h: float
    state: str
    amount: np.ndarray


@dataclass(frozen=True)
class Grid:
    """Output times 0, dt, 2 dt, ..., t_end (hours)."""

    t_end_h: float
    dt_h: float

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.size) * self.dt_h

    @property
    def size(self) -> int:
        return int(round(self.t_end_h / self.dt_h)) + 1

    def index(self, time_h: float) -> int:
        k = int(round(time_h / self.dt_h))
        if abs(k * self.dt_h - time_h) > 1e-9 * max(1.0, time_h) or not 0 <= k < self.size:
            raise InputError("dose time", time_h, f"a multiple of the output step {self.dt_h} h within the run")
        return k


def integrate(model: Model, values: dict[str, np.ndarray], doses: list[Bolus], grid: Grid,
              batch: int) -> dict[str, np.ndarray]:
    """Trajectories of every state, each an array (batch, grid.size).

    BLAS is held to one thread: the matrices are tiny, and threaded BLAS calls on them were measured
    up to 100 times slower when another process shared the two cores.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _integrate(model, values, doses, grid, batch)


def _integrate(model, values, doses, grid, batch) -> dict[str, np.ndarray]:
    trajectories: dict[str, np.ndarray] = {}
    upstream = _Upstream(trajectories, grid.dt_h)
    for block in compile_model(model):
        kicks = _kicks(block, doses, grid, batch)
        if kicks or not block.homogeneous:
            states = _advance(block, values, upstream, kicks, grid, batch)
        else:   # no dose, no source, zero start: exactly zero throughout (clobazam when not given)
            states = np.zeros((batch, grid.size, len(block.states)))
        trajectories.update({s: states[:, :, i] for i, s in enumerate(block.states)})
        if not block.upstream:
            upstream.register(block, values, batch)
    return trajectories


def outputs(model: Model, values: dict[str, np.ndarray], trajectories: dict[str, np.ndarray]
            ) -> dict[str, np.ndarray]:
    """Named outputs (units in the names), each (batch, time).

    Per-patient values enter as (batch, 1) columns and broadcast against the (batch, time) states
    inside the expressions, so terms of parameters alone are computed once per patient, not once
    per output time; element by element the arithmetic is the same as on full arrays.
    """
    fn = output_function(model)
    batch, size = next(iter(trajectories.values())).shape
    columns = {k: np.asarray(v)[:, None] if np.ndim(v) == 1 else v for k, v in values.items()}
    merged = columns | trajectories
    results = fn.fn(*(merged[k] for k in fn.names))
    return {name: np.array(np.broadcast_to(r, (batch, size)), dtype=float)
            for name, r in zip(model.outputs, results)}


def _kicks(block: LinearBlock, doses: list[Bolus], grid: Grid, batch: int) -> dict[int, np.ndarray]:
    kicks: dict[int, np.ndarray] = {}
    for dose in doses:
        if dose.state not in block.states:
            continue
        k = grid.index(dose.time_h)
        kick = kicks.setdefault(k, np.zeros((batch, len(block.states))))
        kick[:, block.states.index(dose.state)] += dose.amount
    return kicks


def _advance(block: LinearBlock, values, upstream: "_Upstream", kicks, grid: Grid, batch: int) -> np.ndarray:
    n = len(block.states)
    out = np.empty((batch, grid.size, n))
    x = kicks.get(0, np.zeros((batch, n))).copy()
    out[:, 0] = x
    constant = None if block.upstream else _propagator(block, values, batch, grid.dt_h)
    for k in range(1, grid.size):
        step = constant if constant is not None else _magnus_step(block, values, upstream, k, batch, grid.dt_h)
        x = np.einsum("pij,pj->pi", step[:, :n, :n], x) + step[:, :n, n]
        if k in kicks:
            x = x + kicks[k]
        out[:, k] = x
    return out


def expm(M: np.ndarray, order: int = 14) -> np.ndarray:
    """Matrix exponentials of a batch of small matrices (..., n, n), vectorised over the batch.

    Scaling and squaring with a truncated Taylor series: each matrix is scaled by its own 2^-s so
    that its 1-norm is at most 1/2, where the order-14 remainder is below 0.5^15/15! < 1e-16, then
    squared s times (Higham 2005, doi:10.1137/04061101X, section 2). Scaling per matrix, not by the
    batch's largest norm, makes every result independent of the other matrices in the batch, so a
    patient's numbers do not depend on how patients are chunked. SciPy's expm loops over a batch
    matrix by matrix in Python, which cost 60 µs per 5 x 5 matrix here. The polynomial is evaluated
    by Paterson-Stockmeyer (Higham 2008, Functions of Matrices, section 4.2): 6 matrix products for
    order 14 instead of 14.
    """
    norm = np.abs(M).sum(axis=-2).max(axis=-1, initial=0.0)
    s = np.where(norm > 0.5, np.ceil(np.log2(np.maximum(norm, 0.5) / 0.5)), 0.0).astype(int)
    result = _taylor(M / (2.0 ** s)[..., None, None], order)
    for k in range(int(s.max(initial=0))):
        squared = result @ result
        result = np.where((s > k)[..., None, None], squared, result)
    return result


def _taylor(A: np.ndarray, order: int, block: int = 4) -> np.ndarray:
    """sum_k A^k / k! for k <= order, Paterson-Stockmeyer with powers up to A^block:
    sum_j (sum_i c_(block j + i) A^i) (A^block)^j, the outer sum by Horner."""
    powers = [np.broadcast_to(np.eye(A.shape[-1]), A.shape), A]
    while len(powers) <= block:
        powers.append(powers[len(powers) // 2] @ powers[(len(powers) + 1) // 2])
    coefficients = [1.0 / math.factorial(k) for k in range(order + 1)]
    result = None
    for j in reversed(range(order // block + 1)):
        part = sum(coefficients[block * j + i] * powers[i] for i in range(block)
                   if block * j + i <= order)
        result = part if result is None else part + result @ powers[block]
    return result


def _augmented(block: LinearBlock, values, batch: int) -> np.ndarray:
    """M = [[A, b], [0, 0]], shape (batch, n+1, n+1)."""
    A, b = block.evaluate(values, batch)
    n = A.shape[-1]
    M = np.zeros((batch, n + 1, n + 1))
    M[:, :n, :n] = A
    M[:, :n, n] = b
    return M


def _propagator(block: LinearBlock, values, batch: int, dt: float) -> np.ndarray:
    """exp(M dt): the exact step of a constant-coefficient block."""
    return expm(_augmented(block, values, batch) * dt)


GAUSS = (0.5 - np.sqrt(3) / 6, 0.5 + np.sqrt(3) / 6)
SUBSTEPS = 2   # Magnus substeps per output step for coupled blocks (error falls 16-fold per doubling)
POINTS = tuple((j + c) / SUBSTEPS for j in range(SUBSTEPS) for c in GAUSS)


def _magnus_step(block: LinearBlock, values, upstream: "_Upstream", k: int, batch: int, dt: float) -> np.ndarray:
    """Fourth-order Magnus steps over one output step for a block whose coefficients follow upstream
    states: per substep of length h, Omega = h/2 (M1 + M2) + sqrt(3) h^2 / 12 [M2, M1], with M at
    the two Gauss points (Blanes, Casas, Oteo & Ros 2009, doi:10.1016/j.physrep.2008.11.001).
    """
    if block.diagonal:
        return _diagonal_magnus_step(block, values, upstream, k, batch, dt)
    h = dt / SUBSTEPS
    step = None
    for j in range(SUBSTEPS):
        M1, M2 = (_augmented(block, values | upstream.at(block, k, 2 * j + i), batch) for i in (0, 1))
        sub = expm(0.5 * h * (M1 + M2) + (np.sqrt(3) / 12) * h * h * (M2 @ M1 - M1 @ M2))
        step = sub if step is None else sub @ step
    return step


def _diagonal_magnus_step(block: LinearBlock, values, upstream: "_Upstream", k: int, batch: int, dt: float
                          ) -> np.ndarray:
    """The same Magnus steps when A is diagonal, state by state in closed form: the commutator only
    adds h^2 sqrt(3)/12 (a2 b1 - a1 b2) to the offset, and exp([[w, c], [0, 0]]) = [[e^w, c phi1(w)],
    [0, 1]] with phi1(w) = (e^w - 1)/w. Equal to the general step up to rounding, without matrix
    products."""
    h = dt / SUBSTEPS
    n = len(block.states)
    gain, shift = np.ones((batch, n)), np.zeros((batch, n))
    for j in range(SUBSTEPS):
        (A1, b1), (A2, b2) = (block.evaluate(values | upstream.at(block, k, 2 * j + i), batch) for i in (0, 1))
        a1, a2 = np.diagonal(A1, axis1=1, axis2=2), np.diagonal(A2, axis1=1, axis2=2)
        w = 0.5 * h * (a1 + a2)
        c = 0.5 * h * (b1 + b2) + (np.sqrt(3) / 12) * h * h * (a2 * b1 - a1 * b2)
        e = np.exp(w)
        gain, shift = e * gain, e * shift + c * _phi1(w)
    step = np.zeros((batch, n + 1, n + 1))
    idx = np.arange(n)
    step[:, idx, idx] = gain
    step[:, :n, n] = shift
    step[:, n, n] = 1.0
    return step


def _phi1(w: np.ndarray) -> np.ndarray:
    """(e^w - 1)/w, 1 at w = 0."""
    safe = np.where(w == 0.0, 1.0, w)
    return np.where(w == 0.0, 1.0, np.expm1(safe) / safe)


class _Upstream:
    """States of constant-coefficient blocks at the Gauss points inside each output step, exactly.

    The post-dose state at t_(k-1) is propagated by the block's own exp(M c dt), so a coupled block
    sees the true upstream values between output times. Each state's values at one Gauss point are
    computed for every output step at once, on first use.
    """

    def __init__(self, trajectories: dict, dt: float):
        self.trajectories, self.dt = trajectories, dt
        self.owner: dict[str, tuple[LinearBlock, tuple[np.ndarray, np.ndarray]]] = {}
        self.series: dict[tuple[str, int], np.ndarray] = {}   # (state, point) -> (batch, steps)
        self.stacked: dict[str, np.ndarray] = {}   # block name -> its states at t_0 .. t_(K-1), (batch, steps, n)

    def register(self, block: LinearBlock, values, batch: int) -> None:
        props = tuple(_propagator(block, values, batch, c * self.dt) for c in POINTS)
        self.owner.update({s: (block, props) for s in block.states})

    def at(self, block: LinearBlock, k: int, point: int) -> dict[str, np.ndarray]:
        return {u: self._series(block, u, point)[:, k - 1] for u in block.upstream}

    def _series(self, block: LinearBlock, u: str, point: int) -> np.ndarray:
        if (u, point) not in self.series:
            if u not in self.owner:
                raise ModelError(f"{block.name} reads {u}, which is not in a constant-coefficient block")
            source, props = self.owner[u]
            n, i = len(source.states), source.states.index(u)
            if source.name not in self.stacked:
                self.stacked[source.name] = np.stack([self.trajectories[s][:, :-1] for s in source.states], axis=-1)
            x = self.stacked[source.name]
            inside = np.einsum("pj,ptj->pt", props[point][:, i, :n], x) + props[point][:, i, n][:, None]
            self.series[(u, point)] = np.ascontiguousarray(inside.T).T   # columns (one step) contiguous
        return self.series[(u, point)]
