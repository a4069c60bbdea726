"""Patients of several phenotypes assessed in one batch (`circuit.clinical.assess` with one
phenotype name per patient): each patient's results must be bitwise those of their phenotype
assessed alone, the only way a batch could be assessed before (one name for every patient)."""

import re

import numpy as np
import pytest

from ecsim.circuit import clinical
from ecsim.circuit.clinical import ClinicalModel, assess, drug_free_drivers, first_guess, first_guesses
from ecsim.circuit.phenotypes import PHENOTYPES
from ecsim.claims.context import phenotype_numbers, typical_patient
from ecsim.errors import InputError
from ecsim.treatments.course import Course

DAYS = np.array([0.0, 14.0, 28.0])
COURSE = Course(levodopa_mg_per_day=150.0, trihexyphenidyl_mg_per_day=6.0, placebo=True, clonazepam_mg_per_day=1.0)
START, SEED = 37, 11   # a chunk that does not start at patient 0


@pytest.fixture(scope="module")
def cm(registry):
    return ClinicalModel.from_registry(registry)


def _labels(n: int) -> np.ndarray:
    """Every phenotype, spread over the batch in a shuffled order (runs of one and of several)."""
    names = np.array(sorted(PHENOTYPES))
    return np.random.default_rng(3).permutation(np.resize(names, n))


def _drivers(n: int) -> dict[str, np.ndarray]:
    """CB1 release factors and plasticity signal below the drug-free ones, varying per patient and visit."""
    rng = np.random.default_rng(5)
    return {k: v * rng.uniform(0.7, 1.0, v.shape) for k, v in drug_free_drivers(n, len(DAYS)).items()}


def _fields(tr) -> dict[str, np.ndarray]:
    return {**{f"totals.{k}": v for k, v in tr.totals.items()}, **{f"regions.{k}": v for k, v in tr.regions.items()},
            **{f"symptoms.{k}": v for k, v in tr.symptoms.items()}, "converged": tr.converged}


@pytest.mark.parametrize("expected_scores", [False, True])
def test_mixed_batch_is_bitwise_each_phenotype_alone(registry, cm, expected_scores):
    n = 2 * len(PHENOTYPES) + 5
    labels, drivers = _labels(n), _drivers(n)
    run = lambda phenotype: assess(cm, registry, phenotype, DAYS, drivers, COURSE, SEED, START, START + n,  # noqa: E731
                                   expected_scores=expected_scores)
    mixed = _fields(run(labels))
    for name in PHENOTYPES:
        alone, rows = _fields(run(name)), labels == name
        for k, v in mixed.items():
            assert v[rows].tobytes() == alone[k][rows].tobytes(), (name, k)


def test_first_guesses_solved_together_are_bitwise_each_alone(registry, cm):
    names = sorted(PHENOTYPES)
    clinical._GUESSES.clear()
    alone = [first_guess(cm, registry, name) for name in names]
    clinical._GUESSES.clear()
    together = first_guesses(cm, registry, names)
    for name, a, t in zip(names, alone, together):
        for protocol, state in a.items():
            for unit, v in state.items():
                assert v.shape == t[protocol][unit].shape and v.tobytes() == t[protocol][unit].tobytes(), \
                    (name, protocol, unit)


def test_labels_of_one_phenotype_take_the_single_phenotype_path(registry, cm):
    one = assess(cm, registry, np.array(["tor1a"] * 4), DAYS[:1], drug_free_drivers(4, 1), Course(), 2, 0, 4)
    alone = assess(cm, registry, "tor1a", DAYS[:1], drug_free_drivers(4, 1), Course(), 2, 0, 4)
    for k, v in _fields(one).items():
        assert np.array_equal(v, _fields(alone)[k]), k


def test_phenotype_numbers_match_each_typical_patient_alone(registry):
    levodopa = [("drd", 300.0), ("parkinsons", 600.0), ("tor1a", 300.0)]   # doses interleaved: order kept
    numbers = phenotype_numbers(registry, levodopa)
    for name in PHENOTYPES:
        tr = typical_patient(registry, name)
        assert numbers["by_phenotype"][name]["bfmdrs_movement"] == float(tr.totals["bfmdrs_movement"][0, 0])
        assert numbers["by_phenotype"][name]["symptoms"] == {s: float(v[0, 0]) for s, v in tr.symptoms.items()}
    assert list(numbers["levodopa"]) == [f"{p} on levodopa {d:g} mg/day" for p, d in levodopa]
    for (name, dose), scales in zip(levodopa, numbers["levodopa"].values()):
        tr = typical_patient(registry, name, dose, days=(0.0, 28.0))
        assert scales == {k: {"before": float(v[0, 0]), "after": float(v[0, 1])} for k, v in tr.totals.items()}


@pytest.mark.parametrize("labels, shown", [(np.array(["cervical"] * 3), "'labels of shape (3,)'"),
                                           (np.array(["cervical", "dyt99"]), "'dyt99'")])
def test_bad_labels_name_the_field_and_value(registry, cm, labels, shown):
    with pytest.raises(InputError, match="^phenotype: got " + re.escape(shown) + "; allowed: "):
        assess(cm, registry, labels, DAYS[:1], drug_free_drivers(2, 1), Course(), 1, 0, 2)
