"""Stacks of small sparse matrices held entry by entry, for the engine's Magnus steps.

A coupled block's Magnus step needs exp(Omega) of a small matrix at every patient-step: the
clobazam block's augmented matrix is 5 x 5, one per patient and Gauss point. `np.matmul` on a
stack of 16,384 such matrices took 0.9 ms here (2-core Xeon, NumPy 2.4); held as one array over
the stack per entry that can be nonzero, a product is a few dozen elementwise operations and
skips the structural zeros (the clobazam cascade, gut -> clobazam -> N-desmethylclobazam -> sink,
is lower triangular: 10 of its 25 entries are held as arrays), 0.34 ms for the same stack.

A matrix is a dict (row, column) -> value, where a value is an array over the stack or a Python
float; a missing entry is zero. Every operation is elementwise over the stack, so each matrix's
result is independent of the other matrices in it (a patient's numbers do not depend on the batch).
"""

from __future__ import annotations

import math

import numpy as np

Entries = dict[tuple[int, int], "np.ndarray | float"]


def matmul(A: Entries, B: Entries) -> Entries:
    """A @ B, summing only products of entries present in both; each sum in ascending inner index."""
    rows: dict[int, list] = {}
    for (k, j), b in sorted(B.items()):
        rows.setdefault(k, []).append((j, b))
    C: Entries = {}
    for (i, k), a in sorted(A.items()):
        for j, b in rows.get(k, ()):
            C[i, j] = a * b if (i, j) not in C else _add(C[i, j], a * b)
    return C


def _add(total, term):
    """total + term, in place when total is an array this module made (never an input's) and the
    sum has its shape and type."""
    if isinstance(total, np.ndarray) and total.shape == np.shape(term) and np.result_type(total, term) == total.dtype:
        return np.add(total, term, out=total)
    return total + term


def combination(terms: list[tuple[float, Entries]]) -> Entries:
    """sum_t c_t M_t."""
    out: Entries = {}
    for c, M in terms:
        for e, v in M.items():
            out[e] = c * v if e not in out else _add(out[e], c * v)
    return out


def identity(n: int) -> Entries:
    return {(i, i): 1.0 for i in range(n)}


def expm(A: Entries, n: int, shape: tuple[int, ...], order: int = 14) -> Entries:
    """exp(A) of every n x n matrix of the stack (``shape``), by the same scaling and squaring with
    a truncated Taylor series as `ecsim.engine.expm`: each matrix scaled by its own 2^-s so that
    its 1-norm is at most 1/2, where the order-14 remainder is below 0.5^15/15! < 1e-16, then
    squared s times (Higham 2005, doi:10.1137/04061101X, section 2); the polynomial by
    Paterson-Stockmeyer (Higham 2008, Functions of Matrices, section 4.2)."""
    columns: dict[int, np.ndarray] = {}
    for (_, j), v in A.items():
        columns[j] = np.abs(v) if j not in columns else columns[j] + np.abs(v)
    norm = np.zeros(shape)
    for total in columns.values():
        norm = np.maximum(norm, total)
    # a matrix with a non-finite entry is not scaled: its exponential is non-finite, the others' untouched
    s = np.where((norm > 0.5) & np.isfinite(norm), np.ceil(np.log2(np.maximum(norm, 0.5) / 0.5)), 0.0)
    scale = 2.0 ** -s
    result = taylor({e: v * scale for e, v in A.items()}, n, order)
    for k in range(int(s.max(initial=0))):
        squared, now = matmul(result, result), s > k
        result = {e: np.where(now, squared.get(e, 0.0), result.get(e, 0.0)) for e in squared.keys() | result.keys()}
    return result


def taylor(A: Entries, n: int, order: int, block: int = 4) -> Entries:
    """sum_k A^k / k! for k <= order, Paterson-Stockmeyer with powers up to A^block:
    sum_j (sum_i c_(block j + i) A^i) (A^block)^j, the outer sum by Horner."""
    powers = [identity(n), A]
    while len(powers) <= block:
        powers.append(matmul(powers[len(powers) // 2], powers[(len(powers) + 1) // 2]))
    coefficients = [1.0 / math.factorial(k) for k in range(order + 1)]
    result = None
    for j in reversed(range(order // block + 1)):
        part = combination([(coefficients[block * j + i], powers[i]) for i in range(block) if block * j + i <= order])
        result = part if result is None else combination([(1.0, part), (1.0, matmul(result, powers[block]))])
    return result


def dense(A: Entries, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """The stack as one array, shape + (n, n)."""
    out = np.zeros(shape + (n, n))
    for (i, j), v in A.items():
        out[..., i, j] = v
    return out
