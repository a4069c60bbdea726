"""`ecsim.entrywise`: stacks of sparse small matrices held entry by entry, against SciPy and NumPy."""

import numpy as np
import pytest
from scipy.linalg import expm as scipy_expm

from ecsim import entrywise


def _entries(dense: np.ndarray, pattern) -> entrywise.Entries:
    return {(i, j): dense[..., i, j].copy() for i, j in pattern}


def _pattern(n: int, kind: str, rng) -> list[tuple[int, int]]:
    if kind == "dense":
        return [(i, j) for i in range(n) for j in range(n)]
    if kind == "lower":   # a compartment cascade (the clobazam block)
        return [(i, j) for i in range(n) for j in range(i + 1)]
    return [(i, j) for i in range(n) for j in range(n) if rng.random() < 0.4]   # anything


@pytest.mark.parametrize("kind", ["dense", "lower", "random"])
@pytest.mark.parametrize("scale", [1e-3, 0.05, 0.3, 4.0, 60.0],
                         ids=["tiny", "below-half", "few-squarings", "squared", "stiff"])
def test_expm_matches_scipy_on_each_matrix(kind, scale):
    """Every matrix of a (7, 9) stack of 5 x 5 matrices with the given sparsity pattern, against
    SciPy's Pade expm, within 1e-12 of the largest entry; the 1-norms span about 1e-3 to 1e3, so
    0 to 11 squarings. The matrices are compartmental like the model's (off-diagonal
    transfer rates of either sign here, a diagonal that outweighs its column), so no entry of the
    exponential explodes."""
    rng = np.random.default_rng(int(scale * 1000) + len(kind))
    n, shape = 5, (7, 9)
    pattern = _pattern(n, kind, rng)
    dense = np.zeros(shape + (n, n))
    for i, j in pattern:
        if i != j:
            dense[..., i, j] = rng.normal(scale=scale, size=shape)
    for j in range(n):
        if (j, j) in pattern:
            dense[..., j, j] = -np.abs(dense[..., :, j]).sum(axis=-1) - scale * rng.random(shape)
    ours = entrywise.dense(entrywise.expm(_entries(dense, pattern), n, shape), n, shape)
    for index in np.ndindex(shape):
        ref = scipy_expm(dense[index])
        np.testing.assert_allclose(ours[index], ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))


def test_expm_of_each_matrix_does_not_depend_on_the_others():
    """Bitwise: a matrix alone and in a stack with a 100-times larger one (scaling is per matrix)."""
    rng = np.random.default_rng(3)
    n = 4
    pattern = [(i, j) for i in range(n) for j in range(i + 1)]
    small = rng.normal(size=(n, n)) * 0.1
    stack = np.stack([small, small * 100.0])
    alone = entrywise.dense(entrywise.expm(_entries(small[None], pattern), n, (1,)), n, (1,))[0]
    both = entrywise.dense(entrywise.expm(_entries(stack, pattern), n, (2,)), n, (2,))[0]
    np.testing.assert_array_equal(alone, both)


def test_products_and_combinations_match_dense_algebra():
    """matmul and combination, with arrays, Python floats and missing (zero) entries, against @."""
    rng = np.random.default_rng(5)
    n, shape = 4, (6,)
    A = {(0, 0): rng.normal(size=shape), (1, 0): 2.5, (3, 1): rng.normal(size=shape), (2, 2): rng.normal(size=shape)}
    B = {(0, 3): rng.normal(size=shape), (0, 0): -1.0, (1, 1): rng.normal(size=shape), (2, 1): rng.normal(size=shape)}
    dA, dB = entrywise.dense(A, n, shape), entrywise.dense(B, n, shape)
    np.testing.assert_allclose(entrywise.dense(entrywise.matmul(A, B), n, shape), dA @ dB, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(entrywise.dense(entrywise.combination([(0.5, A), (-2.0, B)]), n, shape),
                               0.5 * dA - 2.0 * dB, rtol=1e-15, atol=1e-15)
    assert (3, 3) not in entrywise.matmul(A, B)   # no product of entries present in both: not computed


def test_inputs_are_never_written():
    """Sums are formed in place only in arrays the module made: the caller's entries keep their
    values, and read-only views (the engine passes broadcast coefficients) are accepted."""
    rng = np.random.default_rng(8)
    A = {(i, j): rng.normal(size=(3,)) for i in range(3) for j in range(3)}
    A[0, 1] = np.broadcast_to(np.float64(0.7), (3,))   # read-only: a write into it would raise
    before = {e: v.copy() for e, v in A.items()}
    entrywise.expm(A, 3, (3,))
    entrywise.combination([(1.0, A), (1.0, A)])
    entrywise.matmul(A, A)
    assert all(np.array_equal(A[e], before[e]) for e in A)


def test_a_non_finite_matrix_spoils_only_itself():
    """One matrix with an infinite entry: its exponential is not finite, no error is raised, and
    the other matrices of the stack are bitwise what they are alone (the engine flags such a
    patient afterwards, `ecsim.faults`)."""
    rng = np.random.default_rng(9)
    n = 3
    pattern = [(i, j) for i in range(n) for j in range(i + 1)]
    good = rng.normal(size=(n, n)) * 2.0
    bad = good.copy()
    bad[1, 0] = np.inf
    with np.errstate(all="ignore"):
        both = entrywise.dense(entrywise.expm(_entries(np.stack([good, bad]), pattern), n, (2,)), n, (2,))
    alone = entrywise.dense(entrywise.expm(_entries(good[None], pattern), n, (1,)), n, (1,))[0]
    np.testing.assert_array_equal(both[0], alone)
    assert not np.isfinite(both[1]).all()


def test_sums_keep_the_wider_type():
    """A float64 term added to a float32 total is not cast down to float32 in place."""
    A = {(0, 0): np.ones(2, dtype=np.float32)}
    B = {(0, 0): np.full(2, 1e-9)}
    assert entrywise.combination([(1.0, A), (1.0, B)])[0, 0].dtype == np.float64
