"""The main job and the registry commands, end to end through the console entry point."""

import json

import pandas as pd

from .test_scenario import run_cli


def test_run_default_writes_complete_outputs(tmp_path):
    out = tmp_path / "run"
    res = run_cli("run", "--out", str(out), "--patients", "24", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    arms = {a["arm"]: a for a in summary["arms"]}
    assert set(arms) == {"placebo", "full_spectrum_25mg_bid", "isolate_300mg_day", "epidiolex_10mg_kg_day_fed",
                         "botulinum_dysport_500u"}
    assert arms["full_spectrum_25mg_bid"]["targets"]["faah_inhibition"]["p95"] < 0.01
    for name in ("summary.json", "manifest.json", "exposure.parquet", "bands.parquet", "clinical.parquet", "pk.png"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["population"]["n"] == 24 and manifest["parameter_set_sha256_16"]
    table = pd.read_parquet(out / "exposure.parquet")
    assert len(table) == 5 * 24
    assert summary["phenotype"] == "cervical"
    clinical = {c["arm"]: c for c in summary["clinical"]}
    assert clinical["placebo"]["visit_days"] == [7.0 * k for k in range(13)]
    assert clinical["placebo"]["region_severity_mean"]["neck"]["baseline"] > 0.2
    trial = summary["trial"]
    assert trial["primary_scale"] == "twstrs_total" and trial["primary_day"] == 28
    assert trial["arms"]["botulinum_dysport_500u"]["difference_vs_control"]["ci95"][1] < 0
    visits = pd.read_parquet(out / "clinical.parquet")
    assert len(visits) == 5 * 24 * 13 and {"twstrs_total", "bfmdrs_movement", "pain"} <= set(visits.columns)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_same_seed_same_numbers(tmp_path):
    a = run_cli("run", "--out", str(tmp_path / "a"), "--patients", "8", "--seed", "3", "--json")
    b = run_cli("run", "--out", str(tmp_path / "b"), "--patients", "8", "--seed", "3", "--json")
    assert json.loads(a.stdout) == json.loads(b.stdout)
    c = run_cli("run", "--out", str(tmp_path / "c"), "--patients", "8", "--seed", "4", "--json")
    assert json.loads(c.stdout)["arms"] != json.loads(a.stdout)["arms"]   # the seed reaches the patients


def test_a_drug_only_run_prints_its_drug_levels(tmp_path):
    scenario = tmp_path / "pk.yaml"
    scenario.write_text("name: pk\nduration_days: 3\narms:\n  - {name: oil, cbd: [{dose: 300 mg, times_h: [8, 20]}]}\n")
    res = run_cli("run", str(scenario), "--out", str(tmp_path / "pk"), "--patients", "20", "--no-report")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "pk" / "summary.json").read_text())
    cavg = summary["arms"][0]["cbd_plasma_cavg_ng_per_ml"]
    assert "CBD Cavg ng/mL" in res.stdout and f"{cavg['geometric_mean']:.3g} [{cavg['p05']:.3g}" in res.stdout


def test_interval_leaves_the_geometric_mean_undefined_when_some_values_are_zero():
    from ecsim.outputs import interval
    assert interval([2.0, 8.0])["geometric_mean"] == 4.0
    assert interval([0.0, 0.0])["geometric_mean"] == 0.0
    assert interval([0.0, 8.0])["geometric_mean"] is None


def test_params_and_cite_json():
    params = json.loads(run_cli("params", "--json").stdout)
    assert len(params["parameters"]) > 50
    cite = json.loads(run_cli("cite", "--json").stdout)
    assert any(r["key"] == "taylor2018" for r in cite["references"])


def test_doses_above_the_epidiolex_label_are_flagged(registry):
    """The label's maximum is 10 mg/kg twice daily, 20 mg/kg/day (clinical.md, dosing rows): a 70 kg patient
    on 1,400 mg/day is at it, on 2,800 mg/day above it, whatever the product's actual content."""
    import numpy as np
    from ecsim.outputs import _label_dose
    e = {"cbd_daily_mg": np.array([1400.0, 2800.0 * 0.5, 0.0]), "label_content_factor": np.array([1.0, 0.5, 1.0]),
         "body_weight_kg": np.array([70.0, 70.0, 70.0])}
    doc = _label_dose(e, registry)
    assert doc["fraction_cbd_dose_above_label_max"] == round(1 / 3, 4)
    assert doc["cbd_labelled_mg_per_kg_day"]["p95"] > 20.0
