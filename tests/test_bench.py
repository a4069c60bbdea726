"""`ecsim bench`: the three contenders solve the same patients to the same answer, and the JSON has
its keys. A correctness test only: wall-clock times are measured by the benchmark, never asserted."""

import json
import math

import numpy as np
import pytest

from .test_scenario import run_cli

pytest.importorskip("roadrunner")

from ecsim.bench import COMPARED, EXTRA_KEYS, KEYS, max_rel_error, run_bench  # noqa: E402
from ecsim.simulation import CHUNK  # noqa: E402


@pytest.fixture(scope="module")
def result():
    return run_bench(4, reference_patients=2, roadrunner_patients=4, scipy_patients=2, days=2)


def test_json_has_the_keys(result):
    doc = json.loads(json.dumps(result.as_json(), allow_nan=False))
    assert set(doc) == set(KEYS) | set(EXTRA_KEYS) | {"machine", "definitions"}
    assert doc["patients"] == 4 and doc["backend"] == "numpy" and doc["chunk"] == CHUNK and doc["compile_s"] == 0
    assert math.isfinite(doc["ratio_vs_roadrunner"]) and doc["ratio_vs_roadrunner"] > 0
    assert doc["peak_rss_mb"] > 0 and doc["machine"]["usable_cores"] >= 1
    assert set(KEYS[1:]) <= set(doc["definitions"])


def test_workload_counts_the_states_of_the_exported_sbml(result):
    """The definitions' state count is the number of rate rules in the SBML that libroadrunner runs
    (read as XML: python-libsbml imported after roadrunner crashes the process)."""
    import xml.etree.ElementTree as ET

    from ecsim.bench import Workload
    from ecsim.model.sbml import to_sbml
    work = Workload.build(2)
    states = sum(el.tag.endswith("}rateRule") for el in ET.fromstring(to_sbml(work.model, work.registry)).iter())
    assert f"({states} ODE states" in result.as_json()["definitions"]["workload"]


def test_contenders_agree_on_the_same_patients(result):
    """Against the tight-tolerance reference, relative to each output's peak over time: ecsim within
    2e-4 (the engine's stated accuracy at a 1 h step, tests/test_engine.py; measured 7.8e-5, in the CB1
    tolerance state), libroadrunner and SciPy at rtol 1e-6 within 1e-4 (measured 1.4e-6 and 4e-7)."""
    for c in (result.ecsim, result.roadrunner, result.scipy, result.reference):
        assert c.outputs.shape[1:] == (49, len(COMPARED)) and np.all(np.isfinite(c.outputs)), c.name
    errors = result.errors()
    assert errors["ecsim"] < 2e-4
    assert errors["libroadrunner"] < 1e-4 and errors["scipy"] < 1e-4
    assert max_rel_error(result.ecsim.outputs, result.roadrunner.outputs) < 2e-4
    assert np.all(np.abs(result.reference.outputs).max(axis=1) > 0), "every compared output moves"


def test_max_rel_error_is_relative_to_each_peak():
    ref = np.zeros((1, 3, 2))
    ref[0, :, 0], ref[0, :, 1] = [0.0, 10.0, 5.0], [0.0, 1e-3, 0.0]
    ours = ref.copy()
    ours[0, 2, 0] += 0.1
    ours[0, 1, 1] += 1e-6
    assert max_rel_error(ours, ref) == pytest.approx(1e-2)


def test_cli_json_and_bad_option():
    res = run_cli("bench", "--patients", "2", "--reference-patients", "1", "--days", "1", "--json")
    assert res.returncode == 0, res.stderr
    assert set(KEYS) <= set(json.loads(res.stdout))
    bad = run_cli("bench", "--patients", "3", "--reference-patients", "9")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--reference-patients" in bad.stderr


def test_cli_rejects_unknown_backend_and_contenders():
    for flag, value in (("--backend", "cuda"), ("--contenders", "roadrunner,scipy"), ("--contenders", "ecsim,copasi"),
                        ("--chunk", "0")):
        bad = run_cli("bench", "--patients", "5", flag, value)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and flag in bad.stderr and "Traceback" not in bad.stderr


def test_contenders_can_be_left_out():
    """Only ecsim and the reference: the keys of the others are null, the JSON is still valid."""
    only = run_bench(3, reference_patients=1, days=1, contenders=("ecsim",))
    doc = json.loads(json.dumps(only.as_json(), allow_nan=False))
    assert doc["roadrunner_patients_per_s"] is None and doc["scipy_patients_per_s"] is None
    assert doc["ratio_vs_roadrunner"] is None and doc["max_rel_error_vs_reference"] < 2e-4
    assert "not run" in doc["definitions"]["roadrunner_patients_per_s"]


@pytest.fixture(scope="module")
def jax_result():
    pytest.importorskip("jax", reason="jax is optional (pip install jax)")
    return run_bench(5, reference_patients=2, days=2, backend="jax", chunk=3, contenders=("ecsim",))


def test_jax_backend_gives_the_numpy_engines_outputs(result, jax_result):
    """Same patients, same outputs: JAX's kept outputs within 1e-10 of the NumPy engine's (rounding
    only, tests/test_engine_jax.py), so its error against the reference is the NumPy engine's."""
    doc = json.loads(json.dumps(jax_result.as_json(), allow_nan=False))
    assert doc["backend"] == "jax" and doc["device"] and doc["chunk"] == 3 and doc["compile_s"] > 0
    assert doc["machine"]["jax"] == __import__("jax").__version__
    ours, theirs = jax_result.ecsim.outputs, result.ecsim.outputs
    assert ours.shape == theirs.shape
    assert max_rel_error(ours, theirs) < 1e-10
    assert doc["max_rel_error_vs_reference"] == pytest.approx(result.errors()["ecsim"], rel=1e-6)


def test_cli_jax_backend():
    pytest.importorskip("jax", reason="jax is optional (pip install jax)")
    res = run_cli("bench", "--patients", "2", "--reference-patients", "1", "--days", "1", "--backend", "jax",
                  "--contenders", "ecsim", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["backend"] == "jax" and doc["ratio_vs_roadrunner"] is None and doc["machine"]["jaxlib"]
