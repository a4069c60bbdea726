"""Non-compartmental analysis on simulated profiles, as a study would do it.

Each function takes times (h) and concentrations (patients × times) restricted to a sampling window
and returns one value per patient. AUC uses the linear-up/log-down trapezoidal rule; the terminal
slope is fitted to the last three or more points by log-linear least squares, choosing the number
of points with the best adjusted R² (the usual NCA convention, e.g. PKNCA/WinNonlin).
"""

from __future__ import annotations

import numpy as np


def cmax(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    return c.max(axis=1)


def tmax(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    return t[np.argmax(c, axis=1)]


def cmin(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    return c.min(axis=1)


def auc_last(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Linear trapezoids where concentrations rise, logarithmic where they fall."""
    dt = np.diff(t)
    c1, c2 = c[:, :-1], c[:, 1:]
    linear = 0.5 * (c1 + c2) * dt
    falling = (c2 < c1) & (c2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = (c1 - c2) * dt / np.log(c1 / c2)
    return np.where(falling, log, linear).sum(axis=1)


def lambda_z(t: np.ndarray, c: np.ndarray, min_points: int = 3) -> np.ndarray:
    """Terminal elimination rate constant (1/h) per patient."""
    out = np.full(c.shape[0], np.nan)
    for i, row in enumerate(c):
        out[i] = _best_terminal_slope(t, row, min_points)
    return out


def _best_terminal_slope(t: np.ndarray, c: np.ndarray, min_points: int) -> float:
    peak = int(np.argmax(c))
    keep = np.arange(len(c)) > peak
    tt, cc = t[keep & (c > 0)], c[keep & (c > 0)]
    best, best_r2 = np.nan, -np.inf
    for k in range(min_points, len(tt) + 1):
        x, y = tt[-k:], np.log(cc[-k:])
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        ss_tot = np.sum((y - y.mean()) ** 2)
        r2 = 1 - np.sum(resid**2) / ss_tot if ss_tot > 0 else 0.0
        adj = 1 - (1 - r2) * (k - 1) / (k - 2)
        if slope < 0 and adj > best_r2 - 1e-4:
            best, best_r2 = -slope, max(adj, best_r2)
    return best


def t_half(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.log(2) / lambda_z(t, c)


def auc_inf(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    return auc_last(t, c) + c[:, -1] / lambda_z(t, c)


MEASURES = {"cmax": cmax, "tmax": tmax, "cmin": cmin, "auc_last": auc_last, "auc_inf": auc_inf,
            "t_half": t_half}
