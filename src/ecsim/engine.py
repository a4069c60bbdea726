"""The engine: exact integration of each linear block on a fixed output grid.

Between output times a block with constant coefficients is advanced exactly by the matrix
exponential of its augmented matrix [[A, b], [0, 0]]. A block whose coefficients depend on earlier
blocks (the CBD-clobazam interaction, CB1 tolerance) takes fourth-order Magnus substeps, with the
upstream states computed exactly at the Gauss points; upstream blocks must have constant
coefficients. Doses are boluses at grid times; the value stored at a dose time is the post-dose
value. Patients are the batch axis throughout.

How the work is laid out (the numbers are those of stepping one output step at a time; a
per-step reference is kept in tests/test_engine.py): patients are integrated in groups of up to
`GROUP`, and output steps in tiles of about `TILE` patient-steps, every block advancing over a tile
before the next tile starts. For a coupled block, the upstream states at the Gauss points, the
coefficients and each step's propagator (gain and shift when A is diagonal) are computed for the
whole tile in vectorised calls over (step, patient), from the upstream blocks' work arrays of the
same tile; only the recurrence x_k = P_k x_(k-1) + c_k (+ doses) runs step by step, into a
time-major work array that each step writes contiguously; the tile is then copied into the
block's (state, patient, time) array. Every number comes from elementwise operations or from sums
within one patient, so a patient's numbers do not depend on the group, the tile or the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import entrywise
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
    """Trajectories of every state, each a contiguous array (batch, grid.size).

    BLAS is held to one thread: the matrices are tiny, and threaded BLAS calls on them were measured
    up to 100 times slower when another process shared the two cores.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _integrate(model, values, doses, grid, batch)


GROUP = 512   # patients integrated together: a group's propagators and work arrays stay in cache


def _integrate(model, values, doses, grid, batch) -> dict[str, np.ndarray]:
    """Every block's trajectories, (n, batch, grid.size), filled a group of patients at a time.
    A block with no dose, no source and a zero start is exactly zero throughout (clobazam when not given)."""
    blocks = compile_model(model)
    moving = {b.name: any(d.state in b.states for d in doses) or not b.homogeneous for b in blocks}
    arrays = {b.name: np.zeros((len(b.states), batch, grid.size)) for b in blocks}   # zero: lazily, by the kernel
    groups = -(-batch // GROUP)
    for g in range(groups):   # of equal size
        rows = slice(g * batch // groups, (g + 1) * batch // groups)
        _integrate_group(blocks, moving, {k: _rows(v, rows, batch) for k, v in values.items()},
                         [Bolus(d.time_h, d.state, _rows(d.amount, rows, batch)) for d in doses], grid,
                         {k: a[:, rows] for k, a in arrays.items()})
    return {s: arrays[b.name][i] for b in blocks for i, s in enumerate(b.states)}


def _rows(value, rows: slice, batch: int):
    """The given patients' part of a per-patient array (batch, ...); anything else as it is."""
    return value[rows] if np.ndim(value) and np.shape(value)[0] == batch else value


def _integrate_group(blocks, moving, values, doses, grid, arrays) -> None:
    """Fill ``arrays`` (block name -> (n, patients, grid.size)) for one group of patients: every
    moving block advances over a tile of output steps, in declaration order, then the next tile."""
    batch = next(iter(arrays.values())).shape[1]
    steps = _tile_steps(batch, grid.size - 1)
    group = _Group(values, batch, grid.dt_h)
    runs = []
    for block in blocks:
        if moving[block.name]:
            runs.append(group.start(block, _kicks(block, doses, grid, batch), arrays[block.name], steps))
        if not block.upstream:
            group.register(block, zero=not moving[block.name])
    for k0 in range(1, grid.size, steps):
        for run in runs:
            run.advance(group, k0, min(k0 + steps, grid.size))


OUTPUT_TILE = 8192   # patient-times per call of the output expressions: their temporaries stay in cache


def outputs(model: Model, values: dict[str, np.ndarray], trajectories: dict[str, np.ndarray]
            ) -> dict[str, np.ndarray]:
    """Named outputs (units in the names), each (batch, time).

    Per-patient values enter as (batch, 1) columns and broadcast against the (batch, time) states
    inside the expressions, so terms of parameters alone are computed once per patient, not once
    per output time. The expressions run on a few patients' rows at a time, so their hundred-odd
    temporaries stay in cache instead of each being a (batch, time) array; element by element the
    arithmetic is the same as on full arrays.
    """
    fn = output_function(model)
    batch, size = next(iter(trajectories.values())).shape
    if _constant_in_time(trajectories):   # no drug: the expressions of the first time, for every time
        trajectories = {k: v[:, :1] for k, v in trajectories.items()}
    columns = {k: np.asarray(v)[:, None] if np.ndim(v) == 1 else v for k, v in values.items()}
    merged = columns | trajectories
    results = {name: np.empty((batch, size)) for name in model.outputs}
    rows = max(1, OUTPUT_TILE // next(iter(trajectories.values())).shape[1])
    for start in range(0, batch, rows):
        part = slice(start, start + rows)
        args = (_rows(merged[k], part, batch) for k in fn.names)   # a value shared by all: as it is
        for name, r in zip(model.outputs, fn.fn(*args)):
            results[name][part] = r
    return results


def _constant_in_time(trajectories: dict[str, np.ndarray]) -> bool:
    """Whether every state keeps its first value at every time (an arm without drug: no dose and
    every source zero). Then each output is too, element by element, so evaluating the expressions
    once per patient gives the same bits. The first patient is checked first: a dosed arm fails there."""
    arrays = list(trajectories.values())
    return all(np.array_equal(a[:1], np.broadcast_to(a[:1, :1], a[:1].shape)) for a in arrays) and all(
        np.array_equal(a, np.broadcast_to(a[:, :1], a.shape)) for a in arrays)


def _kicks(block: LinearBlock, doses: list[Bolus], grid: Grid, batch: int) -> dict[int, np.ndarray]:
    kicks: dict[int, np.ndarray] = {}
    for dose in doses:
        if dose.state not in block.states:
            continue
        k = grid.index(dose.time_h)
        kick = kicks.setdefault(k, np.zeros((batch, len(block.states))))
        kick[:, block.states.index(dose.state)] += dose.amount
    return kicks


TILE = 16384          # patient-steps per tile: the coefficients' temporaries stay in the L2 cache
MIN_TILE_STEPS = 16   # so that copying a tile into the states' rows writes whole cache lines


def _tile_steps(batch: int, steps: int) -> int:
    """Output steps per tile: about `TILE` patient-steps, at least `MIN_TILE_STEPS`."""
    return max(1, min(steps, max(MIN_TILE_STEPS, TILE // max(batch, 1))))


class _Run:
    """One moving block over one group of patients: x_k = P_k x_(k-1) + c_k, plus the doses at t_k,
    a tile of output steps at a time, into a time-major work array (each step writes one
    contiguous (batch, n) block) that is then copied into the block's (n, batch, time) array."""

    def __init__(self, block: LinearBlock, kicks: dict[int, np.ndarray], out: np.ndarray, steps: int,
                 invariant: bool):
        n, batch, _ = out.shape
        self.block, self.kicks, self.out, self.invariant = block, kicks, out, invariant
        self.work = np.empty((steps + 1, batch, n))   # row 0: the state at t_(k0-1), row 1 + t: at t_(k0+t)
        self.work[0] = kicks.get(0, 0.0)
        out[:, :, 0] = self.work[0].T
        self.step = None

    def advance(self, group: "_Group", k0: int, k1: int) -> None:
        """Steps k0 .. k1-1; the work array's row 0 holds the state at t_(k0-1)."""
        work = self.work
        if k0 > 1:
            work[0] = work[-1]   # every tile but the last is full
        if self.step is None or not self.invariant:   # invariant steps are all the first one
            self.step = _tile_step(self.block, group, k0, k0 + 1 if self.invariant else k1)
        x = work[0]
        for k in range(k0, k1):
            x = self.step(k - k0, x, work[1 + k - k0])
            if k in self.kicks:
                np.add(x, self.kicks[k], out=x)
        self.out[:, :, k0:k1] = work[1:1 + k1 - k0].transpose(2, 1, 0)


def _tile_step(block: LinearBlock, group: "_Group", k0: int, k1: int):
    """step(t, x, out): x advanced over output step k0 + t into ``out``, for the steps [k0, k1); past
    k1, the last step repeats."""
    if not block.upstream:
        return _matrix_step(group.propagator(block, group.dt)[None])
    inputs, values, dt = group.inputs(block, k0, k1), group.values, group.dt
    if block.diagonal:
        return _diagonal_step(*_diagonal_magnus_step(block, values, inputs, dt))
    return _matrix_step(_magnus_step(block, values, inputs, dt))


def _matrix_step(steps: np.ndarray):
    """Steps given as augmented matrices (steps, batch, n+1, n+1); past the last, the last repeats."""
    n, last = steps.shape[-1] - 1, len(steps) - 1

    def step(t: int, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        m = steps[min(t, last)]
        np.einsum("pij,pj->pi", m[:, :n, :n], x, out=out)
        return np.add(out, m[:, :n, n], out=out)
    return step


def _diagonal_step(gain: np.ndarray, shift: np.ndarray):
    """Steps of a diagonal block: gain and shift each (steps, batch, n); past the last, the last repeats."""
    last = len(gain) - 1

    def step(t: int, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(gain[min(t, last)], x, out=out)
        return np.add(out, shift[min(t, last)], out=out)
    return step


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


def _coefficients(block: LinearBlock, values, point: dict[str, np.ndarray]) -> list:
    """The block's A (row-major) then b, each a scalar, (batch,) or (steps, batch): parameters are
    (batch,) and broadcast against the upstream states at one Gauss point of every step, (steps, batch)."""
    return block.coefficients.fn(*(point[k] if k in point else values[k] for k in block.coefficients.names))


def _magnus_step(block: LinearBlock, values, inputs: list[dict], dt: float) -> np.ndarray:
    """Fourth-order Magnus steps over each output step of a tile, for a block whose coefficients
    follow upstream states: per substep of length h, Omega = h/2 (M1 + M2) + sqrt(3) h^2 / 12
    [M2, M1], with M at the two Gauss points (Blanes, Casas, Oteo & Ros 2009,
    doi:10.1016/j.physrep.2008.11.001). ``inputs``: the upstream states at each of `POINTS`, each
    (steps, batch). The matrices are held entry by entry (`ecsim.entrywise`): only the entries
    that can be nonzero are computed. Returns the steps' augmented matrices, (steps, batch, n+1, n+1).
    """
    h, m = dt / SUBSTEPS, len(block.states) + 1
    shape = next(iter(inputs[0].values())).shape
    step = None
    for j in range(SUBSTEPS):
        M1, M2 = (_augmented_entries(block, values, inputs[2 * j + i], shape) for i in (0, 1))
        commutator = entrywise.combination([(1.0, entrywise.matmul(M2, M1)), (-1.0, entrywise.matmul(M1, M2))])
        omega = entrywise.combination([(0.5 * h, M1), (0.5 * h, M2), ((np.sqrt(3) / 12) * h * h, commutator)])
        sub = entrywise.expm(omega, m, shape)
        step = sub if step is None else entrywise.matmul(sub, step)
    return entrywise.dense(step, m, shape)


def _augmented_entries(block: LinearBlock, values, point: dict[str, np.ndarray], shape) -> entrywise.Entries:
    """The entries of M = [[A, b], [0, 0]] that are not structural zeros, at one Gauss point of
    each step of a tile, each (steps, batch)."""
    n = len(block.states)
    entries = [(r, c) for r in range(n) for c in range(n)] + [(r, n) for r in range(n)]   # A row-major, then b
    return {e: np.broadcast_to(value, shape) for e, value in zip(entries, _coefficients(block, values, point))
            if np.ndim(value) or value != 0}


def _diagonal_magnus_step(block: LinearBlock, values, inputs: list[dict], dt: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The same Magnus steps when A is diagonal, state by state in closed form: the commutator only
    adds h^2 sqrt(3)/12 (a2 b1 - a1 b2) to the offset, and exp([[w, c], [0, 0]]) = [[e^w, c phi1(w)],
    [0, 1]] with phi1(w) = (e^w - 1)/w. Equal to the general step up to rounding, without matrix
    products. Returns each step's gain and shift, x_k = gain_k x_(k-1) + shift_k, each (steps, batch, n).
    States with the same coefficients (CB1 tolerance at three synapse classes) are computed once."""
    h = dt / SUBSTEPS
    a, b, states = _diagonal_coefficients(block, values, inputs)
    gain, shift = np.ones(a[0].shape), np.zeros(a[0].shape)
    for j in range(SUBSTEPS):
        a1, a2, b1, b2 = a[2 * j], a[2 * j + 1], b[2 * j], b[2 * j + 1]
        w = 0.5 * h * (a1 + a2)
        c = 0.5 * h * (b1 + b2) + (np.sqrt(3) / 12) * h * h * (a2 * b1 - a1 * b2)
        e = np.exp(w)
        gain, shift = e * gain, e * shift + c * _phi1(w)
    if states == list(range(len(states))):
        return gain, shift
    return gain[..., states], shift[..., states]


def _diagonal_coefficients(block: LinearBlock, values, inputs: list[dict]) -> tuple[list, list, list[int]]:
    """The diagonal of A and b at each Gauss point of each step of a tile, each (steps, batch, m) for
    the m distinct (a_i, b_i) among the n states, and for each state its column."""
    n = len(block.states)
    results = [_coefficients(block, values, point) for point in inputs]
    pairs = [[(r[i * n + i], r[n * n + i]) for i in range(n)] for r in results]
    states = _distinct(pairs[0])
    if any(_distinct(p) != states for p in pairs[1:]):
        states = list(range(n))
    columns = [states.index(c) for c in range(max(states) + 1)]   # the first state of each column
    steps, batch = next(iter(inputs[0].values())).shape
    a, b = [], []
    for p in pairs:
        a.append(np.empty((steps, batch, len(columns))))
        b.append(np.empty((steps, batch, len(columns))))
        for column, i in enumerate(columns):
            a[-1][:, :, column], b[-1][:, :, column] = p[i]
    return a, b, states


def _distinct(pairs: list[tuple]) -> list[int]:
    """For each state, the column of the first state whose coefficients are the very same objects."""
    first: dict[tuple[int, int], int] = {}
    return [first.setdefault((id(a), id(b)), len(first)) for a, b in pairs]


def _phi1(w: np.ndarray) -> np.ndarray:
    """(e^w - 1)/w, 1 at w = 0."""
    safe = np.where(w == 0.0, 1.0, w)
    return np.where(w == 0.0, 1.0, np.expm1(safe) / safe)


class _Group:
    """One group of patients: their values, the moving blocks' runs, and the states of
    constant-coefficient blocks at the Gauss points inside output steps, exactly.

    The post-dose state at t_(k-1) is propagated by the source block's own exp(M c dt), so a
    coupled block sees the true upstream values between output times. They are computed from the
    source's work array of the current tile, for every Gauss point, time-major (steps, batch).
    """

    def __init__(self, values, batch: int, dt: float):
        self.values, self.batch, self.dt = values, batch, dt
        self.runs: dict[str, _Run] = {}
        self.owner: dict[str, LinearBlock] = {}   # state -> its constant-coefficient block
        self.zero: set[str] = set()               # blocks that stay exactly zero (no dose, no source)
        self.propagators: dict[tuple[str, float], np.ndarray] = {}

    def start(self, block: LinearBlock, kicks: dict[int, np.ndarray], out: np.ndarray, steps: int) -> _Run:
        """A run of a moving block, whose upstream blocks (if any) are registered already."""
        self.runs[block.name] = _Run(block, kicks, out, steps, self.invariant(block))
        return self.runs[block.name]

    def register(self, block: LinearBlock, zero: bool) -> None:
        """A constant-coefficient block, whose states later blocks may read."""
        self.owner.update({s: block for s in block.states})
        if zero:
            self.zero.add(block.name)

    def invariant(self, block: LinearBlock) -> bool:
        """Whether the block's steps are all the same: constant coefficients, or every state they
        read stays zero."""
        return all(self._owner(block, u).name in self.zero for u in block.upstream)

    def propagator(self, block: LinearBlock, dt: float) -> np.ndarray:
        """exp(M dt) of a constant-coefficient block, (batch, n+1, n+1), computed once."""
        if (block.name, dt) not in self.propagators:
            self.propagators[(block.name, dt)] = _propagator(block, self.values, self.batch, dt)
        return self.propagators[(block.name, dt)]

    def inputs(self, block: LinearBlock, k0: int, k1: int) -> list[dict[str, np.ndarray]]:
        """For each of `POINTS`: the block's upstream states inside output steps k0 .. k1-1, (steps, batch)."""
        points: list[dict[str, np.ndarray]] = [{} for _ in POINTS]
        for u in block.upstream:
            source = self._owner(block, u)
            n, i = len(source.states), source.states.index(u)
            for point, c in zip(points, POINTS):
                P = self.propagator(source, c * self.dt)
                if source.name in self.zero:   # P 0 + P[:, i, n]
                    point[u] = np.broadcast_to(P[:, i, n], (k1 - k0, self.batch))
                else:   # the source's states at t_(k0-1) .. t_(k1-2), (steps, batch, n)
                    x = self.runs[source.name].work[:k1 - k0]
                    point[u] = np.einsum("pj,tpj->tp", P[:, i, :n], x) + P[:, i, n]
        return points

    def _owner(self, block: LinearBlock, u: str) -> LinearBlock:
        if u not in self.owner:
            raise ModelError(f"{block.name} reads {u}, which is not in a constant-coefficient block")
        return self.owner[u]
