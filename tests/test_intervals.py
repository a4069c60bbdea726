"""The 95 % intervals every table uses, against SciPy's own t and Welch intervals."""

import numpy as np
import pytest
from scipy import stats

from ecsim.intervals import half_width, mean_interval, welch_interval


@pytest.mark.parametrize("n", [2, 20, 400])
def test_mean_interval_is_scipys_t_interval(n):
    x = np.random.default_rng(n).normal(3.0, 2.0, n)
    expected = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
    m, lo, hi = mean_interval(x)
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(expected, rel=1e-12)


def test_welch_interval_is_scipys():
    rng = np.random.default_rng(7)
    a, b = rng.normal(1.0, 1.0, 15), rng.normal(0.0, 3.0, 40)
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    diff, lo, hi = welch_interval(a, b)
    assert diff == pytest.approx(a.mean() - b.mean()) and (lo, hi) == pytest.approx(tuple(expected), rel=1e-12)


def test_small_samples_get_wider_intervals_than_the_normal_approximation():
    x = np.random.default_rng(1).normal(0.0, 1.0, 20)
    assert half_width(x) == pytest.approx(2.093 * x.std(ddof=1) / np.sqrt(20), rel=1e-3)
    assert half_width(x[:1]) == 0.0 and mean_interval(np.array([2.0])) == (2.0, 2.0, 2.0)


def test_half_width_along_an_axis_is_per_column():
    x = np.random.default_rng(2).normal(0.0, 1.0, (30, 4))
    assert half_width(x, axis=0) == pytest.approx([half_width(x[:, k]) for k in range(4)])


def test_welch_interval_without_spread():
    """Both arms constant: the difference is known exactly; one constant arm: SciPy's interval."""
    assert welch_interval(np.full(5, 2.0), np.full(7, 0.5)) == (1.5, 1.5, 1.5)
    a, b = np.full(6, 1.0), np.random.default_rng(3).normal(0.0, 1.0, 9)
    with pytest.warns(RuntimeWarning):   # SciPy warns about the constant arm (precision loss), then computes it
        expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert welch_interval(a, b)[1:] == pytest.approx(tuple(expected), rel=1e-12)
