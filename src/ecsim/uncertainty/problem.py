"""Uncertain parameters as factors: each registry parameter's `uncertainty` (how unsure we are of its
value, not how patients differ) becomes an inverse CDF from the unit interval, so any sampler on
[0, 1]^D (SALib's Saltelli and Morris designs, plain Monte Carlo) gives parameter values."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

from ..registry import Registry

EPS = 1e-6   # keeps unit samples off 0 and 1, where normal and lognormal quantiles are infinite
LOG_UNIFORM_RATIO = 3.0
# Parameters read from per-patient values (layers L0-L3: products, absorption, PK, targets, tone),
# which a batch can vary patient by patient. Circuit and clinical parameters are read from the
# registry as scalars and are not factors yet (docs/uncertainty.md).
L0_L3_PREFIXES = ("cbd_f_", "cbd_food_factor", "cbd_fed_rate", "cbd_sedds", "cbd_ka_", "thc_f", "thc_food",
                  "thc_fed", "full_spectrum_", "broad_spectrum_", "oromucosal_")


def unit_draws(names: list[str], draws: int, seed: int, stream: int) -> np.ndarray:
    """Uniform draws on [0, 1), ``draws`` × ``len(names)``: each parameter's column from its own
    random stream (``seed``, ``stream`` and a checksum of the name), so that adding, removing or
    reordering parameters leaves every other parameter's draws as they were. (One stream for the
    whole matrix redrew every parameter when one was added, which moved intervals that rest on a
    few tail draws by more than the change itself.)"""
    columns = [np.random.default_rng([seed, stream, zlib.crc32(name.encode())]).random(draws) for name in names]
    return np.column_stack(columns) if columns else np.empty((draws, 0))


@dataclass(frozen=True)
class Factor:
    """One uncertain input: its distribution around ``center`` (the registry value)."""

    name: str
    distribution: str          # lognormal | normal | uniform
    center: float
    spread: tuple[float, ...]  # lognormal: (cv,), normal: (sd,), uniform: (low, high)
    unit: str = ""
    source: str = ""
    upper: float | None = None   # the registry's physical `max` (1 for a fraction)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        """Values at probabilities ``u``. Normal draws of a positive parameter are truncated at zero;
        uniform ranges wider than LOG_UNIFORM_RATIO (high/low) are taken as log-uniform, so that a
        reported range of potencies spanning decades is not dominated by its upper end. With
        ``upper``, lognormal and normal draws come from the distribution truncated there (u is
        rescaled to the probability below ``upper``): a fraction fitted at 0.7 with a lognormal CV of
        0.29 would otherwise exceed 1 in a tenth of the draws."""
        u = np.clip(u, EPS, 1 - EPS)
        if self.distribution == "lognormal":
            sigma = np.sqrt(np.log1p(self.spread[0] ** 2))
            if self.upper is not None:
                u = u * ndtr(np.log(self.upper / self.center) / sigma)
            return self.center * np.exp(sigma * ndtri(u))
        if self.distribution == "normal":
            if self.upper is not None:
                u = u * ndtr((self.upper - self.center) / self.spread[0])
            q = self.center + self.spread[0] * ndtri(u)
            return np.maximum(q, 0.0) if self.center > 0 else q
        low, high = self.spread
        if low > 0 and high / low > LOG_UNIFORM_RATIO:
            return low * (high / low) ** u
        return low + (high - low) * u


@dataclass(frozen=True)
class Problem:
    """Factors, and groups of them whose draws are correlated: (factor indices, lower Cholesky
    factor of their correlation) through a Gaussian copula. The groups are the values fitted
    together to one calibration stage (`fitted_correlations`)."""

    factors: tuple[Factor, ...]
    correlated: tuple[tuple[tuple[int, ...], np.ndarray], ...] = ()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.factors]

    def salib(self) -> dict:
        """SALib's problem on the unit hypercube; `values` maps its samples to parameter values."""
        return {"num_vars": len(self.factors), "names": self.names, "bounds": [[0.0, 1.0]] * len(self.factors)}

    def independent(self) -> "Problem":
        """The same factors drawn independently: Morris and Sobol designs move one factor at a time
        and assume independent inputs, so they use this (docs/uncertainty.md)."""
        return Problem(self.factors)

    def correlated_unit(self, unit: np.ndarray) -> np.ndarray:
        """Independent uniform draws (draws x factors) made correlated within each group: each
        value's own quantile, so ranks (Spearman) can be taken on it."""
        if not self.correlated:
            return unit
        z = ndtri(np.clip(unit, EPS, 1 - EPS))
        for idx, chol in self.correlated:
            z[:, idx] = z[:, idx] @ chol.T
        return ndtr(z)

    def values(self, unit: np.ndarray) -> np.ndarray:
        unit = self.correlated_unit(unit)
        return np.column_stack([f.quantile(unit[:, j]) for j, f in enumerate(self.factors)])


def from_registry(registry: Registry, names: list[str]) -> Problem:
    """Factors for the named parameters, skipping any whose uncertainty has zero width and any the
    scenario overrides (a value the user set is held, not drawn)."""
    factors = []
    for name in names:
        p = registry[name]
        if (p.reason or "").startswith("user override"):   # the scenario fixed it: not a factor
            continue
        u = p.uncertainty
        spread = {"lognormal": (u.cv,), "normal": (u.sd,), "uniform": (u.low, u.high)}[u.distribution]
        if not spread or any(s is None for s in spread) or (len(spread) == 1 and spread[0] <= 0) or \
                (len(spread) == 2 and spread[1] <= spread[0]):
            continue
        factors.append(Factor(name, u.distribution, p.value, tuple(float(s) for s in spread), p.unit, p.source, p.max))
    return Problem(tuple(factors), _groups([f.name for f in factors]))


def _groups(names: list[str]) -> tuple[tuple[tuple[int, ...], np.ndarray], ...]:
    """The fitted stages' correlations among the factors present (a member held fixed, e.g. by a
    scenario override, leaves the group: the others keep their correlations with each other)."""
    index = {n: i for i, n in enumerate(names)}
    groups = []
    for members, matrix in fitted_correlations():
        keep = [k for k, n in enumerate(members) if n in index]
        if len(keep) < 2:
            continue
        sub = matrix[np.ix_(keep, keep)]
        groups.append((tuple(index[members[k]] for k in keep), np.linalg.cholesky(sub + 1e-9 * np.eye(len(keep)))))
    return tuple(groups)


def fitted_correlations() -> list[tuple[list[str], np.ndarray]]:
    """Correlations of the log-values fitted together (fitted.yaml's ``correlations``, written by
    `python -m ecsim.calibration --write` from the fit's Laplace covariance)."""
    return [(list(names), matrix.copy()) for names, matrix in _fitted_correlations()]


@lru_cache(maxsize=1)
def _fitted_correlations() -> tuple[tuple[tuple[str, ...], np.ndarray], ...]:
    from importlib import resources

    import yaml
    path = resources.files("ecsim.registry").joinpath("parameters").joinpath("fitted.yaml")
    block = yaml.safe_load(path.read_text()).get("correlations") or {}
    return tuple((tuple(g["parameters"]), np.array(g["matrix"], dtype=float)) for g in block.values())


# The irreversible FAAH inhibitor PF-04457845 (a research compound: validation cases only) and the FAAH
# turnover it alone drives: no CBD scenario is sensitive to them, and as factors they would only
# reshuffle every other factor's random draws.
TOOL_COMPOUND = ("pf04457845_", "faah_degradation_rate")


def file_parameters(*files: str) -> set[str]:
    """Names of the parameters defined in the given registry files (``src/ecsim/registry/parameters``)."""
    from importlib import resources

    import yaml
    folder = resources.files("ecsim.registry").joinpath("parameters")
    return {name for f in files for name in yaml.safe_load(folder.joinpath(f).read_text())["parameters"]}


def drug_layer_parameters(registry: Registry) -> list[str]:
    """The parameters of layers L0-L3 that vary per patient in a batch (see L0_L3_PREFIXES)."""
    from ..chain import full_model
    names = set(full_model().parameters) | {n for n in registry.parameters if n.startswith(L0_L3_PREFIXES)}
    names.add("cbd_faah_ic50_human")     # the model reads it through the species covariate cbd_faah_ic50_uM
    return sorted(n for n in names if n in registry.parameters and not n.startswith(TOOL_COMPOUND))
