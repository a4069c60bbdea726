"""One arm's non-cannabinoid treatments, and what each does at a visit.

| treatment | acts on | model |
|---|---|---|
| levodopa | tonic dopamine (L4) | missing dopamine restored by D / (D + ED50) |
| trihexyphenidyl | corticostriatal plasticity (L4) | the phenotype's D1/D2 weight shift shrinks by theta x D / (D + ED50): M1 blockade restores LTD and depotentiation in DYT1 striatum (Martella 2009); the weights follow with the plasticity time constant |
| GPi stimulation | pallidal output (L4 -> L5) | pathological drive and lost surround inhibition pass at (1 - fast x on) x (1 - slow x (1 - exp(-t_on / tau))): an informational lesion with an immediate part and a slow part that persists when switched off (Vidailhet 2005) |
| sham stimulation | ratings (L6) | device implanted, stimulation off: no effect on the circuit; blinded, so the arm's ratings carry the expectation response |
| botulinum toxin | muscle (L5) | `botulinum.py` |
| physiotherapy | muscle (L5) | the treated region's agonist pull falls by f(t) = Fmax x eta x (1 - exp(-(t - t0) / tau)): a modest, slow effect (Counsell 2016 found none beyond standard advice) |
| placebo | ratings (L6) | `placebo.py` |
| painkillers | pain items only (L6) | `painkillers.py`: the TWSTRS pain subscale and the 'pain' symptom fall by r(t); opioids lose effect to tolerance |
| clonazepam | pathological drive (L4 -> L5) | `oral_agents.py`: involuntary drive and lost surround inhibition pass at (1 - c(t)), with the stimulation's transmission |
| baclofen | segmental reflex gain (L5) | `oral_agents.py`: the pathological drive's segmental amplification falls by b; it passes at (1 - b), with clonazepam's and the stimulation's factors |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import Registry
from ..circuit.regions import agonist
from ..population import lognormal_factor
from .botulinum import BotulinumModel, botulinum_strength
from .oral_agents import OralAgentModel, drive_fraction, gain_fraction
from .painkillers import PainkillerModel, relief_fraction
from .placebo import PlaceboModel, placebo_fraction


@dataclass(frozen=True)
class Course:
    """What an arm receives besides cannabinoids. ``botulinum``/``stimulation`` are scenario objects."""

    levodopa_mg_per_day: float = 0.0
    trihexyphenidyl_mg_per_day: float = 0.0
    botulinum: object | None = None
    stimulation: object | None = None    # with from_day, to_day (None: until the end), sham
    placebo: bool = False
    physiotherapy: object | None = None  # with region, from_day
    painkiller: object | None = None     # with drug, mg_per_day, from_day
    clonazepam_mg_per_day: float = 0.0
    baclofen_mg_per_day: float = 0.0

    @property
    def oral_agents(self) -> bool:
        """Whether the arm takes clonazepam or baclofen (only then are their responses drawn)."""
        return self.clonazepam_mg_per_day > 0 or self.baclofen_mg_per_day > 0


@dataclass(frozen=True)
class TreatmentModels:
    botulinum: BotulinumModel
    placebo: PlaceboModel
    levodopa_ed50: float
    thp_max: float
    thp_ed50: float
    dbs_fast: float
    dbs_slow: float
    dbs_slow_days: float
    physio_max: float = 0.0
    physio_days: float = 28.0
    physio_cv: float = 0.0
    painkiller: PainkillerModel | None = None
    oral: OralAgentModel | None = None

    @classmethod
    def from_registry(cls, registry: Registry) -> "TreatmentModels":
        return cls(BotulinumModel.from_registry(registry), PlaceboModel.from_registry(registry),
                   registry.value("levodopa_ed50", "mg/d"), registry.value("thp_max_normalisation", "dimensionless"),
                   registry.value("thp_ed50", "mg/d"), registry.value("dbs_fast_block", "dimensionless"),
                   registry.value("dbs_slow_block", "dimensionless"), registry.value("dbs_slow_time", "d"),
                   registry.value("physio_max_fraction", "dimensionless"), registry.value("physio_time", "d"),
                   registry.value("physio_bsv_cv", "dimensionless"), PainkillerModel.from_registry(registry),
                   OralAgentModel.from_registry(registry))


def dopamine(tm: TreatmentModels, course: Course, base: np.ndarray, day: float) -> np.ndarray:
    """Tonic dopamine with levodopa from day 0 (the baseline visit is untreated)."""
    dose = course.levodopa_mg_per_day if day > 0 else 0.0
    return base + (1.0 - base) * dose / (dose + tm.levodopa_ed50)


def shift_scale(tm: TreatmentModels, course: Course, day: float) -> float:
    """Fraction of the phenotype's corticostriatal weight shift that trihexyphenidyl leaves."""
    dose = course.trihexyphenidyl_mg_per_day if day > 0 else 0.0
    return max(0.0, 1.0 - tm.thp_max * dose / (dose + tm.thp_ed50))


def transmission(tm: TreatmentModels, course: Course, day: float) -> float:
    """Fraction of pathological pallidal drive that reaches thalamus under GPi stimulation."""
    s = course.stimulation
    if s is None or getattr(s, "sham", False) or day <= s.from_day:
        return 1.0
    end = day if s.to_day is None else min(day, s.to_day)
    on = s.to_day is None or day < s.to_day
    slow = tm.dbs_slow * (1.0 - np.exp(-(end - s.from_day) / tm.dbs_slow_days))
    return float(max(0.0, 1.0 - tm.dbs_fast * on) * max(0.0, 1.0 - slow))


def strength(tm: TreatmentModels, course: Course, day: float, z: np.ndarray,
             z_physio: np.ndarray | None = None) -> np.ndarray:
    """Muscle strength factors (patients x channels): botulinum toxin, then physiotherapy."""
    out = botulinum_strength(tm.botulinum, course.botulinum, day, z)
    if course.physiotherapy is not None:
        out[:, agonist(course.physiotherapy.region)] *= 1.0 - physio_fraction(
            tm, course.physiotherapy, day, np.zeros(len(z)) if z_physio is None else z_physio)
    return out


def drive_scale(tm: TreatmentModels, course: Course, day: float, z_oral: np.ndarray | None,
                n: int) -> np.ndarray | None:
    """Per patient (patients x 1), the share of pathological drive that reaches the muscles past
    clonazepam (supraspinal GABA-A) and baclofen (segmental GABA-B); None without either (the
    read-outs are then computed exactly as before). ``z_oral`` columns: clonazepam, baclofen
    responsiveness."""
    if not course.oral_agents or tm.oral is None:
        return None
    z = np.zeros((n, 2)) if z_oral is None else z_oral
    keep = (1.0 - drive_fraction(tm.oral, course.clonazepam_mg_per_day, day, z[:, 0])) * \
        (1.0 - gain_fraction(tm.oral, course.baclofen_mg_per_day, day, z[:, 1]))
    return keep[:, None]


def physio_fraction(tm: TreatmentModels, physio, day: float, z: np.ndarray) -> np.ndarray:
    """Fraction of the treated region's agonist pull that physiotherapy removes on ``day``."""
    t = day - physio.from_day
    if t <= 0:
        return np.zeros(len(z))
    eta = lognormal_factor(z, tm.physio_cv)
    return np.clip(tm.physio_max * eta * (1.0 - np.exp(-t / tm.physio_days)), 0.0, 0.9)


def rating_scale(tm: TreatmentModels, course: Course, day: float, z: np.ndarray) -> np.ndarray | float:
    """Factor on rated severity: 1 - placebo response, or 1 outside a trial."""
    return 1.0 - placebo_fraction(tm.placebo, day, z) if course.placebo else 1.0


def pain_factor(tm: TreatmentModels, course: Course, day: float, z: np.ndarray | None) -> np.ndarray | None:
    """Factor on the pain items (TWSTRS pain, the 'pain' symptom) from a painkiller; None without one
    (the scales are then computed exactly as before)."""
    if course.painkiller is None or tm.painkiller is None:
        return None
    return 1.0 - relief_fraction(tm.painkiller, course.painkiller, day, z)
