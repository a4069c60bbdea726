"""Lower the symbolic declaration to NumPy functions over a batch of patients.

Each submodel must be linear in its own states: d x/dt = A(u, p) x + b(u, p), where u are the
states of earlier submodels. `LinearBlock` holds A and b as vectorised functions; the engine
integrates each block exactly (matrix exponential) and the reference solver uses `full_rhs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..errors import ModelError
from .declaration import Model, Submodel


@dataclass(frozen=True)
class VectorFunction:
    """Expressions evaluated on dicts of arrays (one value per patient), stacked on the last axis."""

    names: tuple[str, ...]
    fn: object

    @classmethod
    def build(cls, exprs: list[sp.Expr]) -> "VectorFunction":
        free = sorted({str(s) for e in exprs for s in e.free_symbols})
        args = [sp.Symbol(n, real=True, nonnegative=True) for n in free]
        return cls(tuple(free), sp.lambdify(args, exprs, modules="numpy", cse=True))

    def __call__(self, values: dict[str, np.ndarray], batch: int) -> np.ndarray:
        results = self.fn(*(values[n] for n in self.names))
        out = np.empty((batch, len(results)))
        for i, r in enumerate(results):
            out[:, i] = r   # constants (often 0) broadcast on assignment
        return out


@dataclass(frozen=True)
class LinearBlock:
    """One submodel as d x/dt = A x + b, with A and b functions of parameters and upstream states."""

    name: str
    states: tuple[str, ...]
    coefficients: VectorFunction  # A flattened row-major, then b: one function, shared terms computed once
    upstream: tuple[str, ...]     # states of earlier blocks that A or b read
    diagonal: bool = False        # A is diagonal whatever the values: the states are uncoupled
    homogeneous: bool = False     # b is identically zero

    def evaluate(self, values: dict[str, np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray]:
        """A (batch, n, n) and b (batch, n) at the given parameter and upstream-state values."""
        n = len(self.states)
        both = self.coefficients(values, batch)
        return both[:, :n * n].reshape(batch, n, n), both[:, n * n:]


def linear_block(model: Model, sub: Submodel) -> LinearBlock:
    """Split a submodel's expanded rates into A x + b; fail if they are not linear in x."""
    x = [sp.Symbol(s, real=True, nonnegative=True) for s in sub.states]
    f = sp.Matrix([model.rates[s] for s in sub.states])
    A = f.jacobian(x)
    own = set(x)
    if any(e.free_symbols & own for e in A):
        raise ModelError(f"submodel {sub.name} is not linear in its own states")
    b = f.xreplace({xi: 0 for xi in x})  # exact: f is affine in x when its Jacobian is free of x
    upstream = sorted({str(s) for e in list(A) + list(b) for s in e.free_symbols} & set(model.states))
    diagonal = all(A[i, j] == 0 for i in range(A.rows) for j in range(A.cols) if i != j)
    return LinearBlock(sub.name, tuple(sub.states), VectorFunction.build(list(A) + list(b)), tuple(upstream),
                       diagonal, all(e == 0 for e in b))


@lru_cache(maxsize=8)
def compile_model(model: Model) -> tuple[LinearBlock, ...]:
    """All blocks of ``model``, in declaration order (cached per model)."""
    model.check()
    return tuple(linear_block(model, sub) for sub in model.submodels if sub.states)


@lru_cache(maxsize=8)
def full_rhs(model: Model) -> VectorFunction:
    """The whole right-hand side as one function (for the reference solver)."""
    return VectorFunction.build([model.rates[s] for s in model.states])


@lru_cache(maxsize=8)
def full_jacobian(model: Model) -> VectorFunction:
    """d(rhs)/d(states), flattened row-major (for implicit reference solvers)."""
    x = [sp.Symbol(s, real=True, nonnegative=True) for s in model.states]
    f = sp.Matrix([model.rates[s] for s in model.states])
    return VectorFunction.build(list(f.jacobian(x)))


@lru_cache(maxsize=8)
def output_function(model: Model) -> VectorFunction:
    return VectorFunction.build(list(model.outputs.values()))
