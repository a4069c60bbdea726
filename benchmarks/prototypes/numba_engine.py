"""A PROTOTYPE, measured and not adopted (benchmarks/README.md, "A compiled kernel"): the engine
of `ecsim.engine` as one Numba loop per patient, generated from the model. Not part of the package
and not tested by the suite; `compare.py` beside it runs it against the NumPy engine. Needs
`pip install numba` (measured with numba 0.68.1, llvmlite 0.50.0).

Same method as the NumPy engine: a constant-coefficient block advances by the exact
exp([[A, b], [0, 0]] dt) of each patient (computed by `engine.expm`, once per group); a block
whose coefficients follow upstream states takes `engine.SUBSTEPS` fourth-order Magnus substeps per
output step, with the upstream states exact at the Gauss points, in closed form when A is
diagonal (order-14 Taylor with scaling and squaring otherwise); boluses at grid times; a block with
no dose, no source and a zero start stays exactly zero. The coefficients are the SymPy expressions
of `model.compile`, printed as scalar Python, and compiled with the stepping loop into one
function: for each patient, for each output step, every block advances with its numbers in
registers. No fast-math. The generated source goes to ~/.cache/ecsim/numba/ (or $ECSIM_CACHE_DIR)
named by its digest, so Numba's cache keeps the compiled code across processes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import sympy as sp

from ecsim.engine import GAUSS, POINTS, SUBSTEPS, Bolus, Grid, _propagator

from ecsim.model.compile import LinearBlock, compile_model
from ecsim.model.declaration import Model
import numba_helpers

GROUP = 512   # patients per call: the propagators of a group stay small


def available() -> bool:
    """Whether numba can be imported here."""
    return importlib.util.find_spec("numba") is not None


@dataclass(frozen=True)
class _Layout:
    """Where everything sits: every block's states in one vector, in declaration order."""

    blocks: tuple[LinearBlock, ...]
    offsets: tuple[int, ...]
    parameters: tuple[str, ...]   # per-patient values the coefficients read, columns of `par`
    upstream: tuple[str, ...]     # states read by coupled blocks
    sources: frozenset[str]       # the blocks that own them

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(s for b in self.blocks for s in b.states)

    def owner(self, state: str) -> tuple[LinearBlock, int]:
        for block, offset in zip(self.blocks, self.offsets):
            if state in block.states:
                return block, offset
        raise KeyError(state)


@lru_cache(maxsize=8)
def _layout(model: Model) -> _Layout:
    blocks = compile_model(model)
    offsets = tuple(int(x) for x in np.cumsum([0] + [len(b.states) for b in blocks])[:-1])
    states = {s for b in blocks for s in b.states}
    names = sorted({n for b in blocks if b.upstream for n in b.coefficients.names} - states)
    upstream = tuple(sorted({u for b in blocks for u in b.upstream}))
    sources = frozenset(b.name for b in blocks if set(b.states) & set(upstream))
    return _Layout(blocks, offsets, tuple(names), upstream, sources)


def integrate(model: Model, values: dict[str, np.ndarray], doses: list[Bolus], grid: Grid,
              batch: int) -> dict[str, np.ndarray]:
    """Trajectories of every state, each (batch, grid.size); as `ecsim.engine.integrate`."""
    layout = _layout(model)
    kernel = _compiled(model).kernel
    states = np.empty((len(layout.states), batch, grid.size))
    moving = np.array([any(d.state in b.states for d in doses) or not b.homogeneous for b in layout.blocks])
    steps, dosed, amounts = _kicks(layout, doses, grid, batch)
    for start in range(0, batch, GROUP):
        rows = slice(start, min(batch, start + GROUP))
        n = rows.stop - rows.start
        part = {k: _rows(v, rows, batch) for k, v in values.items()}
        props = tuple(_propagator(b, part, n, grid.dt_h) if live and not b.upstream else np.zeros((n, 1, 1))
                      for b, live in zip(layout.blocks, moving))
        gauss = tuple(_gauss_propagators(b, part, n, grid.dt_h) if live and b.name in layout.sources
                      else np.zeros((1, n, 1, 1)) for b, live in zip(layout.blocks, moving))
        par = np.empty((n, max(1, len(layout.parameters))))
        for j, name in enumerate(layout.parameters):
            par[:, j] = part[name]
        work = np.empty((n, grid.size, len(layout.states)))   # each step's states contiguous
        kernel(par, props, gauss, moving, steps, dosed, np.ascontiguousarray(amounts[:, rows]), grid.dt_h, work)
        states[:, rows] = work.transpose(2, 0, 1)
    return {s: states[i] for i, s in enumerate(layout.states)}


def _rows(value, rows: slice, batch: int):
    value = np.asarray(value, dtype=float)
    return value[rows] if value.ndim and value.shape[0] == batch else np.broadcast_to(value, (rows.stop - rows.start,))


def _gauss_propagators(block: LinearBlock, values, n: int, dt: float) -> np.ndarray:
    """exp(M c dt) of a constant-coefficient block for each c of `POINTS`: (points, patients, m, m)."""
    return np.stack([_propagator(block, values, n, c * dt) for c in POINTS])


def _kicks(layout: _Layout, doses: list[Bolus], grid: Grid, batch: int):
    """Dose steps (sorted), the dosed states' indices, and amounts (steps, batch, dosed states)."""
    index = {s: i for i, s in enumerate(layout.states)}
    steps = sorted({grid.index(d.time_h) for d in doses})
    dosed = sorted({index[d.state] for d in doses})
    amounts = np.zeros((len(steps), batch, len(dosed)))
    for d in doses:
        amounts[steps.index(grid.index(d.time_h)), :, dosed.index(index[d.state])] += d.amount
    return np.array(steps, dtype=np.int64), np.array(dosed, dtype=np.int64), amounts


# --- code generation -------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _compiled(model: Model):
    source = kernel_source(model)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = _cache_folder()
    path = folder / f"ecsim_kernel_{digest}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(path)
    spec = importlib.util.spec_from_file_location(f"ecsim_kernel_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # Numba's cache finds the module by name when it loads
    spec.loader.exec_module(module)
    return module


def _cache_folder() -> Path:
    base = os.environ.get("ECSIM_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                             or os.path.expanduser("~/.cache"), "ecsim")
    folder = Path(base) / "numba"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _printer_names(layout: _Layout):
    """SymPy symbol -> the local variable the generated code holds it in."""
    return {n: f"p{j}" for j, n in enumerate(layout.parameters)} | {u: f"u{j}" for j, u in enumerate(layout.upstream)}


def _straight_line(exprs: list[sp.Expr], names: dict[str, str], prefix: str) -> tuple[list[str], list[str]]:
    """Statements computing ``exprs`` with common subexpressions once; and the expressions' code."""
    symbols = {s: sp.Symbol(names[str(s)]) for e in exprs for s in e.free_symbols}
    exprs = [sp.sympify(e).xreplace(symbols) for e in exprs]
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(f"{prefix}t"))
    lines = [f"{s} = {_code(e)}" for s, e in replacements]
    return lines, [_code(e) for e in reduced]


def _code(e: sp.Expr) -> str:
    return sp.pycode(e, fully_qualified_modules=True).replace("math.", "math.")


def kernel_source(model: Model) -> str:
    """The Python source of the compiled stepping loop for ``model``."""
    layout = _layout(model)
    names = _printer_names(layout)
    n_states = len(layout.states)
    body = []
    add = body.append
    add("for p in range(batch):")
    for j, _ in enumerate(layout.parameters):
        add(f"    p{j} = par[p, {j}]")
    add("    x[:] = 0.0")
    add("    q = 0")
    add("    while q < nkick and steps[q] == 0:")
    add("        for s in range(dosed.size):")
    add("            x[dosed[s]] += amounts[q, p, s]")
    add("        q += 1")
    add(f"    for s in range({n_states}):")
    add("        out[p, 0, s] = x[s]")
    add("    for k in range(1, size):")
    for b, (block, offset) in enumerate(zip(layout.blocks, layout.offsets)):
        n = len(block.states)
        add(f"        # {block.name}")
        add(f"        if moving[{b}]:")
        if not block.upstream:
            add(f"            P = props[{b}]")
            add(f"            for i in range({n}):")
            add(f"                acc = P[p, i, {n}]")
            add(f"                for j in range({n}):")
            add(f"                    acc += P[p, i, j] * x[{offset} + j]")
            add(f"                xn[{offset} + i] = acc")
            continue
        for line in _coupled_block(layout, block, offset, names):
            add("            " + line)
    add("        q = kick(k, q, nkick, steps, dosed, amounts, p, xn)")
    add(f"        for s in range({n_states}):")
    add("            x[s] = xn[s]")
    add("            out[p, k, s] = xn[s]")
    sizes = _dense_sizes(layout)
    helpers, work = numba_helpers.source(sizes), _work_arrays(sizes)
    header = f'''"""Generated by ecsim.engine_numba; do not edit."""
import math
import numpy as np
from numba import njit
{helpers}

@njit(cache=True)
def kernel(par, props, gauss, moving, steps, dosed, amounts, dt, out):
    batch, size, nkick = out.shape[0], out.shape[1], steps.size
    x = np.zeros({n_states})
    xn = np.zeros({n_states})
{work}
    h = dt / {SUBSTEPS}
    r3 = math.sqrt(3.0) / 12.0
'''
    return header + "\n".join("    " + line for line in body) + "\n"


def _dense_sizes(layout: _Layout) -> list[int]:
    """Sizes of the augmented matrices of coupled blocks that are not diagonal."""
    return sorted({len(b.states) + 1 for b in layout.blocks if b.upstream and not b.diagonal})


def _work_arrays(sizes: list[int]) -> str:
    """Work space of each dense coupled block's size, allocated once per call."""
    return "\n".join(f"    M1_{m} = np.zeros(({m}, {m}))\n    M2_{m} = np.zeros(({m}, {m}))\n"
                     f"    W_{m} = np.zeros((6, {m}, {m}))\n    E_{m} = np.zeros(({m}, {m}))\n"
                     f"    S_{m} = np.zeros(({m}, {m}))\n    T_{m} = np.zeros(({m}, {m}))" for m in sizes)


def _coupled_block(layout: _Layout, block: LinearBlock, offset: int, names: dict[str, str]) -> list[str]:
    """Lines advancing a block whose coefficients follow upstream states, from x into xn."""
    n = len(block.states)
    points = []   # per Gauss point: the code of A row-major then b, after its setup lines
    lines = []
    for g in range(len(POINTS)):
        lines += _upstream_at_point(layout, block, g)
        setup, values = _straight_line(list(block.coefficients.exprs), names, f"g{g}_")
        lines += setup
        lines += [f"c{g}_{e} = {v}" for e, v in enumerate(values) if v != "0"]
        points.append(values)
    return lines + (_diagonal_steps(block, offset, points) if block.diagonal else _dense_steps(block, offset, points))


def _diagonal_steps(block: LinearBlock, offset: int, points: list[list[str]]) -> list[str]:
    """Magnus substeps in closed form, state by state: with a = A_ii and b = b_i at the two Gauss
    points of a substep, exp([[w, c], [0, 0]]) = [[e^w, c phi1(w)], [0, 1]], w = h/2 (a1 + a2),
    c = h/2 (b1 + b2) + sqrt(3) h^2/12 (a2 b1 - a1 b2), as `engine._diagonal_magnus_step`. States
    whose coefficients have the same code at every point (CB1 tolerance at three synapse classes)
    share one gain and shift."""
    n = len(block.states)
    lines, done = [], {}
    for i in range(n):
        key = tuple((p[i * n + i], p[n * n + i]) for p in points)
        if key in done:
            lines.append(f"xn[{offset + i}] = gain{done[key]} * x[{offset + i}] + shift{done[key]}")
            continue
        done[key] = i
        lines += [f"gain{i} = 1.0", f"shift{i} = 0.0"]
        for j in range(SUBSTEPS):
            a1, a2, b1, b2 = (_entry(2 * j + k, e) for k, e in ((0, i * n + i), (1, i * n + i), (0, n * n + i),
                                                               (1, n * n + i)))
            lines += [f"w = 0.5 * h * ({a1} + {a2})",
                      f"c = 0.5 * h * ({b1} + {b2}) + r3 * h * h * ({a2} * {b1} - {a1} * {b2})",
                      "e = math.exp(w)",
                      f"gain{i}, shift{i} = e * gain{i}, e * shift{i} + c * phi1(w)"]
        lines.append(f"xn[{offset + i}] = gain{i} * x[{offset + i}] + shift{i}")
    return lines


def _entry(g: int, e: int) -> str:
    return f"c{g}_{e}"


def _dense_steps(block: LinearBlock, offset: int, points: list[list[str]]) -> list[str]:
    """Magnus substeps with the augmented matrices M = [[A, b], [0, 0]] at the two Gauss points:
    Omega = h/2 (M1 + M2) + sqrt(3) h^2/12 [M2, M1], exp(Omega) by `expm_{m}`, as `engine._magnus_step`."""
    n, m = len(block.states), len(block.states) + 1
    entries = [(r, c) for r in range(n) for c in range(n)] + [(r, n) for r in range(n)]
    M1, M2, W, E, S, T = (f"{a}_{m}" for a in ("M1", "M2", "W", "E", "S", "T"))
    lines = [f"{M1}[:] = 0.0", f"{M2}[:] = 0.0"]
    for j in range(SUBSTEPS):
        for target, g in ((M1, 2 * j), (M2, 2 * j + 1)):
            lines += [f"{target}[{r}, {c}] = {_entry(g, e)}" for e, (r, c) in enumerate(entries) if points[g][e] != "0"]
        lines += [f"for i in range({m}):",
                  f"    for j in range({m}):",
                  "        acc = 0.0",
                  f"        for l in range({m}):",
                  f"            acc += {M2}[i, l] * {M1}[l, j] - {M1}[i, l] * {M2}[l, j]",
                  f"        {T}[i, j] = 0.5 * h * ({M1}[i, j] + {M2}[i, j]) + r3 * h * h * acc"]
        if j == 0:
            lines += [f"expm_{m}({T}, {S}, {W})"]
        else:
            lines += [f"expm_{m}({T}, {E}, {W})", f"matmul_{m}({E}, {S}, {T})", f"{S}[:] = {T}"]
    lines += [f"for i in range({n}):",
              f"    acc = {S}[i, {n}]",
              f"    for j in range({n}):",
              f"        acc += {S}[i, j] * x[{offset} + j]",
              f"    xn[{offset} + i] = acc"]
    return lines


def _upstream_at_point(layout: _Layout, block: LinearBlock, g: int) -> list[str]:
    """Lines setting each upstream state of ``block`` at Gauss point g: row i of the source
    block's exp(M c_g dt) applied to its augmented state at the step's start. A source that is not
    moving is exactly zero throughout (homogeneous, undosed), and so is the state at the point."""
    lines = []
    for u in block.upstream:
        j = layout.upstream.index(u)
        source, offset = layout.owner(u)
        b, n, i = layout.blocks.index(source), len(source.states), source.states.index(u)
        lines += [f"u{j} = 0.0",
                  f"if moving[{b}]:",
                  f"    G = gauss[{b}]",
                  f"    u{j} = G[{g}, p, {i}, {n}]",
                  f"    for j in range({n}):",
                  f"        u{j} += G[{g}, p, {i}, j] * x[{offset} + j]"]
    return lines
