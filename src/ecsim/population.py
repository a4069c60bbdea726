"""Virtual patients: covariates and between-subject variability, reproducible under any chunking.

Random numbers come in fixed blocks of patients, each block seeded by (seed, block index), so
patient i receives the same draws whether the population is simulated at once, in chunks, or on
several Dask workers. Lognormal variability keeps the registry value as the median.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.special import ndtr

from .products import Food, Product
from .registry import Registry

BLOCK = 1024
FIXED_DRAWS = ("body_weight", "cyp2c19", "cbd_f_oral", "label_category", "label_magnitude")


class Hepatic(str, Enum):
    normal = "normal"
    mild = "mild"
    moderate = "moderate"
    severe = "severe"


class CYP2C19(str, Enum):
    population = "population"
    poor = "poor"
    intermediate = "intermediate"
    normal = "normal"
    rapid = "rapid"


@dataclass(frozen=True)
class Demographics:
    """Who the patients are. Weight in kg, normal, clipped to [min, max]."""

    weight_mean_kg: float = 80.0
    weight_sd_kg: float = 16.0
    weight_min_kg: float = 40.0
    weight_max_kg: float = 160.0
    hepatic: Hepatic = Hepatic.normal
    cyp2c19: CYP2C19 = CYP2C19.population
    typical: bool = False


def draws(seed: int, start: int, stop: int, names: tuple[str, ...], typical: bool = False
          ) -> dict[str, np.ndarray]:
    """Standard-normal draws for patients [start, stop), one column per name, chunk-invariant.

    ``typical`` gives zeros: every patient is the typical patient (median of every distribution).
    """
    if typical:
        return {name: np.zeros(stop - start) for name in names}
    z = block_normals((seed,), start, stop, len(names))
    return {name: z[:, i] for i, name in enumerate(names)}


def block_normals(key: tuple[int, ...], start: int, stop: int, width: int) -> np.ndarray:
    """Standard normals (patients [start, stop) x width) from the stream ``key``, drawn in fixed
    blocks of patients seeded by (*key, block): the same numbers whatever the chunking."""
    first, last = start // BLOCK, (stop - 1) // BLOCK
    blocks = [np.random.default_rng([*key, b]).standard_normal((BLOCK, width)) for b in range(first, last + 1)]
    return np.concatenate(blocks)[start - first * BLOCK: stop - first * BLOCK]


PHENOTYPE_STREAM = (7919, 101)
"""Key of the phenotype draws of a mixed population: after the clinical layer's (seed, 7919) streams."""


def phenotype_labels(seed: int, start: int, stop: int, mix: dict[str, float]) -> np.ndarray:
    """Phenotype of patients [start, stop) of a population mixed with weights ``mix``: one uniform
    per patient from its own stream, cut at the cumulative weights (phenotypes in alphabetical
    order, so the order of the scenario's mapping does not matter). Drawn even for a typical
    population: the mix is who is in the trial, not spread between patients."""
    names = sorted(mix)
    edges = np.cumsum([mix[k] for k in names]) / sum(mix.values())
    u = ndtr(block_normals((seed, *PHENOTYPE_STREAM), start, stop, 1)[:, 0])
    return np.array(names)[np.minimum(np.searchsorted(edges, u, side="right"), len(names) - 1)]


def lognormal_factor(z: np.ndarray, cv: float) -> np.ndarray:
    """exp(sigma z) with sigma from the geometric CV: median 1, so registry values stay medians."""
    return np.exp(_sigma(cv) * z)


def variable_parameters(registry: Registry, names: list[str]) -> tuple[str, ...]:
    return tuple(sorted(n for n in names if registry[n].variability is not None))


def patient_values(registry: Registry, names: list[str], demo: Demographics, product: Product,
                   food: Food, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
    """Per-patient parameter and covariate values for patients [start, stop)."""
    n = stop - start
    variable = variable_parameters(registry, names)
    z = draws(seed, start, stop, FIXED_DRAWS + variable, demo.typical)
    values = {name: np.full(n, registry[name].value) for name in names}
    for name in variable:   # a bounded fraction (registry max) stops at its bound: a patient's F never exceeds 1
        values[name] = np.minimum(values[name] * np.exp(_sigma(registry[name].variability.cv) * z[name]),
                                  registry[name].max if registry[name].max is not None else np.inf)
    values["body_weight_kg"] = np.clip(demo.weight_mean_kg + demo.weight_sd_kg * z["body_weight"],
                                       demo.weight_min_kg, demo.weight_max_kg)
    values["cyp2c19_activity"] = _cyp2c19_activity(registry, demo.cyp2c19, ndtr(z["cyp2c19"]))
    values["hepatic_cbd_cl_factor"] = np.full(n, _hepatic_factor(registry, demo.hepatic))
    bsv_f = registry["cbd_bsv_f_fasted" if food is Food.fasted else "cbd_bsv_f_fed"].value
    values["cbd_f_oral_eta"] = np.exp(_sigma(bsv_f) * z["cbd_f_oral"])
    values["label_content_factor"] = _label_factor(registry, product, z)
    if demo.typical:
        # the categorical draws have no median patient (z = 0 would land in one category):
        # the typical patient is a normal metaboliser taking a product that holds what its label says
        values["label_content_factor"] = np.ones(n)
        if demo.cyp2c19 is CYP2C19.population:
            values["cyp2c19_activity"] = np.ones(n)
    return values


def _sigma(cv: float) -> float:
    """Log-scale SD of a lognormal with geometric coefficient of variation ``cv``."""
    return float(np.sqrt(np.log1p(cv * cv)))


def _hepatic_factor(registry: Registry, hepatic: Hepatic) -> float:
    """Clearance multiplier: the inverse of the measured AUC fold (Taylor 2019)."""
    return 1.0 if hepatic is Hepatic.normal else 1.0 / registry[f"hepatic_auc_fold_{hepatic.value}"].value


def _cyp2c19_activity(registry: Registry, phenotype: CYP2C19, u: np.ndarray) -> np.ndarray:
    act = {k: registry[f"cyp2c19_activity_{k}"].value for k in ("pm", "im", "rm")} | {"nm": 1.0}
    fixed = {CYP2C19.poor: "pm", CYP2C19.intermediate: "im", CYP2C19.normal: "nm", CYP2C19.rapid: "rm"}
    if phenotype in fixed:
        return np.full(u.shape, act[fixed[phenotype]])
    p_pm, p_im, p_rm = (registry[f"cyp2c19_freq_{k}"].value for k in ("pm", "im", "rm"))
    edges = np.cumsum([p_pm, p_im, p_rm])
    return np.select([u < edges[0], u < edges[1], u < edges[2]], [act["pm"], act["im"], act["rm"]], act["nm"])


def _label_factor(registry: Registry, product: Product, z: dict[str, np.ndarray]) -> np.ndarray:
    """Actual/labelled CBD content; exact for pharmaceutical products (Bonn-Miller 2017 otherwise)."""
    if product is Product.pharmaceutical:
        return np.ones_like(z["label_category"])
    u, m = ndtr(z["label_category"]), z["label_magnitude"]
    accurate, under = registry["label_accurate_fraction"].value, registry["label_under_fraction"].value
    within = 0.9 + 0.2 * ndtr(m)
    spread = np.exp(0.5 * m)  # assumption: the excess or shortfall beyond ±10 % varies lognormally
    more = 1.1 + (registry["label_under_median_ratio"].value - 1.1) * spread
    less = np.maximum(0.9 - (0.9 - registry["label_over_median_ratio"].value) * spread, 0.02)
    return np.select([u < accurate, u < accurate + under], [within, more], less)
