"""Zadikoff 2011 (dronabinol in cervical dystonia, a two-period crossover) as a validation case, and
what lets a case file use ``trial.crossover``: each arm is read on the period it is taken in, day 0
being the period's first day (`ecsim.validation.runner.crossover_chunks`).

Expected values come from the published design (the trial registration's 3-week periods and 2-week
washout, the abstract's 15 mg/day), from a second way of computing the same number (a parallel run
of the first period; the Hills-Armitage estimate from the raw sequence timelines) or from the
validation policy (a validation case is never a fit target), not from the code under test."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecsim.calibration import STAGES
from ecsim.designs import crossover_scenario, hills_armitage
from ecsim.errors import InputError
from ecsim.registry import default_registry
from ecsim.simulation import simulate_chunk
from ecsim.validation.cases import load_case
from ecsim.validation.runner import crossover_chunks, evaluate_case

from .test_scenario import run_cli

CASE = Path(__file__).resolve().parents[1] / "src/ecsim/data/cases/zadikoff11_dronabinol.yaml"
N = 6


@pytest.fixture(scope="module")
def case():
    return load_case(CASE)


def small(case, **scenario_update):
    """The case's scenario for a few patients (tests of the crossover reading, not of the study)."""
    s = case.scenario
    return s.model_copy(update={"population": s.population.model_copy(update={"n": N})} | scenario_update)


def test_case_is_validation_and_never_a_fit_target(case):
    assert case.kind == "validation"
    assert all(case.id not in stage.targets for stage in STAGES)
    ref = default_registry().references[case.citation]
    assert ref.doi == "10.1016/j.baga.2011.04.002"


def test_case_has_the_published_design(case):
    """Registration NCT00418925: 3-week periods (days 1-21 and 36-56), 2-week washout, 8 weeks in
    all; abstract: dronabinol up to 15 mg/day against placebo, both orders."""
    s = case.scenario
    c = s.trial.crossover
    assert (c.period_days, c.washout_days, s.duration_days) == (21, 14, 56)
    assert sorted(map(tuple, c.sequences)) == [("dronabinol", "placebo"), ("placebo", "dronabinol")]
    assert s.trial.control_arm == "placebo" and s.population.phenotype == "cervical"
    thc = {a.name: a.thc for a in s.arms}
    top = max(thc["dronabinol"], key=lambda step: step.from_day)
    assert top.dose.mg * len(top.times_h) == pytest.approx(15.0)
    assert top.to_day == 21 and not thc["placebo"]


def test_case_runs_and_every_metric_compares_dronabinol_with_placebo(case):
    results = evaluate_case(case)
    assert [r.id.split(".")[-1] for r in results] == [m.id for m in case.metrics]
    for metric, result in zip(case.metrics, results):
        first, second = metric.difference_of
        assert (first.arm, second.arm) == ("dronabinol", "placebo")
        assert first.model_dump(exclude={"arm"}) == second.model_dump(exclude={"arm"})
        assert result.kind == "validation" and np.isfinite(result.simulated)


def test_period_one_reads_like_a_parallel_run_of_its_first_days(case):
    """The model is causal: what a sequence shows in its first period is what a parallel arm of the
    same patients shows over the same days, whatever comes after the period."""
    reg = default_registry()
    chunks = crossover_chunks(small(case), N, reg)
    parallel = small(case, duration_days=21, trial=case.scenario.trial.model_copy(update={"crossover": None}))
    for arm in parallel.arms:   # dronabinol is first in sequence 1, placebo in sequence 2
        direct = simulate_chunk(parallel, arm, 0, N, registry=reg)
        rows = slice(0, N) if arm.name == "dronabinol" else slice(N, 2 * N)
        read = chunks[arm.name]
        np.testing.assert_allclose(read.times_h, direct.times_h)
        np.testing.assert_allclose(read.clinical.visit_days, direct.clinical.visit_days)
        np.testing.assert_allclose(read.outputs["thc_plasma_ng_per_ml"][rows], direct.outputs["thc_plasma_ng_per_ml"],
                                   rtol=1e-6, atol=1e-9)
        for scale in ("twstrs_total", "twstrs_severity"):
            np.testing.assert_allclose(read.clinical.totals[scale][rows], direct.clinical.totals[scale],
                                       rtol=1e-6, atol=1e-9)


def test_difference_of_arm_means_is_the_hills_armitage_estimate(case):
    """With every patient in both sequences, the case's difference (mean period change on
    dronabinol minus on placebo) equals half the difference between sequences of period 1 minus
    period 2, read here straight from the two simulated timelines."""
    reg = default_registry()
    scenario = small(case)
    timeline, sequences = crossover_scenario(scenario)
    periods = {}
    for arm, seq in zip(timeline.arms, sequences):
        chunk = simulate_chunk(timeline, arm, 0, N, registry=reg)
        days, score = chunk.clinical.visit_days, chunk.clinical.totals["twstrs_total"]
        at = lambda d: score[:, int(np.argmin(np.abs(days - d)))]  # noqa: E731
        periods[tuple(seq.order)] = np.stack([at(p.end_day) - at(p.start_day) for p in seq.periods], axis=1)
    expected = hills_armitage(periods[("dronabinol", "placebo")], periods[("placebo", "dronabinol")])
    chunks = crossover_chunks(scenario, N, reg)
    change = {a: chunks[a].clinical.totals["twstrs_total"][:, -1] - chunks[a].clinical.totals["twstrs_total"][:, 0]
              for a in ("dronabinol", "placebo")}
    assert chunks["dronabinol"].clinical.visit_days[-1] == 21
    assert np.mean(change["dronabinol"]) - np.mean(change["placebo"]) == pytest.approx(
        expected["treatment_effect"]["mean"], abs=1e-3)   # the designs module rounds to 3 decimals


def _doc() -> dict:
    return yaml.safe_load(CASE.read_text())


def _with(change) -> dict:
    doc = copy.deepcopy(_doc())
    change(doc)
    return doc


def _adverse(doc):
    doc["metrics"].append({"id": "psychoactive", "adverse": {"arm": "dronabinol", "event": "thc_psychoactive"},
                           "observed": {"value": 0.5, "events": 1, "n": 2}, "rule": {"type": "binomial"}})


def _washout_day(doc):
    doc["metrics"][0]["difference_of"][0]["at_day"] = 28   # a visit of the run, in the washout


def _step(doc):
    doc["scenario"]["output_step_h"] = 5
    for arm in doc["scenario"]["arms"]:
        for step in arm.get("thc", []):
            step["times_h"] = [10, 20]


def _sampling(doc):
    doc["sampling_h"] = [0, 600]   # past the 21-day period (504 h)


def _null_too_few(doc):
    doc["metrics"][2]["observed"]["n"] = 3


def _null_on_one_arm(doc):
    m = doc["metrics"][2]
    m["quantity"] = m.pop("difference_of")[0]


@pytest.mark.parametrize("change, field, words", [
    (_adverse, "metrics.psychoactive.adverse", "crossover"),
    (_null_too_few, "metrics.severity_null_at_published_size.observed.n", "at least 4"),
    (_null_on_one_arm, "metrics.severity_null_at_published_size.rule.type", "difference_of"),
    (_washout_day, "at_day", "of every period"),
    (_step, "scenario.output_step_h", "divides 24"),
    (_sampling, "sampling_h", "crossover's period"),
])
def test_what_a_crossover_case_cannot_read_is_a_one_line_error(tmp_path, change, field, words):
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(_with(change), sort_keys=False))
    with pytest.raises(InputError) as err:
        load_case(path)
    message = str(err.value)
    assert field in message and words in message and "\n" not in message


def test_bad_crossover_case_from_the_cli_exits_2_without_traceback(tmp_path):
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(_with(_washout_day), sort_keys=False))
    res = run_cli("validate", "--cases", str(tmp_path), "--json")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1 and "at_day" in res.stderr


def test_cli_runs_the_case_alone(tmp_path):
    (tmp_path / CASE.name).write_text(CASE.read_text())
    res = run_cli("validate", "--cases", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert {r["kind"] for r in doc["cases"]} == {"validation"}
    assert doc["passed"] + doc["failed"] == len(_doc()["metrics"])


@pytest.mark.parametrize("crossover, delta, n", [(False, 0.0, 40), (False, 0.8, 40), (True, 0.0, 7), (True, 1.5, 7),
                                                 (True, 1.5, 12)])
def test_null_rule_share_is_one_minus_the_power_of_its_test(crossover, delta, n):
    """The null rule's share of null replicate trials against the analytic power of the same test
    on normal data (noncentral t): Welch for parallel arms (n/2 per arm, large equal variances so
    df = n - 2), Hills-Armitage for an AB/BA crossover (period differences of the two sequences,
    sizes ceil(n/2) and floor(n/2), df = n - 2). Patients' own levels and the period effect cancel."""
    from scipy import stats as st
    from ecsim.validation.runner import null_share
    rng = np.random.default_rng(7)
    m = 100_000
    if crossover:   # rows: sequence AB (x in period 1) then BA (x in period 2); period effect 0.5
        base = rng.normal(0, 2, 2 * m)
        period = np.r_[np.full(m, 0.5), np.zeros(m)]
        x = base + delta + period + rng.normal(size=2 * m)
        y = base + (0.5 - period) + rng.normal(size=2 * m)
        k1, k2 = (n + 1) // 2, n // 2
        ncp = 2 * delta / (np.sqrt(2) * np.sqrt(1 / k1 + 1 / k2))
    else:
        x, y = rng.normal(delta, 1, m), rng.normal(0, 1, m)
        ncp = delta / np.sqrt(2 / (n // 2))
    df = n - 2
    crit = st.t.ppf(0.975, df)
    expected_null = st.nct.cdf(crit, df, ncp) - st.nct.cdf(-crit, df, ncp)
    replicates = 4000
    share = null_share(x, y, n, replicates, crossover)
    assert abs(share - expected_null) < 4 * np.sqrt(expected_null * (1 - expected_null) / replicates) + 0.005


def test_null_rule_randomises_distinct_patients_when_arms_share_them():
    """Arms of one scenario hold the same virtual patients. A replicate null trial of n = all of them
    must split them between the arms; with no effect it is null in about 95 % of replicates (1 - the
    test's size). Drawing each arm from the whole pool made it null in nearly every replicate."""
    from ecsim.validation.runner import null_share
    rng = np.random.default_rng(3)
    y = rng.normal(0.0, 5.0, 120)
    x = y + rng.normal(0.0, 0.2, 120)
    share = null_share(x, y, 120, 4000, crossover=False)
    assert share == pytest.approx(0.95, abs=0.015)
