"""Numerical faults: a patient whose numbers are unusable is found, named with its reason, kept out
of every statistic, and written as empty values, while every other patient's numbers stay the same
bits. Faults are injected where they would arise: a parameter, the drug-level outputs, the circuit."""

import json

import numpy as np
import pandas as pd
import pytest

import ecsim.circuit.clinical as clinical_module
import ecsim.simulation as simulation
from ecsim.cli import main
from ecsim.circuit.network import FixedPoint
from ecsim.faults import AllPatientsFaulted, REASONS, patient_faults
from ecsim.runjob import run_job
from ecsim.scenario import Scenario

ARM, BAD = "epidiolex", 3     # the patient to corrupt, in the second arm


def small_trial(n: int = 8) -> Scenario:
    return Scenario.model_validate({
        "name": "faults", "duration_days": 14, "output_step_h": 2.0, "visit_interval_days": 7,
        "population": {"n": n, "seed": 11, "phenotype": "cervical"},
        "trial": {"placebo_response": True, "control_arm": "placebo", "primary_day": 14},
        "arms": [{"name": "placebo"},
                 {"name": ARM, "product": "pharmaceutical", "food": "low_fat",
                  "cbd": [{"dose": "5 mg/kg", "times_h": [8, 20]}]}]})


def run(tmp_path, name, chunk=500, n=8):
    out = tmp_path / name
    summary = run_job(small_trial(n), out, quiet=True, report=False, chunk=chunk)
    tables = {k: pd.read_parquet(out / f"{k}.parquet") for k in ("exposure", "clinical")}
    summary["bands"] = pd.read_parquet(out / "bands.parquet")
    return summary, tables


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return run(tmp_path_factory.mktemp("clean"), "run")


@pytest.fixture(scope="module")
def clean_drug():
    """The second arm's patients simulated before any fault is injected."""
    sc = small_trial()
    return simulation.simulate_chunk(sc, sc.arms[1], 0, 8)


def corrupt_parameter(monkeypatch, name="cbd_cl", value=np.nan):
    real = simulation.patient_inputs

    def patched(scenario, arm, start, stop, registry, overrides=None):
        p, doses = real(scenario, arm, start, stop, registry, overrides)
        if arm.name == ARM and start <= BAD < stop:
            p[name] = np.array(p[name], dtype=float)
            p[name][BAD - start] = value
        return p, doses
    monkeypatch.setattr(simulation, "patient_inputs", patched)


def corrupt_outputs(monkeypatch):
    real = simulation.outputs
    calls = []

    def patched(model, p, states):
        out = real(model, p, states)
        calls.append(1)
        if len(calls) == 2:    # the second arm's only chunk
            out["faah_inhibition"][BAD, 5:] = np.inf
        return out
    monkeypatch.setattr(simulation, "outputs", patched)


def unsettled_circuit(monkeypatch):
    real = clinical_module.fixed_point
    calls = []

    def patched(inp, p, n, channels, start=None):
        fp = real(inp, p, n, channels, start=start)
        calls.append(1)
        converged = fp.converged.copy()
        if len(calls) > 3 * 3:     # second arm (3 visits x 3 protocols each arm)
            converged[BAD] = False
        return FixedPoint(fp.state, converged, fp.iterations)
    monkeypatch.setattr(clinical_module, "fixed_point", patched)


@pytest.mark.parametrize("inject, reason", [(corrupt_parameter, "parameters"), (corrupt_outputs, "drug_levels"),
                                            (unsettled_circuit, "circuit")])
def test_a_faulted_patient_is_named_left_out_and_written_empty(tmp_path, monkeypatch, clean, clean_drug, inject,
                                                               reason):
    inject(monkeypatch)
    summary, tables = run(tmp_path, "faulted")
    faults = summary["faults"]
    assert faults["patients_faulted"] == 1 and faults["by_reason"] == {reason: 1}
    assert faults["arms"][ARM]["first_patients"] == [BAD] and faults["arms"]["placebo"]["patients_faulted"] == 0
    assert reason in REASONS
    arm = {a["arm"]: a for a in summary["arms"]}[ARM]
    assert arm["patients"] == 7 and arm["patients_faulted"] == 1

    clean_summary, clean_tables = clean
    for name, table in tables.items():
        ref = clean_tables[name]
        assert list(table.columns) == list(ref.columns) and len(table) == len(ref)
        bad = (table["arm"] == ARM) & (table["patient"] == BAD)
        assert (table.loc[bad, "fault"] == reason).all() and table.loc[~bad, "fault"].isna().all()
        numbers = table.columns.difference(["arm", "patient", "day", "fault"])
        assert table.loc[bad, numbers].isna().all().all(), "a faulted patient's values were written as numbers"
        pd.testing.assert_frame_equal(table.loc[~bad], ref.loc[~bad])   # everyone else: the same bits

    # the trial statistics are those of the seven sound patients of the clean run
    c = clean_tables["clinical"]
    arm_rows = c[(c["arm"] == ARM) & (c["patient"] != BAD)]
    change = (arm_rows[arm_rows["day"] == 14].set_index("patient")["twstrs_total"]
              - arm_rows[arm_rows["day"] == 0].set_index("patient")["twstrs_total"])
    assert summary["trial"]["arms"][ARM]["change"]["mean"] == pytest.approx(change.mean(), abs=6e-4)
    assert summary["trial"]["arms"][ARM]["change"]["mean"] != clean_summary["trial"]["arms"][ARM]["change"]["mean"]

    # population means over time and adverse-effect risks are the sound patients' too
    drug = clean_drug
    sound = np.arange(8) != BAD
    bands = summary["bands"]
    assert np.isfinite(bands[["mean", "p05", "p50", "p95"]].to_numpy()).all()
    for name in ("cbd_plasma_ng_per_ml", "cbd_brain_free_nM"):
        got = bands[(bands["arm"] == ARM) & (bands["output"] == name)]["mean"].to_numpy()
        np.testing.assert_allclose(got, drug.outputs[name][sound].mean(axis=0), rtol=1e-12, atol=1e-300)
    from ecsim.treatments.adverse import adverse_effects
    e = clean_tables["exposure"]
    rows = e[(e["arm"] == ARM) & (e["patient"] != BAD)]
    risks = adverse_effects({c: rows[c].to_numpy() for c in rows.columns if c not in ("arm", "patient", "fault")},
                            rows["cbd_daily_mg"].to_numpy())
    for event, r in risks.items():
        assert summary["adverse_effects"][ARM][event]["mean"] == pytest.approx(r.mean(), rel=1e-3), event




def test_faulted_runs_do_not_depend_on_chunking(tmp_path, monkeypatch):
    corrupt_parameter(monkeypatch, "cbd_cl", np.inf)
    a, ta = run(tmp_path, "a", chunk=500)
    b, tb = run(tmp_path, "b", chunk=3)
    pd.testing.assert_frame_equal(a.pop("bands"), b.pop("bands"))
    assert a == b
    for k in ta:
        pd.testing.assert_frame_equal(ta[k], tb[k])


def test_every_patient_faulted_is_one_line_and_no_folder(tmp_path, monkeypatch, capsys):
    real = simulation.patient_inputs

    def patched(*args, **kw):
        p, doses = real(*args, **kw)
        return p | {"cbd_cl": np.full(len(p["body_weight_kg"]), np.nan)}, doses
    monkeypatch.setattr(simulation, "patient_inputs", patched)
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(small_trial(4).model_dump(mode="json")))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--no-report", "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: every patient of arm 'placebo' is a numerical fault (parameters)")
    assert "\n" not in err and not (tmp_path / "out").exists()
    with pytest.raises(AllPatientsFaulted):
        run_job(small_trial(4), tmp_path / "again", quiet=True, report=False)


def test_patient_faults_checks_every_kind_of_array():
    out = {"a": np.ones((3, 4))}
    assert list(patient_faults({"x": np.array([1.0, np.nan, 1.0])}, out)) == ["", "parameters", ""]
    assert list(patient_faults({"x": 2.0, "i": np.array([1, 2, 3])}, out)) == ["", "", ""]
    assert list(patient_faults({"x": np.inf}, out)) == ["parameters"] * 3
    out["a"][2, 3] = -np.inf
    assert list(patient_faults({}, out)) == ["", "", "drug_levels"]


def test_the_report_says_what_was_left_out(tmp_path, monkeypatch):
    from types import SimpleNamespace
    from ecsim.report.html import _faults_note
    corrupt_parameter(monkeypatch)
    summary, _ = run(tmp_path, "faulted")
    note = _faults_note(SimpleNamespace(summary=summary, uncertainty={"draws": 128, "draws_faulted": 2}))
    assert "1 simulated patients were numerical faults (1 a parameter or covariate value is NaN" in note
    assert "2 of 128 parameter draws gave non-finite answers" in note
    assert _faults_note(SimpleNamespace(summary={"faults": {"patients_faulted": 0}}, uncertainty={})) == ""


def nan_draw(monkeypatch, draw: int) -> None:
    """Parameter set number ``draw`` of every uncertainty batch gives non-finite answers."""
    import ecsim.uncertainty.model as model
    real = model.HeadlineFunction.__call__

    def patched(self, values):
        out = real(self, values)
        return {k: np.where(np.arange(len(v)) == draw, np.nan, v) for k, v in out.items()}
    monkeypatch.setattr(model.HeadlineFunction, "__call__", patched)


def test_parameter_uncertainty_leaves_out_faulted_draws(monkeypatch):
    import ecsim.uncertainty as uncertainty
    from ecsim.registry import default_registry
    nan_draw(monkeypatch, 1)
    doc = uncertainty.parameter_uncertainty(small_trial(2), default_registry(), draws=6, seed=3)
    assert doc["draws_faulted"] == 1
    assert all(np.isfinite([v["p05"], v["median"], v["p95"]]).all() for v in doc["intervals"].values())


def test_a_parameter_set_that_silences_the_normal_circuit_is_one_line(tmp_path, capsys):
    """A tenfold GPe -> GPi weight leaves the normal GPi silent, so its rate cannot be scaled to Hz
    (this used to be a ZeroDivisionError traceback)."""
    from ecsim.registry import default_registry
    weight = default_registry()["cbg_w_gpe_gpi"].value * 10
    doc = small_trial(4).model_dump(mode="json") | {"parameters": {"cbg_w_gpe_gpi": weight}}
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(doc))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--no-report", "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: under these parameter values the normal basal-ganglia circuit has no resting "
                          "activity in GPI") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_a_faulted_run_with_its_report(tmp_path, monkeypatch):
    """The whole job, claims and report included, with one faulted patient: valid JSON everywhere
    and the report says what was left out."""
    corrupt_parameter(monkeypatch)
    out = tmp_path / "full"
    summary = run_job(small_trial(), out, quiet=True, claims_patients=10, uncertainty_draws=6)
    assert summary["faults"]["patients_faulted"] == 1
    for name in ("summary.json", "claims.json", "uncertainty.json", "manifest.json"):
        json.loads((out / name).read_text())
    html = (out / "report.html").read_text()
    assert "<strong>Left out:</strong> 1 simulated patients were numerical faults" in html


def test_claims_parameter_spread_leaves_out_faulted_draws(monkeypatch):
    import ecsim.claims.context as context
    from ecsim.registry import default_registry
    nan_draw(monkeypatch, 0)
    context._SPREAD_CACHE.clear()
    spread = context.dose_parameter_spread(default_registry(), ["fullspectrum_10mg_day_fasted"], ["faah_inhibition"],
                                           draws=4, seed=5)
    context._SPREAD_CACHE.clear()
    row = spread["fullspectrum_10mg_day_fasted"]["faah_inhibition"]
    assert row["draws_faulted"] == 1 and np.isfinite([row["p05"], row["median"], row["p95"]]).all()


@pytest.mark.parametrize("command", [["targets"], ["server"]])
def test_a_silent_circuit_is_one_line_in_other_commands_and_the_server(tmp_path, capsys, command):
    """Not only `ecsim run`: every command and the web server's runs report it in one line."""
    from ecsim.registry import default_registry
    from ecsim.server.worker import run_scenario
    weight = default_registry()["cbg_w_gpe_gpi"].value * 10
    doc = small_trial(4).model_dump(mode="json") | {"parameters": {"cbg_w_gpe_gpi": weight}}
    if command == ["targets"]:
        path = tmp_path / "s.yaml"
        path.write_text(json.dumps(doc))
        assert main(["targets", str(path), "--json"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: under these parameter values") and "\n" not in err
    else:
        message = run_scenario("r1", doc, str(tmp_path / "web"), report=False)
        assert message.startswith("under these parameter values the normal basal-ganglia circuit")
