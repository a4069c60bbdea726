"""Causes of dystonia as sourced perturbations of the circuit, one phenotype per cause.

Each phenotype turns registry parameters (``pheno_*``) and one standard-normal draw per patient
into per-channel modulators of the circuit: tonic dopamine, thalamo-cortical loop gain, baseline
corticostriatal weights, loss of D2-MSN or GPi output. Patient severity varies lognormally around
the registry value (median = registry value).

| phenotype | cause in the article | mechanism in the model | source |
|---|---|---|---|
| cervical, blepharospasm, laryngeal, leg | genetics / unknown (focal) | raised loop gain in one region | Sanger & Merzenich 2000 |
| writers_cramp | focal, task-specific | raised loop gain below runaway | Sanger & Merzenich 2000 |
| tor1a | genetics (DYT1) | D1 > D2 corticostriatal weights in limbs and trunk | Gilbertson 2019, 2020; fitted to Vidailhet 2005 |
| drd | genetics (GCH1), transmitter abnormality | putamen dopamine 8 % | Rajput 1994 |
| lesion | basal-ganglia damage | GPi output lost on one side | Bhatia & Marsden 1994 |
| parkinsons | Parkinson's disease | putamen dopamine ~5 % | Kish 1988 (assumption) |
| huntingtons | Huntington's disease | D2-MSN (indirect) output lost | Reiner 1988 |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..population import lognormal_factor
from ..registry import Registry
from .regions import CRANIAL, LIMBS, N_CHANNELS, REGIONS, agonist, antagonist

Modulators = dict[str, np.ndarray]


@dataclass(frozen=True)
class Phenotype:
    name: str
    label: str
    cause: str
    sources: tuple[str, ...]
    build: Callable[[Registry, np.ndarray], Modulators] = field(repr=False)
    focus: tuple[str, ...] = ()   # regions where symptoms start


def _ones(n: int) -> np.ndarray:
    return np.ones((n, N_CHANNELS))


def _focal(region: str, gain_name: str, modulator: str = "loop_gain") -> Callable[[Registry, np.ndarray], Modulators]:
    """A raised thalamo-cortical loop gain on one region's channels; ``modulator="task_loop_gain"``
    raises it only while the task (the full action) is performed (`network._task_gain`)."""
    def build(registry: Registry, z: np.ndarray) -> Modulators:
        excess = (registry[gain_name].value - 1.0) * lognormal_factor(z, registry["pheno_focal_loop_gain_cv"].value)
        gain = _ones(len(z))
        gain[:, agonist(region)] += excess
        gain[:, antagonist(region)] += registry["pheno_focal_antagonist_share"].value * excess
        return {modulator: gain}
    return build


def _tor1a(registry: Registry, z: np.ndarray) -> Modulators:
    shift = registry["pheno_tor1a_corticostriatal_shift"].value * lognormal_factor(z, registry["pheno_tor1a_cv"].value)
    neck = registry["pheno_tor1a_neck_share"].value
    weight = {r: 1.0 if r in (*LIMBS, "trunk") else neck if r == "neck" else 0.0 for r in REGIONS}
    per_channel = np.repeat([weight[r] for r in REGIONS], 2)
    s = np.clip(shift[:, None] * per_channel, 0.0, 0.95)   # keeps the D2 weight positive
    return {"corticostriatal_d1": 1.0 + s, "corticostriatal_d2": 1.0 - s}


def _dopamine(level_name: str) -> Callable[[Registry, np.ndarray], Modulators]:
    """Putamen dopamine (relative to normal) per patient, spread over regions as a power of it.

    A region's level is ``putamen ** exponent`` (putamen capped at normal): exponents above 1
    deepen the deficit (legs), below 1 soften it (cranial). Unlike a multiplier, a power leaves
    every region normal when the putamen is and never lifts a region above normal, so a milder
    deficit never gives more dystonia through one region outrunning the others (docs/circuit.md).
    """
    def build(registry: Registry, z: np.ndarray) -> Modulators:
        mean = np.clip(registry[level_name].value * lognormal_factor(z, registry["pheno_severity_cv"].value), 0.0, 1.0)
        leg = registry["pheno_dopamine_leg_exponent"].value
        cranial = registry["pheno_dopamine_cranial_exponent"].value
        exponent = {r: leg if r.startswith("leg") else cranial if r in CRANIAL else 1.0 for r in REGIONS}
        per_channel = np.repeat([exponent[r] for r in REGIONS], 2)
        return {"dopamine": mean[:, None] ** per_channel}
    return build


def _lesion(registry: Registry, z: np.ndarray) -> Modulators:
    loss = np.clip(registry["pheno_lesion_gpi_loss"].value * lognormal_factor(z, registry["pheno_severity_cv"].value), 0, 1)
    out = _ones(len(z))
    for region in ("arm_right", "leg_right"):
        out[:, agonist(region)] -= loss
        out[:, antagonist(region)] -= loss
    return {"gpi_output": out}


def _huntingtons(registry: Registry, z: np.ndarray) -> Modulators:
    loss = np.clip(registry["pheno_hd_indirect_loss"].value * lognormal_factor(z, registry["pheno_severity_cv"].value), 0, 1)
    return {"d2_output": _ones(len(z)) * (1.0 - loss[:, None])}


def _normal(registry: Registry, z: np.ndarray) -> Modulators:
    return {}


PHENOTYPES = {p.name: p for p in [
    Phenotype("normal", "no dystonia", "none", (), _normal),
    Phenotype("cervical", "cervical dystonia (spasmodic torticollis)", "focal, idiopathic or genetic",
              ("sanger2000",), _focal("neck", "pheno_focal_loop_gain"), ("neck",)),
    Phenotype("blepharospasm", "blepharospasm", "focal, idiopathic", ("sanger2000",),
              _focal("eyes", "pheno_focal_loop_gain"), ("eyes",)),
    Phenotype("laryngeal", "laryngeal dystonia (spasmodic dysphonia)", "focal, idiopathic", ("sanger2000",),
              _focal("larynx", "pheno_focal_loop_gain"), ("larynx",)),
    Phenotype("writers_cramp", "writer's cramp (task-specific arm dystonia)", "focal, task-specific",
              ("sanger2000",), _focal("arm_right", "pheno_task_specific_loop_gain", "task_loop_gain"), ("arm_right",)),
    Phenotype("leg", "focal leg dystonia", "focal, idiopathic", ("sanger2000",),
              _focal("leg_right", "pheno_focal_loop_gain"), ("leg_right",)),
    Phenotype("tor1a", "generalised TOR1A (DYT1) dystonia", "genetic", ("gilbertson2019", "vidailhet2005"),
              _tor1a, LIMBS),
    Phenotype("drd", "dopa-responsive dystonia (GCH1)", "genetic; transmitter abnormality", ("rajput1994",),
              _dopamine("pheno_drd_putamen_dopamine"), ("leg_right", "leg_left")),
    Phenotype("lesion", "hemidystonia after a lentiform lesion", "basal-ganglia damage", ("bhatia1994",),
              _lesion, ("arm_right", "leg_right")),
    Phenotype("parkinsons", "dystonia in Parkinson's disease", "Parkinson's disease", (),
              _dopamine("pheno_pd_putamen_dopamine"), ("leg_right", "leg_left")),
    Phenotype("huntingtons", "dystonia in Huntington's disease", "Huntington's disease", ("reiner1988",),
              _huntingtons, ()),
]}


def phenotype_modulators(name: str, registry: Registry, z: np.ndarray) -> Modulators:
    """Per-channel modulators (patients x channels) for ``len(z)`` patients of one phenotype."""
    return PHENOTYPES[name].build(registry, z)

PARKINSONIAN = frozenset({"parkinsons"})
"""Phenotypes whose patients have parkinsonian features (hypokinesia, rest tremor): the subgroup in
which Consroe 1986 saw high-dose CBD worsen them (`treatments.adverse.parkinsonism_worse`)."""
