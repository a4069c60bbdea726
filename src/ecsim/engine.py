"""The engine: exact integration of each linear block on a fixed output grid.

Between output times a block with constant coefficients is advanced exactly by the matrix
exponential of its augmented matrix [[A, b], [0, 0]]; a block whose coefficients depend on earlier
blocks (the CBD–clobazam interaction) uses the exponential midpoint rule, with the upstream states
at the exact midpoint of each step (second order in the step). Upstream blocks must have constant
coefficients. Doses are boluses at grid times; the value
stored at a dose time is the post-dose value. Patients are the batch axis throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm

from .errors import InputError
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
    """Trajectories of every state, each an array (batch, grid.size)."""
    trajectories: dict[str, np.ndarray] = {}
    halves: dict[str, tuple[LinearBlock, np.ndarray]] = {}
    for block in compile_model(model):
        kicks = _kicks(block, doses, grid, batch)
        midpoints = _Midpoints(block, halves, trajectories)
        states = _advance(block, values, midpoints, kicks, grid, batch)
        trajectories.update({s: states[:, :, i] for i, s in enumerate(block.states)})
        if not block.upstream:
            half = _propagator(block, values, batch, grid.dt_h / 2)
            halves.update({s: (block, half) for s in block.states})
    return trajectories


def outputs(model: Model, values: dict[str, np.ndarray], trajectories: dict[str, np.ndarray]
            ) -> dict[str, np.ndarray]:
    """Named outputs (units in the names), each (batch, time)."""
    fn = output_function(model)
    batch, size = next(iter(trajectories.values())).shape
    merged = {k: v[:, None] for k, v in values.items()} | trajectories
    flat = {k: np.broadcast_to(v, (batch, size)).ravel() for k, v in merged.items() if k in fn.names}
    stacked = fn(flat, batch * size).reshape(batch, size, -1)
    return {name: stacked[:, :, i] for i, name in enumerate(model.outputs)}


def _kicks(block: LinearBlock, doses: list[Bolus], grid: Grid, batch: int) -> dict[int, np.ndarray]:
    kicks: dict[int, np.ndarray] = {}
    for dose in doses:
        if dose.state not in block.states:
            continue
        k = grid.index(dose.time_h)
        kick = kicks.setdefault(k, np.zeros((batch, len(block.states))))
        kick[:, block.states.index(dose.state)] += dose.amount
    return kicks


def _advance(block: LinearBlock, values, midpoints: "_Midpoints", kicks, grid: Grid, batch: int) -> np.ndarray:
    n = len(block.states)
    out = np.empty((batch, grid.size, n))
    x = kicks.get(0, np.zeros((batch, n))).copy()
    out[:, 0] = x
    propagator = None if block.upstream else _propagator(block, values, batch, grid.dt_h)
    for k in range(1, grid.size):
        step = propagator if propagator is not None else _propagator(
            block, values | midpoints.at(k), batch, grid.dt_h)
        x = np.einsum("pij,pj->pi", step[:, :n, :n], x) + step[:, :n, n]
        if k in kicks:
            x = x + kicks[k]
        out[:, k] = x
    return out


def _propagator(block: LinearBlock, values, batch: int, dt: float) -> np.ndarray:
    """exp(M dt) for the augmented matrix M = [[A, b], [0, 0]], shape (batch, n+1, n+1)."""
    A, b = block.evaluate(values, batch)
    n = A.shape[-1]
    M = np.zeros((batch, n + 1, n + 1))
    M[:, :n, :n] = A
    M[:, :n, n] = b
    return expm(M * dt)


class _Midpoints:
    """Upstream states in the middle of step k-1 -> k, exact for constant-coefficient upstream blocks.

    The state after a dose at t_(k-1) is propagated half a step with that block's own propagator,
    so the coupled block's exponential midpoint rule sees the true midpoint value.
    """

    def __init__(self, block: LinearBlock, halves: dict, trajectories: dict):
        self.block, self.halves, self.trajectories = block, halves, trajectories

    def at(self, k: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for u in self.block.upstream:
            if u in out:
                continue
            source, half = self.halves[u]
            x = np.stack([self.trajectories[s][:, k - 1] for s in source.states], axis=-1)
            n = x.shape[-1]
            mid = np.einsum("pij,pj->pi", half[:, :n, :n], x) + half[:, :n, n]
            out.update({s: mid[:, i] for i, s in enumerate(source.states) if s in self.block.upstream})
        return out
