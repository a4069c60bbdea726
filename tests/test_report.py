"""The HTML report: one self-contained file with every section, its plots, the claims and the
validation, whose numbers are the run's own."""

import base64
import json
import re
from html import escape

import pytest

from ecsim.claims import load_claims
from ecsim.report import SECTIONS
from ecsim.runjob import run_job
from ecsim.validation.snapshot import load_snapshot


@pytest.fixture(scope="module")
def trial_run(default_report_run):
    return default_report_run


def test_report_has_every_section(trial_run):
    _, _, html = trial_run
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "not medical advice" in html


def test_report_plots_are_embedded_pngs(trial_run):
    _, _, html = trial_run
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 7        # drug levels, targets, tone, circuit, symptoms, scales, uncertainty
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_opens_offline(trial_run):
    _, _, html = trial_run
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_report_numbers_are_the_runs(trial_run):
    out, summary, html = trial_run
    for arm, a in summary["trial"]["arms"].items():
        if "difference_vs_control" in a:
            d = a["difference_vs_control"]
            assert f"{d['mean']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]" in html, arm
    claims = json.loads((out / "claims.json").read_text())
    assert len(claims) == len(load_claims().claims)
    assert html.count("<span class=\"v v-") >= len(claims)
    snap = load_snapshot()
    assert f"{len(snap['results'])} metrics" in html


def test_report_marks_published_reference_points(trial_run):
    _, _, html = trial_run
    assert "TRUONG05_WEEK4 dysport_500" in html     # the cervical toxin trial's week-4 change


def test_report_without_a_trial(tmp_path):
    """A drug-level scenario (no phenotype) still gets a report; the clinical plots say why they are absent."""
    out = tmp_path / "doses"
    run_job("claims-doses", out, patients=10, quiet=True, claims_patients=10, uncertainty_draws=8)
    html = (out / "report.html").read_text()
    assert "no virtual trial" in html and "Not produced" in html
    for section in ("answer", "claims", "validation", "drug-levels"):
        assert f'id="{section}"' in html


def test_report_names_the_parameters_that_matter(trial_run):
    """The answer carries a parameter-uncertainty interval in scale points and names three parameters
    with their sources; the uncertainty section gives each one's citation."""
    out, summary, html = trial_run
    unc = json.loads((out / "uncertainty.json").read_text())
    scale = summary["trial"]["primary_scale"]
    points = {k: v for k, v in unc["intervals"].items() if k.endswith(f".{scale}_vs_control_points")}
    assert points
    answer = html[html.index('id="answer"'):html.index('id="patients"')]
    assert "How unsure the model is" in answer and "points" in answer
    for key, v in points.items():
        assert f"{key.rsplit('.', 1)[0]} {v['median']:+.3g} [{v['p05']:+.3g}, {v['p95']:+.3g}]" in answer, key
    widest = max(points, key=lambda k: points[k]["p95"] - points[k]["p05"])
    drivers = unc["drivers"][widest][:3]
    assert len(drivers) == 3
    section = html[html.index('id="uncertainty"'):html.index('id="claims"')]
    for d in drivers:
        assert d["parameter"] in answer and d["source"] in answer
        assert d["parameter"] in section and escape(d["citation"]) in section


def test_report_shows_the_adverse_effect_intervals(trial_run):
    """The uncertainty section lists each modelled adverse event's excess risk at the article's dose
    classes with its 90 % interval over the adverse-parameter draws (the claims checker's numbers)."""
    out, _, html = trial_run
    row = next(r for r in json.loads((out / "claims.json").read_text()) if r["model"]["rule"] == "adverse")
    by_class = row["model"]["numbers"]["excess_risk_by_class"]
    section = html[html.index('id="uncertainty"'):html.index('id="claims"')]
    assert "Side effects" in section and f"{row['model']['numbers']['parameter_draws']} draws" in section
    for events in by_class.values():
        for event, x in events.items():
            low, high = x["parameter_90pct"]
            assert low <= high
            assert event.replace("_", " ") in section


def test_paired_differences_match_patients_by_number():
    """Each patient's change on an arm minus the same patient's change on control; a patient left
    out of either arm (a numerical fault) is skipped, not paired with someone else."""
    import numpy as np
    from ecsim.report.figures import paired_differences
    from ecsim.simulation import ArmResult

    def arm(name, patients, change):
        r = ArmResult(name, np.zeros(1))
        r.patients, r.visit_days = np.array(patients), np.array([0.0, 28.0])
        r.clinical = {"twstrs_total": np.column_stack([np.full(len(change), 40.0), 40.0 + np.array(change)])}
        return r
    control = arm("placebo", [0, 1, 2, 3], [-1.0, -2.0, -3.0, -4.0])
    cbd = arm("cbd", [0, 2, 3], [-1.5, -3.0, -6.0])          # patient 1 faulted on this arm
    got = paired_differences([control, cbd], "twstrs_total", "placebo", 28.0)
    assert got["cbd"].tolist() == [-0.5, 0.0, -2.0]
    assert paired_differences([control, cbd], "twstrs_total", "none", 28.0) == {}


def test_the_arms_share_their_patients(trial_run):
    """The paired differences rely on it: every arm's patient i has the same baseline scores."""
    import pandas as pd
    out, _, _ = trial_run
    table = pd.read_parquet(out / "clinical.parquet")
    baseline = table[table.day == 0].pivot(index="patient", columns="arm", values="twstrs_total")
    assert baseline.shape[1] >= 3 and (baseline.nunique(axis=1) == 1).all()


def test_report_escapes_scenario_text_and_survives_odd_trials(tmp_path):
    """A hostile name and description are shown as text; a trial with no control arm, and one with a
    single patient (no confidence intervals), still give a complete report."""
    from ecsim.scenario import Scenario
    data = json.loads(json.dumps(prepared(None).model_dump(mode="json")))
    data["name"] = "x<script>alert(1)</script>"
    data["description"] = "<img src=x onerror=alert(1)>"
    data["duration_days"] = 14
    data["trial"]["primary_day"] = 14
    data["arms"] = [a for a in data["arms"] if a["name"] in ("placebo", "isolate_300mg_day")]
    for n, control in ((1, "placebo"), (6, None)):
        data["population"]["n"] = n
        data["trial"]["control_arm"] = control
        out = tmp_path / f"run{n}"
        run_job(Scenario.model_validate(data), out, quiet=True, claims_patients=5, uncertainty_draws=4)
        html = (out / "report.html").read_text()
        assert "<script" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
        for section in SECTIONS:
            assert f'id="{section}"' in html, (n, section)


def prepared(path):
    from ecsim.runjob import prepared_scenario
    return prepared_scenario(path, 6, None)


def test_every_output_the_report_plots_over_time_has_its_population_mean_kept():
    """Runs keep population means over time only for `exposure.MEANS` (memory at 10^6 patients);
    a plotted output outside it would silently drop out of the tone figure and bands.parquet."""
    from ecsim.exposure import MEANS, REPORTED
    from ecsim.report.figures import TONE
    assert {name for name, _ in TONE} | set(REPORTED) <= set(MEANS)


def test_trial_table_shows_a_dash_where_no_patient_could_respond():
    """A population without dystonia at baseline has no responder share (None in summary.json):
    the table shows a dash instead of failing (the clinical review of 2026-11-26 hit a TypeError)."""
    from types import SimpleNamespace
    from ecsim.report.html import trial_table
    diff = {"mean": 0.0, "ci95": [0.0, 0.0], "paired_ci95": [-0.01, 0.01]}
    trial = {"primary_scale": "bfmdrs_movement", "primary_day": 7.0, "control_arm": "untreated",
             "responder_definition": "improvement of at least 25% of baseline",
             "arms": {"untreated": {"change": {"mean": 0.0, "ci95": [0.0, 0.0]}, "responders": None},
                      "cbd": {"change": {"mean": 0.0, "ci95": [0.0, 0.0]}, "responders": None,
                              "difference_vs_control": diff}}}
    html = trial_table(SimpleNamespace(summary={"trial": trial}))
    assert html.count("<td class='num'>–</td>") >= 2
    assert "same patients on both arms: [-0.01, +0.01]" in html


def test_intervals_never_print_negative_zero():
    from ecsim.report_text import mean_ci
    assert mean_ci({"mean": -0.004, "ci95": [-0.02, -0.001]}) == "+0.00 [-0.02, +0.00]"


def test_crossover_interval_words_follow_the_design():
    """Two sequences: Hills-Armitage; three or more, where a pair has no AB/BA sequences, the
    within-patient difference (designs.crossover_statistics); parallel arms: the Welch interval."""
    from ecsim.report.html import _interval_words, _size_words
    two = {"design": "crossover", "sequences": {"s1": {}, "s2": {}}, "comparisons": {"a": {"hills_armitage": {"x": 1}}}}
    three = {"design": "crossover", "sequences": {"s1": {}, "s2": {}, "s3": {}},
             "comparisons": {"a": {"hills_armitage": None}, "b": {"hills_armitage": {"x": 1}}}}
    assert _size_words(two) == "in 2 sequences" and "Hills-Armitage 95 % CI" in _interval_words(two)
    assert _size_words(three) == "in 3 sequences" and "within-patient difference" in _interval_words(three)
    assert _size_words({}) == "per arm" and "parallel trial" in _interval_words({})
