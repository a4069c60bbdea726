"""The engine of `ecsim.engine` in JAX: the same algorithm, for CPUs and accelerators.

Same steps as the NumPy engine, in float64: each constant-coefficient block advances by the exact
exp([[A, b], [0, 0]] dt) (scaling and squaring per matrix, order-14 Taylor by Paterson-Stockmeyer);
a block whose coefficients follow upstream states takes `engine.SUBSTEPS` fourth-order Magnus
substeps per output step, in closed form when A is diagonal; boluses are added at grid times; a
block with no dose, no source and a zero start stays exactly zero. The numbers differ from the
NumPy engine's by rounding only (tests/test_engine_jax.py).

How it differs in form: all blocks advance together in one `lax.scan` over output steps, patients
on the last axis of every array (contiguous across patients, so the elementwise work vectorises on
a CPU and coalesces on a GPU); the blocks' coefficients are the SymPy expressions of
`model.compile`, generated as JAX code. The kernel is compiled once per (model, grid, dose pattern,
observed outputs, chunk size); `integrate` pads the last chunk so every chunk has the same size.

JAX is optional: only this module imports it, and only when a function of it is called.
"""

from __future__ import annotations

import importlib.util
import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .engine import POINTS, SUBSTEPS, Bolus, Grid
from .errors import InputError, ModelError
from .model.compile import LinearBlock, VectorFunction, compile_model, jax_function
from .model.declaration import Model

TAYLOR_ORDER, PS_BLOCK = 14, 4   # as engine.expm and engine._taylor


def available() -> bool:
    """Whether jax can be imported here."""
    return importlib.util.find_spec("jax") is not None


def _jax():
    try:
        import jax
    except ImportError:
        raise InputError("backend", "jax", "numpy, or jax once installed (pip install jax)") from None
    return jax


def x64():
    """A context in which JAX computes in float64, leaving the global setting as it was."""
    jax = _jax()
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    try:
        from jax.experimental import enable_x64   # JAX before 0.6
    except ImportError:
        return _global_x64(jax)
    return enable_x64()


@contextmanager
def _global_x64(jax):
    """Where JAX has no such context: set the global flag, and put it back."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def device() -> str:
    """The device JAX computes on by default, for example 'cpu' or 'NVIDIA H200 (gpu)'."""
    d = _jax().devices()[0]
    return d.platform if d.platform == "cpu" else f"{getattr(d, 'device_kind', d.platform)} ({d.platform})"


def integrate(model: Model, values: dict[str, np.ndarray], doses: list[Bolus], grid: Grid, batch: int,
              chunk: int | None = None) -> dict[str, np.ndarray]:
    """As `engine.integrate`: trajectories of every state, each a NumPy array (batch, grid.size).

    Patients go through the compiled kernel `chunk` at a time (default: all at once); the last
    chunk is padded to the same size, so the kernel is compiled once.
    """
    pattern = dose_pattern(model, doses, grid)
    kernel = _kernel(model, grid, pattern, None)
    amounts = dose_amounts(model, doses, batch)
    parts = []
    with x64():
        for start, stop, size in chunks(batch, chunk or batch):
            states = kernel.run(_slice(kernel.names, values, start, stop, size), _pad(amounts[:, start:stop], size),
                                size)
            parts.append(np.asarray(states)[:, :, : stop - start])   # (time, state, patient)
    states = np.concatenate(parts, axis=2).transpose(2, 0, 1)   # (batch, time, state)
    return {s: states[:, :, i] for i, s in enumerate(kernel.states)}


@dataclass
class ObservedRun:
    """`observe`'s result: the observed outputs summed over patients, and those of the first patients."""

    total: object      # (time, outputs), on the device until read
    first: np.ndarray  # (kept patients, time, outputs)


def observe(model: Model, function: VectorFunction, inputs, grid: Grid, patients: int, chunk: int,
            keep: int, overlap: bool = True) -> ObservedRun:
    """The outputs of `function` (SymPy expressions in parameters and states), evaluated inside the
    kernel at every output time without storing trajectories: summed over all patients, and kept for
    the first `keep` (at most one chunk). `inputs(start, stop)` gives (values, doses) of those
    patients; every chunk must have the same dose pattern. With `overlap`, chunks are dispatched
    asynchronously, so the next chunk's inputs are made while the device computes the last;
    without, each chunk is waited for (one core at a time, when the device is the CPU)."""
    plan = chunks(patients, chunk)
    keep = min(keep, plan[0][1])   # patients of the first chunk
    kernel, total, first = None, None, None
    with x64():
        for start, stop, size in plan:
            values, doses = inputs(start, stop)
            pattern = dose_pattern(model, doses, grid)
            kernel = kernel or _kernel(model, grid, pattern, function)
            if pattern != kernel.pattern:
                raise ModelError("observe: every chunk must have the same dose times and states")
            part_total, part_first = kernel.run(_slice(kernel.names, values, 0, stop - start, size),
                                                _pad(dose_amounts(model, doses, stop - start), size), size,
                                                valid=stop - start, keep=keep)
            total = part_total if total is None else total + part_total
            first = part_first if first is None else first
            if not overlap:
                total.block_until_ready()
        total.block_until_ready()
    return ObservedRun(total, np.asarray(first).transpose(2, 0, 1))


def chunks(patients: int, chunk: int) -> list[tuple[int, int, int]]:
    """(start, stop, padded size) of each chunk: as many chunks as `chunk` needs, of equal padded size."""
    if chunk < 1:
        raise InputError("chunk", chunk, "a whole number of patients, at least 1")
    count = -(-patients // chunk)
    size = -(-patients // count)
    return [(start, min(patients, start + size), size) for start in range(0, patients, size)]


def dose_pattern(model: Model, doses: list[Bolus], grid: Grid) -> tuple[tuple[int, str], ...]:
    """(grid index, state) of each bolus into a state of the model: what the kernel is compiled for."""
    states = set(model.states)
    return tuple((grid.index(d.time_h), d.state) for d in doses if d.state in states)


def dose_amounts(model: Model, doses: list[Bolus], batch: int) -> np.ndarray:
    """The amounts of the boluses in `dose_pattern`, (boluses, batch)."""
    states = set(model.states)
    rows = [np.broadcast_to(np.asarray(d.amount, dtype=float), (batch,)) for d in doses if d.state in states]
    return np.stack(rows) if rows else np.zeros((0, batch))


def _pad(amounts: np.ndarray, size: int) -> np.ndarray:
    """(boluses, patients) padded to `size` patients with copies of the first."""
    missing = size - amounts.shape[1]
    return np.concatenate([amounts, np.repeat(amounts[:, :1], missing, axis=1)], axis=1) if missing else amounts


def _slice(names, values, start: int, stop: int, size: int) -> dict[str, np.ndarray]:
    """Patients [start, stop) of each named value (an array over patients, or one value for all),
    padded to `size` with copies of the first patient."""
    out = {}
    for n in names:
        v = np.asarray(values[n], dtype=float)
        v = np.full(stop - start, v) if v.ndim == 0 else v[start:stop]
        out[n] = np.concatenate([v, np.full(size - len(v), v[0])]) if len(v) < size else v
    return out


# ---------------------------------------------------------------- the kernel

@lru_cache(maxsize=16)
def _kernel(model: Model, grid: Grid, pattern: tuple[tuple[int, str], ...],
            function: VectorFunction | None) -> "_Kernel":
    return _Kernel(model, grid, pattern, function)


class _Kernel:
    """The whole model's step for one grid and dose pattern, jit-compiled; see `run`."""

    def __init__(self, model: Model, grid: Grid, pattern, function: VectorFunction | None):
        self.model, self.grid, self.pattern, self.function = model, grid, pattern, function
        self.blocks = compile_model(model)
        self.states = tuple(s for b in self.blocks for s in b.states)
        self.kicks = {b.name: _block_kicks(b, pattern) for b in self.blocks}
        self.moving = tuple(b for b in self.blocks if self.kicks[b.name] or not b.homogeneous)
        self.sources = _sources(self.blocks, self.moving)
        needed = [b.coefficients for b in self.blocks if b in self.moving or b.name in self.sources.values()]
        needed += [function] if function is not None else []
        self.names = tuple(sorted({n for f in needed for n in f.names} - set(self.states)))
        self._compiled = {}

    def run(self, values: dict[str, np.ndarray], amounts: np.ndarray, size: int, valid: int | None = None,
            keep: int = 0):
        """States (time, state, patient) on the device; with an observed function, (sum over the first
        `valid` patients (time, outputs), outputs of the first `keep` patients (time, outputs, keep))."""
        key = (size, valid is not None, keep)
        if key not in self._compiled:
            self._compiled[key] = _jax().jit(lambda v, a, n: self._simulate(v, a, size, n, keep))
        return self._compiled[key](values, amounts, valid if valid is not None else size)

    def _simulate(self, values, amounts, size: int, valid, keep: int):
        """Traced once per chunk size: the per-chunk constants, then `lax.scan` over output steps."""
        jax = _jax()
        jnp = jax.numpy
        chunk = self._prepare(values, amounts, size)
        x0 = tuple(chunk.kicks[b.name][chunk.slots[b.name][0]] for b in self.blocks)
        observed = jax_function(self.function) if self.function is not None else None
        valid_mask = jnp.arange(size) < valid

        def observe_at(x):
            merged = values | {s: v for b, xb in zip(self.blocks, x) for s, v in zip(b.states, xb)}
            out = observed(merged, size)   # (outputs, patients)
            return jnp.where(valid_mask, out, 0.0).sum(axis=1), out[:, :keep]

        def step(x, k):
            new = self._step(x, k, chunk, values, size)
            return new, (jnp.concatenate(new, axis=0) if observed is None else observe_at(new))

        _, ys = jax.lax.scan(step, x0, jnp.arange(1, self.grid.size))
        if observed is None:
            return jnp.concatenate([jnp.concatenate(x0, axis=0)[None], ys], axis=0)
        total0, first0 = observe_at(x0)
        return jnp.concatenate([total0[None], ys[0]]), jnp.concatenate([first0[None], ys[1]])

    def _prepare(self, values, amounts, size: int) -> "_Chunk":
        """What stays fixed over the run: kicks, propagators of the constant blocks, and the rows of
        exp(M c dt) that give upstream states at the Magnus points."""
        dt = self.grid.dt_h
        return _Chunk(
            kicks={b.name: _kick_rows(b, self.kicks[b.name], amounts, size) for b in self.blocks},
            slots={b.name: _slots(self.kicks[b.name], self.grid.size) for b in self.blocks},
            propagators={b.name: _propagator(b, values, size, dt) for b in self.moving if not b.upstream},
            inside={u: _inside_rows(self._block(name), self._block(name).states.index(u), values, size, dt)
                    for u, name in self.sources.items()})

    def _step(self, x: tuple, k, chunk: "_Chunk", values, size: int) -> tuple:
        """Every block from output time k-1 to k, then the boluses at k; `x` is each block's state (n, patients)."""
        dt = self.grid.dt_h
        upstream = {u: [_dot(rows[p, :-1], x[self._index(self.sources[u])]) + rows[p, -1] for p in range(len(POINTS))]
                    for u, rows in chunk.inside.items()}
        new = []
        for block, xb in zip(self.blocks, x):
            if block in self.moving:
                if not block.upstream:
                    xb = _apply(chunk.propagators[block.name], xb)
                elif block.diagonal:
                    xb = _apply_diagonal(_diagonal_magnus(block, values, upstream, size, dt), xb)
                else:
                    xb = _apply(_magnus(block, values, upstream, size, dt), xb)
                xb = xb + chunk.kicks[block.name][chunk.slots[block.name][k]]
            new.append(xb)
        return tuple(new)

    def _index(self, block_name: str) -> int:
        return next(i for i, b in enumerate(self.blocks) if b.name == block_name)

    def _block(self, block_name: str) -> LinearBlock:
        return self.blocks[self._index(block_name)]


@dataclass(frozen=True)
class _Chunk:
    """Per-chunk constants of `_Kernel._simulate` (arrays with patients on the last axis)."""

    kicks: dict         # block -> (dose times + 1, n, patients)
    slots: dict         # block -> (grid size,) row of `kicks` at each output time
    propagators: dict   # constant block -> exp(M dt), (n+1, n+1, patients)
    inside: dict        # upstream state -> rows of exp(M c dt) at the Magnus points, (points, n+1, patients)


def _block_kicks(block: LinearBlock, pattern) -> dict[int, list[tuple[int, int]]]:
    """grid index -> [(bolus row, state position)] of the boluses into this block."""
    out: dict[int, list[tuple[int, int]]] = {}
    for row, (k, state) in enumerate(pattern):
        if state in block.states:
            out.setdefault(k, []).append((row, block.states.index(state)))
    return out


def _kick_rows(block: LinearBlock, kicks: dict, amounts, size: int):
    """(dose times + 1, states, patients): each dose time's kick, then a row of zeros."""
    import jax.numpy as jnp
    n = len(block.states)
    rows = []
    for k in sorted(kicks):
        kick = jnp.zeros((n, size))
        for row, position in kicks[k]:
            kick = kick.at[position].add(amounts[row])
        rows.append(kick)
    return jnp.stack(rows + [jnp.zeros((n, size))])


def _slots(kicks: dict, size: int):
    """For each grid index, its row in `_kick_rows` (the zero row when no dose)."""
    import jax.numpy as jnp
    order = {k: i for i, k in enumerate(sorted(kicks))}
    return jnp.asarray([order.get(k, len(order)) for k in range(size)])


def _sources(blocks, moving) -> dict[str, str]:
    """Upstream state -> the constant-coefficient block that owns it, for every moving coupled block."""
    owner = {s: b for b in blocks for s in b.states}
    out = {}
    for block in moving:
        for u in block.upstream:
            if owner[u].upstream:
                raise ModelError(f"{block.name} reads {u}, which is not in a constant-coefficient block")
            out[u] = owner[u].name
    return out


# ---------------------------------------------------------------- block steps (batch on the last axis)

def _coefficients(block: LinearBlock, values, size: int):
    """A (n, n, patients) and b (n, patients)."""
    n = len(block.states)
    both = jax_function(block.coefficients)(values, size)
    return both[: n * n].reshape(n, n, size), both[n * n:]


def _augmented(block: LinearBlock, values, size: int):
    """M = [[A, b], [0, 0]], (n+1, n+1, patients)."""
    import jax.numpy as jnp
    A, b = _coefficients(block, values, size)
    top = jnp.concatenate([A, b[:, None, :]], axis=1)
    return jnp.concatenate([top, jnp.zeros((1, top.shape[1], size))], axis=0)


def _propagator(block: LinearBlock, values, size: int, dt: float):
    """exp(M dt): the exact step of a constant-coefficient block."""
    return expm(_augmented(block, values, size) * dt)


def _inside_rows(block: LinearBlock, i: int, values, size: int, dt: float):
    """Row i of exp(M c dt) at each Magnus point c, (points, n+1, patients): state i of a constant
    block at the Gauss points of a step, from its post-dose state at the step's start."""
    import jax.numpy as jnp
    M = _augmented(block, values, size)
    return jnp.stack([expm(M * (c * dt))[i] for c in POINTS])


def _dot(row, x):
    """sum_j row[j] x[j] per patient: (n, patients), (n, patients) -> (patients,). Summed term by
    term, like `matmul`, rather than by a reduction whose order XLA may choose by the chunk's size."""
    out = row[0] * x[0]
    for j in range(1, x.shape[0]):
        out = out + row[j] * x[j]
    return out


def _apply(step, x):
    """step[:n, :n] x + step[:n, n] per patient."""
    n = x.shape[0]
    out = step[:n, 0] * x[0]
    for j in range(1, n):
        out = out + step[:n, j] * x[j]
    return out + step[:n, n]


def _apply_diagonal(gain_shift, x):
    gain, shift = gain_shift
    return gain * x + shift


def _at_point(values, upstream, point: int) -> dict:
    return values | {u: series[point] for u, series in upstream.items()}


def _magnus(block: LinearBlock, values, upstream, size: int, dt: float):
    """`engine._magnus_step`: per substep of length h, exp(h/2 (M1 + M2) + sqrt(3) h^2/12 [M2, M1])
    with M at the two Gauss points (Blanes et al. 2009, doi:10.1016/j.physrep.2008.11.001)."""
    h = dt / SUBSTEPS
    step = None
    for j in range(SUBSTEPS):
        M1, M2 = (_augmented(block, _at_point(values, upstream, 2 * j + i), size) for i in (0, 1))
        sub = expm(0.5 * h * (M1 + M2) + (np.sqrt(3) / 12) * h * h * (matmul(M2, M1) - matmul(M1, M2)))
        step = sub if step is None else matmul(sub, step)
    return step


def _diagonal_magnus(block: LinearBlock, values, upstream, size: int, dt: float):
    """`engine._diagonal_magnus_step`: the same Magnus steps state by state in closed form, as
    (gain, shift), each (n, patients)."""
    import jax.numpy as jnp
    h = dt / SUBSTEPS
    n = len(block.states)
    diagonal = np.arange(n) * (n + 1)   # rows of A (flattened row-major) on its diagonal
    gain, shift = jnp.ones((n, size)), jnp.zeros((n, size))
    for j in range(SUBSTEPS):
        (A1, b1), (A2, b2) = (_coefficients(block, _at_point(values, upstream, 2 * j + i), size) for i in (0, 1))
        a1, a2 = A1.reshape(n * n, size)[diagonal], A2.reshape(n * n, size)[diagonal]
        w = 0.5 * h * (a1 + a2)
        c = 0.5 * h * (b1 + b2) + (np.sqrt(3) / 12) * h * h * (a2 * b1 - a1 * b2)
        e = jnp.exp(w)
        gain, shift = e * gain, e * shift + c * _phi1(w)
    return gain, shift


def _phi1(w):
    """(e^w - 1)/w, 1 at w = 0."""
    import jax.numpy as jnp
    safe = jnp.where(w == 0.0, 1.0, w)
    return jnp.where(w == 0.0, 1.0, jnp.expm1(safe) / safe)


# ---------------------------------------------------------------- matrix exponential

def matmul(X, Y):
    """Per-patient matrix products, (n, k, patients) @ (k, m, patients): elementwise over patients,
    so small matrices cost n k m multiply-adds on contiguous vectors."""
    out = X[:, 0, None, :] * Y[None, 0, :, :]
    for j in range(1, X.shape[1]):
        out = out + X[:, j, None, :] * Y[None, j, :, :]
    return out


def expm(M):
    """`engine.expm` with the batch on the last axis, (n, n, patients): each matrix scaled by its own
    2^-s so that its 1-norm is at most 1/2, the order-14 Taylor polynomial (Paterson-Stockmeyer),
    then squared s times (Higham 2005, doi:10.1137/04061101X). Per-matrix scaling keeps every result
    independent of the other patients in the chunk."""
    jax = _jax()
    jnp = jax.numpy
    norm = jnp.abs(M).sum(axis=0).max(axis=0)
    s = jnp.where(norm > 0.5, jnp.ceil(jnp.log2(jnp.maximum(norm, 0.5) / 0.5)), 0.0).astype(jnp.int32)
    result = _taylor(M * jnp.ldexp(1.0, -s), TAYLOR_ORDER)

    def square(k, result):
        return jnp.where(s > k, matmul(result, result), result)
    return jax.lax.fori_loop(0, s.max(), square, result)


def _taylor(A, order: int, block: int = PS_BLOCK):
    """`engine._taylor`: sum_k A^k / k! for k <= order by Paterson-Stockmeyer."""
    import jax.numpy as jnp
    n = A.shape[0]
    powers = [jnp.broadcast_to(jnp.eye(n)[:, :, None], A.shape), A]
    while len(powers) <= block:
        powers.append(matmul(powers[len(powers) // 2], powers[(len(powers) + 1) // 2]))
    coefficients = [1.0 / math.factorial(k) for k in range(order + 1)]
    result = None
    for j in reversed(range(order // block + 1)):
        part = sum(coefficients[block * j + i] * powers[i] for i in range(block) if block * j + i <= order)
        result = part if result is None else part + matmul(result, powers[block])
    return result
