"""Source text of the small routines the PROTOTYPE kernels of numba_engine.py call: each is
generated for one matrix size, so that every loop has literal bounds and the compiler unrolls it.

`expm_{m}` is `ecsim.engine.expm` for one m x m matrix: scaling by 2^-s so that the 1-norm is at
most 1/2, the order-14 Taylor polynomial by Paterson-Stockmeyer with powers up to A^4, then s
squarings (Higham 2005, doi:10.1137/04061101X; Higham 2008, Functions of Matrices, section 4.2).
"""

from __future__ import annotations

import math

ORDER, BLOCK = 14, 4
COMMON = f'''
COEFFICIENTS = {tuple(1.0 / math.factorial(k) for k in range(ORDER + 1))!r}


@njit(cache=True)
def phi1(w):
    """(e^w - 1)/w, 1 at w = 0."""
    return 1.0 if w == 0.0 else math.expm1(w) / w


@njit(cache=True)
def kick(k, q, nkick, steps, dosed, amounts, p, x):
    """Add the doses of step k (the q-th dose step, if it is k) to x; the next dose step's index."""
    if q < nkick and steps[q] == k:
        for s in range(dosed.size):
            x[dosed[s]] += amounts[q, p, s]
        return q + 1
    return q
'''

SIZED = '''

@njit(cache=True)
def matmul_{m}(A, B, C):
    """C = A @ B for {m} x {m} (C must not be A or B)."""
    for i in range({m}):
        for j in range({m}):
            acc = 0.0
            for k in range({m}):
                acc += A[i, k] * B[k, j]
            C[i, j] = acc


@njit(cache=True)
def expm_{m}(A, E, W):
    """E = exp(A) for {m} x {m}; W: work space (6, {m}, {m})."""
    norm = 0.0
    for j in range({m}):
        column = 0.0
        for i in range({m}):
            column += abs(A[i, j])
        norm = max(norm, column)
    s = int(math.ceil(math.log2(max(norm, 0.5) / 0.5))) if norm > 0.5 else 0
    scale = 2.0 ** s
    for i in range({m}):
        for j in range({m}):
            W[0, i, j] = A[i, j] / scale
    matmul_{m}(W[0], W[0], W[1])   # A^2
    matmul_{m}(W[0], W[1], W[2])   # A^3
    matmul_{m}(W[1], W[1], W[3])   # A^4
    c = COEFFICIENTS
    for j in range({order} // {block}, -1, -1):
        for r in range({m}):
            for q in range({m}):
                part = c[{block} * j] if r == q else 0.0
                for i in range(1, {block}):
                    if {block} * j + i <= {order}:
                        part += c[{block} * j + i] * W[i - 1, r, q]
                W[4, r, q] = part
        if j == {order} // {block}:
            for r in range({m}):
                for q in range({m}):
                    E[r, q] = W[4, r, q]
        else:
            matmul_{m}(E, W[3], W[5])
            for r in range({m}):
                for q in range({m}):
                    E[r, q] = W[4, r, q] + W[5, r, q]
    for _ in range(s):
        matmul_{m}(E, E, W[5])
        for r in range({m}):
            for q in range({m}):
                E[r, q] = W[5, r, q]
'''


def source(sizes) -> str:
    """The helpers' source: the common ones, and matmul/expm for each size in ``sizes``."""
    return COMMON + "".join(SIZED.format(m=m, order=ORDER, block=BLOCK) for m in sorted(set(sizes)))
