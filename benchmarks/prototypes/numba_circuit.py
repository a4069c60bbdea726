"""A PROTOTYPE, measured and not adopted: the circuit's steady state (`ecsim.circuit.network.fixed_point`)
as one Numba loop per patient, timed against the NumPy solver on the fixed points a chunk of the
default scenario's CBD arm asks for. Not part of the package and not tested by the suite. Needs
numba, installed beside the project's virtual environment, not into it (``--no-deps`` keeps the
venv's NumPy in use):

    pip install --no-deps --target /tmp/$USER/site numba==0.68.1 llvmlite==0.50.0
    NUMBA_NUM_THREADS=1 PYTHONPATH=/tmp/$USER/site .venv/bin/python benchmarks/prototypes/numba_circuit.py [patients]

The algorithm is `fixed_point`'s, patient by patient: at each iteration the STN-GPe loop solved
exactly by bracketed Newton steps on the summed GPe, GPi and FS set from it, the other units
(D1, D2, thalamus, TRN, cortex) moved by damped iteration x <- x + relax (u(x) - x) with Anderson
mixing of depth ANDERSON_DEPTH (least squares on the last residual differences, Tikhonov 1e-10 of
the Gram trace), clipped to [0, 1]; a patient stops once every unit is within ``tol`` of its target
and counts as converged if its last change is below 10 ``tol``. The NumPy solver's blocks and
compaction never change a patient's result, so a loop over patients is the same algorithm. The
arithmetic differs in its rounding only: the history is a ring with its Gram matrix kept up to
date (one new row of inner products per iteration, not the whole matrix), the small system is
solved by Gaussian elimination with partial pivoting instead of LAPACK, and sums are plain loops
instead of BLAS. Measured: the same largest iteration count in every call, states within 1e-12.

`main` records every `fixed_point` call that `simulation.assess_chunk` makes for one chunk of arm 3,
replays them through both solvers on one thread, and writes benchmarks/results/2026-11-26-numba-circuit.txt:
both solvers' seconds (whole calls), the compiled loop's alone (inputs packed beforehand), the
compile time, the cost per iteration and how far the results differ.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")   # before numba is imported: measured on one thread

import statistics
import subprocess
import sys
import time
from collections import namedtuple
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from numba import njit

from ecsim.circuit import network
from ecsim.circuit.network import (ANDERSON_DEPTH, NUCLEI, SHARED, TOLERANCE, CircuitInputs, CircuitParameters,
                                   FixedPoint, State, rest_state)

RESULTS = Path(__file__).resolve().parents[1] / "results" / "2026-11-26-numba-circuit.txt"
ARM = 3            # the default scenario's Epidiolex-like arm: the most circuit time of the five
REPEATS = 3

# packed layouts: the state (patients, nucleus, channel), the shared FS and TRN in column 0
D1, D2, FS, STN, GPE, GPI, THALAMUS, TRN, CORTEX = range(len(NUCLEI))
Params = namedtuple("Params", [f.name for f in fields(CircuitParameters)])
Terms = namedtuple("Terms", [f.name for f in fields(network._Terms) if f.name != "norm"])


# ---------------------------------------------------------------------------------------------
# The solver: Python entry (packing) and the compiled per-patient loop
# ---------------------------------------------------------------------------------------------

def fixed_point(inp: CircuitInputs, p: CircuitParameters, patients: int, channels: int, *,
                start: State | None = None, tol: float = TOLERANCE, max_iter: int = 3000,
                relax: float = 0.5, accelerate: bool = True) -> FixedPoint:
    """`network.fixed_point`'s inputs and result, solved by the compiled loop."""
    return counted_fixed_point(inp, p, patients, channels, start=start, tol=tol, max_iter=max_iter,
                               relax=relax, accelerate=accelerate)[0]


def counted_fixed_point(inp: CircuitInputs, p: CircuitParameters, patients: int, channels: int, *,
                        start: State | None = None, tol: float = TOLERANCE, max_iter: int = 3000,
                        relax: float = 0.5, accelerate: bool = True) -> tuple[FixedPoint, np.ndarray]:
    """`fixed_point` and each patient's number of iterations."""
    terms = network._Terms.of(inp, p, channels)
    x0 = _packed_state(start or rest_state(patients, channels), patients, channels)
    packed, change, used = _solve_patients(_packed_terms(terms, patients, channels), Params(**vars(p)),
                                           terms.norm, x0, tol, max_iter, relax, accelerate, ANDERSON_DEPTH)
    return FixedPoint(_unpacked_state(packed), change < 10 * tol, int(used.max(initial=1))), used


def _packed_terms(terms: network._Terms, patients: int, channels: int) -> Terms:
    """Every term as a contiguous (patients, channels) array. The STN-GPe loop gain and the terms
    of the shared FS unit must be the same on every channel (the NumPy solver assumes it too)."""
    for f in ("stn_gpe_loop", "glu", "salience_fs"):
        v = np.asarray(getattr(terms, f))
        if v.ndim == 2 and v.shape[1] > 1 and not np.array_equal(v, np.broadcast_to(v[:, :1], v.shape)):
            raise ValueError(f"{f}: differs between channels; the loop solve and FS need one value per patient")
    return Terms(**{f: np.ascontiguousarray(np.broadcast_to(np.asarray(getattr(terms, f), dtype=float),
                                                            (patients, channels))) for f in Terms._fields})


def _packed_state(state: State, patients: int, channels: int) -> np.ndarray:
    """(patients, nucleus, channel) in NUCLEI order; shared units in column 0."""
    x = np.zeros((patients, len(NUCLEI), channels))
    for k, name in enumerate(NUCLEI):
        width = 1 if name in SHARED else channels
        x[:, k, :width] = np.broadcast_to(state[name], (patients, width))
    return x


def _unpacked_state(x: np.ndarray) -> State:
    return {name: x[:, k, :1].copy() if name in SHARED else x[:, k, :].copy() for k, name in enumerate(NUCLEI)}


@njit
def _solve_patients(t, p, norm, x0, tol, max_iter, relax, accelerate, depth):
    """Each patient's steady state (packed like ``x0``), last change and iterations, one after another."""
    patients, _, channels = x0.shape
    out = x0.copy()
    change = np.empty(patients)
    used = np.empty(patients, dtype=np.int64)
    for i in range(patients):
        change[i], used[i] = _settle(i, t, p, norm, out[i], tol, max_iter, relax, accelerate, depth)
    return out, change, used


@njit
def _settle(i, t, p, norm, x, tol, max_iter, relax, accelerate, depth):
    """One patient's iteration, ``x`` (nucleus, channel) updated in place: returns its last change
    and the iterations used (as `network._settle`)."""
    c = x.shape[1]
    dims = 4 * c + 1
    xs, u, f, new = _slow(x), np.empty(dims), np.empty(dims), np.empty(dims)
    d_f, d_x_relaxed = np.empty((depth, dims)), np.empty((depth, dims))
    last_x, last_f = np.empty(dims), np.empty(dims)
    outside = np.empty((2, c))          # the STN and GPe inputs from outside their loop
    gram, system, rhs = np.empty((depth, depth)), np.empty((depth, depth)), np.empty(depth)
    seen, change = -1, np.inf           # seen: differences added to the history (-1: no iterate yet)
    for it in range(1, max_iter + 1):
        loop_change = _step(i, t, p, norm, x, xs, u, outside)
        change = loop_change
        for d in range(dims):
            f[d] = u[d] - xs[d]
            change = _larger(change, abs(f[d]))
        if not change >= tol:
            _store_slow(xs, x)
            return change, it
        if accelerate:
            seen = _remember(xs, f, last_x, last_f, d_f, d_x_relaxed, gram, seen, relax)
        if accelerate and seen > 0:
            _anderson(xs, f, d_f, d_x_relaxed, gram, min(seen, depth), relax, system, rhs, new)
        else:
            for d in range(dims):
                new[d] = xs[d] + relax * f[d]
        for d in range(dims):
            xs[d] = _clip(new[d])
    _store_slow(xs, x)
    return change, max_iter


@njit
def _larger(a, b):
    """max(a, b) that keeps a NaN (as NumPy's max does)."""
    return b if (b > a or b != b) else a


@njit
def _clip(v):
    """clip(v, 0, 1) without branches; NaN stays NaN (as np.clip)."""
    return min(max(v, 0.0), 1.0)


@njit
def _slow(x):
    """The iterated units D1, D2, thalamus, TRN, cortex as one vector (`network.SLOW`'s order)."""
    c = x.shape[1]
    xs = np.empty(4 * c + 1)
    xs[0:c], xs[c:2 * c], xs[2 * c:3 * c] = x[D1], x[D2], x[THALAMUS]
    xs[3 * c] = x[TRN, 0]
    xs[3 * c + 1:] = x[CORTEX]
    return xs


@njit
def _store_slow(xs, x):
    c = x.shape[1]
    x[D1], x[D2], x[THALAMUS] = xs[0:c], xs[c:2 * c], xs[2 * c:3 * c]
    x[TRN, 0] = xs[3 * c]
    x[CORTEX] = xs[3 * c + 1:]


@njit
def _step(i, t, p, norm, x, xs, u, outside):
    """`network._step` for patient ``i``: STN, GPe (loop solved), GPi and FS of ``x`` set from the
    slow units ``xs``; the slow units' targets written to ``u``. Returns the largest change the
    STN and GPe targets still ask for (GPi and FS: none, they are set to theirs). ``outside``:
    room for the STN and GPe inputs from outside their loop."""
    c = x.shape[1]
    d1, d2, thalamus, cortex, trn = xs[0:c], xs[c:2 * c], xs[2 * c:3 * c], xs[3 * c + 1:], xs[3 * c]
    stn_in, gpe_in = outside[0], outside[1]
    for k in range(c):
        stn_in[k] = p.w_cortex_stn * cortex[k] + p.bias_stn
        gpe_in[k] = p.bias_gp - _striatum_to_gpe(t, i, k, d1[k], d2[k])
    _loop_solve(stn_in, gpe_in, t.stn_gpe_loop[i], x[GPE].sum(), norm, p, x[STN], x[GPE])
    sum_gpe, sum_stn, sum_cortex, sum_thalamus = x[GPE].sum(), x[STN].sum(), cortex.sum(), thalamus.sum()
    for k in range(c):
        x[GPI, k] = _clip(p.w_stn_gpi * (t.stn_drive[i, k] * sum_stn) - norm * p.w_gpe_gpi * sum_gpe
                          - t.striatum_gpi[i, k] * (t.d1_output[i, k] * d1[k]) + p.bias_gp)
    x[FS, 0] = _clip(norm * (t.glu[i, 0] * (p.w_cortex_fs * sum_cortex + t.salience_fs[i, 0]) - p.w_gpe_fs * sum_gpe))
    for k in range(c):
        u[k], u[c + k] = _msn_targets(t, p, i, k, x[GPE, k], x[FS, 0], cortex[k])
        u[2 * c + k] = _clip(p.w_cortex_thalamus * cortex[k] - p.w_trn * trn - t.gpi_thalamus[i, k] * x[GPI, k]
                             + p.bias_thalamus)
        u[3 * c + 1 + k] = _clip(t.cortex_loop[i, k] * thalamus[k] + t.command[i, k])
    u[3 * c] = _clip(norm * p.w_trn * (sum_cortex + sum_thalamus))
    return _loop_change(i, t, p, norm, x, d1, d2, cortex, sum_gpe, sum_stn)


@njit
def _striatum_to_gpe(t, i, k, d1, d2):
    """Striatal GABA onto GPe of channel ``k`` (`network._striatum_to_gpe`)."""
    return t.striatum_gpe[i, k] * (t.d1_output[i, k] * d1 + t.d2_output[i, k] * d2)


@njit
def _msn_targets(t, p, i, k, gpe, fs, cortex):
    """Targets of D1 and D2 of channel ``k`` (`network._targets`)."""
    cortical = t.glu[i, k] * (p.w_cortex_msn * cortex + t.salience_msn[i, k])
    inhibition = p.w_fs_msn * fs - p.bias_msn - t.excitability[i, k]
    gpe_msn = p.w_gpe_msn * gpe
    return (_clip(t.d1_gain[i, k] * (t.corticostriatal_d1[i, k] * cortical - gpe_msn) - inhibition),
            _clip(t.d2_gain[i, k] * (t.corticostriatal_d2[i, k] * cortical - gpe_msn) - inhibition))


@njit
def _loop_change(i, t, p, norm, x, d1, d2, cortex, sum_gpe, sum_stn):
    """Largest |target - value| of STN and GPe after the loop solve (round-off of the exact solve)."""
    change = 0.0
    for k in range(x.shape[1]):
        stn = _clip(p.w_cortex_stn * cortex[k] - norm * p.w_gpe_stn * sum_gpe + p.bias_stn)
        gpe = _clip(p.w_stn_gpe * (t.stn_drive[i, k] * sum_stn) - _striatum_to_gpe(t, i, k, d1[k], d2[k]) + p.bias_gp)
        change = _larger(_larger(change, abs(stn - x[STN, k])), abs(gpe - x[GPE, k]))
    return change


@njit
def _loop_solve(stn_in, gpe_in, gain, g, norm, p, stn, gpe):
    """`network._loop_solve` for one patient: STN and GPe written to ``stn``, ``gpe``; ``g``: the
    starting guess of the summed GPe; ``gain``: the STN-to-GPe gain per channel (equal on all)."""
    c = stn.shape[0]
    lo, hi = 0.0, float(c)
    for _ in range(60):
        inner_stn, inner_gpe = _loop_eval(stn_in, gpe_in, gain, g, norm * p.w_gpe_stn, stn, gpe)
        h = gpe.sum() - g
        if abs(h) < 1e-13:
            break
        if h > 0:
            lo = g
        else:
            hi = g
        slope = gain[0] * (-norm * p.w_gpe_stn * inner_stn) * inner_gpe - 1.0
        step = g - h / slope
        g = step if (step > lo and step < hi) else 0.5 * (lo + hi)


@njit
def _loop_eval(stn_in, gpe_in, gain, g, gpe_to_stn, stn, gpe):
    """STN and GPe for summed GPe ``g``; returns how many of each are inside (0, 1) (the slopes)."""
    c = stn.shape[0]
    inner_stn, inner_gpe, sum_stn = 0, 0, 0.0
    for k in range(c):
        raw = stn_in[k] - gpe_to_stn * g
        if 0.0 < raw < 1.0:
            inner_stn += 1
        stn[k] = _clip(raw)
        sum_stn += stn[k]
    for k in range(c):
        raw = gain[k] * sum_stn + gpe_in[k]
        if 0.0 < raw < 1.0:
            inner_gpe += 1
        gpe[k] = _clip(raw)
    return inner_stn, inner_gpe


@njit
def _remember(xs, f, last_x, last_f, d_f, d_x_relaxed, gram, seen, relax):
    """`_AndersonHistory.next`'s bookkeeping, as a ring: after ``seen`` differences (-1: no previous
    iterate yet), dF and dX + relax dF go to row ``seen % depth`` (the oldest once ``depth`` are
    held) and ``gram`` gets that row's inner products with the rows held; this iterate is kept.
    Returns the new ``seen``. (The NumPy history keeps the rows oldest first; their order changes
    the least-squares weights' order, not the update.)"""
    depth, dims = d_f.shape
    if seen >= 0:
        slot = seen % depth
        for d in range(dims):
            df = f[d] - last_f[d]
            d_f[slot, d] = df
            d_x_relaxed[slot, d] = xs[d] - last_x[d] + relax * df
        for a in range(min(seen + 1, depth)):
            gram[a, slot] = gram[slot, a] = _dot(d_f[a], d_f[slot])
    last_x[:], last_f[:] = xs, f
    return seen + 1


@njit
def _anderson(xs, f, d_f, d_x_relaxed, gram, m, relax, system, rhs, new):
    """`network._anderson_update` with the first ``m`` history rows and their Gram matrix ``gram``:
    ``new`` = xs + relax f - dXr gamma, gamma the least-squares weights of f on the residual
    differences (normal equations, regularised by 1e-10 of the trace). ``system`` and ``rhs``:
    room for the equations, at least m x m and m."""
    system, rhs = system[:m, :m], rhs[:m]
    trace = 0.0
    for a in range(m):
        trace += gram[a, a]
    for a in range(m):
        rhs[a] = _dot(d_f[a], f)
        for b in range(m):
            system[a, b] = gram[a, b]
        system[a, a] += 1e-10 * trace + 1e-300
    _gauss_solve(system, rhs)
    for d in range(xs.shape[0]):
        mixed = 0.0
        for a in range(m):
            mixed += d_x_relaxed[a, d] * rhs[a]
        new[d] = xs[d] + relax * f[d] - mixed


@njit
def _dot(a, b):
    """Inner product of two vectors, in four partial sums (as BLAS would: one sum waits on each
    addition's latency; a call to BLAS costs more than these short vectors)."""
    total = 0.0
    for k in range(a.shape[0]):
        total += a[k] * b[k]
    return total


@njit
def _gauss_solve(a, b):
    """Solves the small system a y = b in place (y replaces b; a is overwritten): elimination with
    partial pivoting."""
    n = b.shape[0]
    for col in range(n):
        pivot = col
        for row in range(col + 1, n):
            if abs(a[row, col]) > abs(a[pivot, col]):
                pivot = row
        if pivot != col:
            for k in range(n):
                a[col, k], a[pivot, k] = a[pivot, k], a[col, k]
            b[col], b[pivot] = b[pivot], b[col]
        for row in range(col + 1, n):
            factor = a[row, col] / a[col, col]
            for k in range(col, n):
                a[row, k] -= factor * a[col, k]
            b[row] -= factor * b[col]
    for row in range(n - 1, -1, -1):
        acc = b[row]
        for k in range(row + 1, n):
            acc -= a[row, k] * b[k]
        b[row] = acc / a[row, row]


# ---------------------------------------------------------------------------------------------
# The measurement
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One recorded `fixed_point` call."""

    inp: CircuitInputs
    p: CircuitParameters
    patients: int
    channels: int
    options: dict


def record_calls(patients: int) -> list[Call]:
    """Every `fixed_point` call of `simulation.assess_chunk` for patients [0, patients) of arm ARM of
    the default scenario, made as `benchmarks/stage_rates.py` makes the chunk (a warm-up chunk first,
    so the phenotype's first guesses are kept as in a run)."""
    from ecsim import simulation as S
    from ecsim.chain import full_model
    from ecsim.circuit import clinical
    from ecsim.engine import integrate, outputs
    from ecsim.scenario import load_scenario
    scenario = load_scenario(None)
    registry, model, arm = S.scenario_registry(scenario), full_model(), scenario.arms[ARM]
    grid = S.grid_for(scenario)
    values, doses = S.patient_inputs(scenario, arm, 0, patients, registry)
    with np.errstate(all="ignore"):
        out = outputs(model, values, integrate(model, values, doses, grid, patients))
    S.assess_chunk(scenario, arm, grid.times, out, 0, patients, registry)
    calls, solver = [], clinical.fixed_point

    def recording(inp, p, n, channels, **options):
        calls.append(Call(inp, p, n, channels, {k: _copied(v) for k, v in options.items()}))
        return solver(inp, p, n, channels, **options)

    clinical.fixed_point = recording
    try:
        S.assess_chunk(scenario, arm, grid.times, out, 0, patients, registry)
    finally:
        clinical.fixed_point = solver
    print(f"arm {ARM} ({arm.name}), {patients} patients: {len(calls)} fixed points recorded")
    return calls


def _copied(v):
    return {k: a.copy() for k, a in v.items()} if isinstance(v, dict) else v


def replay(solver, calls: list[Call]) -> list[FixedPoint]:
    return [solver(c.inp, c.p, c.patients, c.channels, **c.options) for c in calls]


def packed(calls: list[Call]) -> list[tuple]:
    """Each call's arguments of the compiled loop `_solve_patients`, packed once (outside its timing)."""
    args = []
    for c in calls:
        terms = network._Terms.of(c.inp, c.p, c.channels)
        x0 = _packed_state(c.options.get("start") or rest_state(c.patients, c.channels), c.patients, c.channels)
        args.append((_packed_terms(terms, c.patients, c.channels), Params(**vars(c.p)), terms.norm, x0,
                     c.options.get("tol", TOLERANCE), c.options.get("max_iter", 3000), c.options.get("relax", 0.5),
                     c.options.get("accelerate", True), ANDERSON_DEPTH))
    return args


def timed(run, repeats: int) -> tuple[float, list[float]]:
    """Seconds of a first ``run()`` (compiles, for Numba) and of ``repeats`` after it."""
    started = time.perf_counter()
    run()
    first = time.perf_counter() - started
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        runs.append(time.perf_counter() - started)
    return first, runs


def _seconds(runs: list[float]) -> str:
    return f"{statistics.median(runs):.3f} s ({min(runs):.3f}-{max(runs):.3f})"


def agreement(calls: list[Call]) -> tuple[list[str], int, int]:
    """Lines on the largest |NumPy - Numba| per nucleus over every call, converged flags and
    iteration counts; NumPy's batch iterations and Numba's patient-iterations, summed over the calls."""
    reference, ours = replay(network.fixed_point, calls), replay(counted_fixed_point, calls)
    worst = {k: max(float(np.max(np.abs(a.state[k] - b[0].state[k]))) for a, b in zip(reference, ours))
             for k in NUCLEI}
    flags = sum(int(np.sum(a.converged != b[0].converged)) for a, b in zip(reference, ours))
    unconverged = sum(int(np.sum(~a.converged)) for a in reference)
    block_its = sum(a.iterations for a in reference)
    patient_its = sum(int(b[1].sum()) for b in ours)
    max_its = [(a.iterations, b[0].iterations) for a, b in zip(reference, ours)]
    return ["largest |NumPy - Numba| per nucleus over all calls (TOLERANCE = 1e-7):",
            "  " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()),
            f"  largest: {max(worst.values()) / TOLERANCE:.1e} x TOLERANCE",
            f"converged flags differing: {flags} (NumPy not converged: {unconverged})",
            f"calls whose max iterations differ: {sum(a != b for a, b in max_its)} of {len(max_its)}",
            f"iterations: NumPy {block_its} batch iterations (max per call, summed), "
            f"Numba {patient_its} patient-iterations"], block_its, patient_its


def measure(patients: int) -> list[str]:
    from threadpoolctl import threadpool_limits
    import llvmlite
    import numba
    lines = [f"# benchmarks/prototypes/numba_circuit.py {patients}, {time.strftime('%Y-%m-%d')}, {_cpu()}",
             _uptime(), f"numba {numba.__version__} llvmlite {llvmlite.__version__} numpy {np.__version__}, "
             f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}, one BLAS thread"]
    with threadpool_limits(limits=1):
        calls = record_calls(patients)
        lines.append(f"workload: {len(calls)} fixed_point calls of simulation.assess_chunk, arm {ARM}, "
                     f"{patients} patients ({sum(c.patients for c in calls)} patient-solves)")
        _, numpy_runs = timed(lambda: replay(network.fixed_point, calls), REPEATS)
        numba_first, numba_runs = timed(lambda: replay(fixed_point, calls), REPEATS)
        args = packed(calls)
        _, kernel_runs = timed(lambda: [_solve_patients(*a) for a in args], REPEATS)
        text, block_its, patient_its = agreement(calls)
    numpy_s, numba_s, kernel_s = (statistics.median(r) for r in (numpy_runs, numba_runs, kernel_runs))
    lines += text
    lines += [f"seconds for the {len(calls)} calls, medians of {REPEATS} after one warm run (min-max):",
              f"  NumPy fixed_point          {_seconds(numpy_runs)}",
              f"  Numba fixed_point          {_seconds(numba_runs)}   {numpy_s / numba_s:.2f}x faster than NumPy",
              f"  Numba loop alone (packed)  {_seconds(kernel_runs)}   {numpy_s / kernel_s:.2f}x "
              f"(packing inputs and unpacking states: the rest)",
              f"Numba compile (first run minus the median): {numba_first - numba_s:.2f} s",
              f"per iteration: NumPy {1e6 * numpy_s / block_its:.0f} us per batch iteration "
              f"({1e9 * numpy_s / patient_its:.0f} ns per patient-iteration); "
              f"Numba {1e9 * numba_s / patient_its:.0f} ns per patient-iteration, "
              f"loop alone {1e9 * kernel_s / patient_its:.0f} ns",
              _uptime()]
    return lines


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.rstrip()


def _cpu() -> str:
    from ecsim import bench
    info = bench.machine()
    return f"{info['cpu']}, {info['usable_cores']} usable cores"


def main(patients: int = 512) -> None:
    lines = measure(patients)
    print("\n".join(lines))
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
