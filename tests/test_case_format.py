"""Case-file format additions (docs/case-files.md): the difference metric (``difference_of``, rule
``absolute``) and the adverse measure (``adverse``, rule ``binomial``), written by an outside author
in a folder of their own and run with ``ecsim validate --cases DIR --json``.

Expected values come from other metrics of the same run (a difference equals the difference of the
two quantities reported alone), from invariants (no CBD: the background rate; shares mix linearly),
or from the Wilson interval solved as a quadratic, not from the code under test."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecsim.errors import InputError
from ecsim.registry import default_registry
from ecsim.validation.cases import Metric, load_case, load_cases
from ecsim.validation.runner import evaluate_case, judge, wilson_interval

from .test_scenario import run_cli

PK_SCENARIO = {"name": "outside", "duration_days": 2, "output_step_h": 0.5,
               "population": {"n": 40, "seed": 7},
               "arms": [{"name": "fed", "product": "pharmaceutical", "food": "high_fat",
                         "cbd": [{"dose": "300 mg", "times_h": [0], "to_day": 1}]},
                        {"name": "fasted", "product": "pharmaceutical", "food": "fasted",
                         "cbd": [{"dose": "300 mg", "times_h": [0], "to_day": 1}]},
                        {"name": "none", "product": "pharmaceutical"}]}
CMAX = {"output": "cbd_plasma_ng_per_ml", "measure": "cmax", "statistic": "arithmetic_mean"}


def difference_case() -> dict:
    """A food-effect study nobody in the project wrote: the fed - fasted difference of mean Cmax,
    next to the two means on their own, and a null difference (an arm against itself)."""
    return {
        "id": "OUTSIDE_DIFF", "citation": "an outside author's study, doi:10.0000/example", "kind": "validation",
        "n_simulated": 40, "sampling_h": [0, 1, 2, 3, 4, 6, 8, 12, 24, 48], "scenario": PK_SCENARIO,
        "metrics": [
            {"id": "fed_mean", "quantity": {"arm": "fed", **CMAX}, "observed": {"value": 100},
             "rule": {"type": "relative"}},
            {"id": "fasted_mean", "quantity": {"arm": "fasted", **CMAX}, "observed": {"value": 30},
             "rule": {"type": "relative"}},
            {"id": "fed_minus_fasted", "difference_of": [{"arm": "fed", **CMAX}, {"arm": "fasted", **CMAX}],
             "observed": {"value": 70, "ci_low": 0, "ci_high": 1000}, "rule": {"type": "ci"}},
            {"id": "null", "difference_of": [{"arm": "fed", **CMAX}, {"arm": "fed", **CMAX}],
             "observed": {"value": 0.0}, "rule": {"type": "absolute", "within": 1e-9}}]}


def adverse_case() -> dict:
    """An adverse-event table: somnolence with and without CBD, with shares on clobazam."""
    one = lambda arm, share: {"arm": arm, "event": "somnolence", "clobazam_share": share}  # noqa: E731
    metrics = [{"id": f"{arm}_{round(100 * share)}", "adverse": one(arm, share),
                "observed": {"value": 0.1, "events": 2, "n": 20}, "rule": {"type": "binomial"}}
               for arm in ("fed", "none") for share in (0.0, 0.5, 1.0)]
    return {"id": "OUTSIDE_ADVERSE", "citation": "an outside author's adverse-event table, doi:10.0000/example2",
            "kind": "validation", "n_simulated": 40, "sampling_h": [0, 48], "scenario": PK_SCENARIO,
            "metrics": metrics}


def write(folder: Path, doc: dict, name: str = "case.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def validated(folder: Path, doc: dict) -> dict[str, dict]:
    """Run `ecsim validate --cases FOLDER --json` on ``doc`` written there, as an outside author
    would; results by metric id."""
    write(folder, doc)
    res = run_cli("validate", "--cases", str(folder), "--json")
    assert res.returncode == 0, res.stderr
    return {r["id"].split(".")[-1]: r for r in json.loads(res.stdout)["cases"]}


@pytest.fixture(scope="module")
def diff_results(tmp_path_factory):
    return validated(tmp_path_factory.mktemp("diff"), difference_case())


def test_difference_is_the_difference_of_the_two_quantities(diff_results):
    r = diff_results
    expected = r["fed_mean"]["simulated"] - r["fasted_mean"]["simulated"]
    assert r["fed_minus_fasted"]["simulated"] == pytest.approx(expected, rel=1e-5)
    assert r["fed_minus_fasted"]["simulated"] > 0   # a high-fat meal raises CBD exposure (Taylor 2018)
    assert "difference" in r["fed_minus_fasted"]["metric"]


def test_a_null_difference_passes_the_absolute_rule(diff_results):
    """The same arm against itself differs by exactly 0, inside any ± tolerance around 0."""
    assert diff_results["null"]["simulated"] == 0.0 and diff_results["null"]["passed"]
    assert "absolute" in diff_results["null"]["tolerance"]


@pytest.fixture(scope="module")
def adverse_results(tmp_path_factory):
    return validated(tmp_path_factory.mktemp("adverse"), adverse_case())


def test_without_cbd_the_share_is_the_background_rate(adverse_results):
    """No CBD: every patient's somnolence risk is the placebo rate p0, on clobazam or not (the model
    holds no excess for co-medications without CBD; docs/adverse.md)."""
    p0 = default_registry().value("adverse_somnolence_p0", "dimensionless")
    for share in ("0", "50", "100"):
        assert adverse_results[f"none_{share}"]["simulated"] == pytest.approx(p0, rel=1e-5)


def test_clobazam_share_mixes_linearly_and_raises_somnolence(adverse_results):
    """Half the patients on clobazam: the mean of all-on and none-on (expectation, no sampling)."""
    r = {s: adverse_results[f"fed_{s}"]["simulated"] for s in ("0", "50", "100")}
    assert r["50"] == pytest.approx((r["0"] + r["100"]) / 2, abs=2e-6)   # JSON rounds to 6 digits
    assert r["0"] < r["50"] < r["100"]


def test_binomial_rule_reports_the_wilson_interval(adverse_results):
    row = adverse_results["none_0"]
    lo, hi = wilson_by_quadratic(2, 20)
    assert f"[{lo:.3f}, {hi:.3f}]" in row["tolerance"] and "2/20" in row["tolerance"]
    assert row["passed"] is bool(lo <= row["simulated"] <= hi)


def wilson_by_quadratic(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson interval as the roots in p of (k/n - p)^2 = z^2 p (1 - p) / n (Wilson 1927)."""
    p_hat = k / n
    a, b, c = 1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat
    return tuple(sorted(np.roots([a, b, c]).real))


@pytest.mark.parametrize("k, n", [(0, 20), (2, 20), (7, 21), (5, 16), (20, 20)])
def test_wilson_interval_solves_the_score_equation(k, n):
    lo, hi = wilson_interval(k, n)
    assert (lo, hi) == pytest.approx(wilson_by_quadratic(k, n), abs=1e-12)


@pytest.mark.parametrize("rule, observed, simulated, passed", [
    ({"type": "absolute", "within": 0.25}, {"value": -0.13}, 0.12, True),
    ({"type": "absolute", "within": 0.25}, {"value": -0.13}, 0.121, False),
    ({"type": "absolute", "within": 2}, {"value": 0}, -2.0, True),
    ({"type": "binomial"}, {"value": 0.15, "events": 3, "n": 20}, 0.36, True),    # Wilson 3/20: 0.052-0.360
    ({"type": "binomial"}, {"value": 0.15, "events": 3, "n": 20}, 0.37, False),
    ({"type": "binomial"}, {"value": 0.0, "events": 0, "n": 20}, 0.0, True),
])
def test_new_rules(rule, observed, simulated, passed):
    metric = Metric.model_validate({"id": "m", "quantity": {"arm": "a", "output": "x", "measure": "cmax"},
                                    "observed": observed, "rule": rule})
    assert judge(metric, simulated)[0] is passed


def _bad(doc: dict, where: list, value) -> dict:
    """``doc`` with the item at path ``where`` set to ``value`` (a missing key: removed)."""
    doc = copy.deepcopy(doc)
    target = doc
    for key in where[:-1]:
        target = target[key]
    if value is _REMOVE:
        del target[where[-1]]
    else:
        target[where[-1]] = value
    return doc


_REMOVE = object()

BAD_INPUTS = [   # (case, path to change, new value, words the one-line error must hold)
    (difference_case, ["metrics", 2, "difference_of"], [{"arm": "fed", **CMAX}], "difference_of"),
    (difference_case, ["metrics", 2, "difference_of", 1, "arm"], "nobody", "nobody"),
    (difference_case, ["metrics", 3, "rule"], {"type": "absolute"}, "within"),
    (difference_case, ["metrics", 3, "rule", "within"], -1, "within"),
    (adverse_case, ["metrics", 0, "adverse", "event"], "headache", "event"),
    (adverse_case, ["metrics", 0, "adverse", "clobazam_share"], 1.5, "clobazam_share"),
    (adverse_case, ["metrics", 0, "adverse", "valproate_share"], "half", "valproate_share"),
    (adverse_case, ["metrics", 0, "adverse", "arm"], "nobody", "nobody"),
    (adverse_case, ["metrics", 0, "adverse", "dose"], 3, "dose"),
    (adverse_case, ["metrics", 0, "observed", "events"], _REMOVE, "observed.events"),
    (adverse_case, ["metrics", 0, "observed", "events"], -1, "events"),
    (adverse_case, ["metrics", 0, "observed", "events"], 21, "metrics.fed_0.observed.events"),
    (adverse_case, ["metrics", 0, "observed", "value"], 0.5, "metrics.fed_0.observed.value"),
]


@pytest.mark.parametrize("make, where, value, words", BAD_INPUTS)
def test_bad_new_fields_are_one_line_errors_naming_the_field(tmp_path, make, where, value, words):
    path = write(tmp_path, _bad(make(), where, value))
    with pytest.raises(InputError) as err:
        load_case(path)
    text = str(err.value)
    assert "\n" not in text and words in text, text
    assert path.name in text


def test_bad_new_field_from_the_cli_exits_2_without_traceback(tmp_path):
    write(tmp_path, _bad(adverse_case(), ["metrics", 0, "adverse", "event"], "headache"))
    res = run_cli("validate", "--cases", str(tmp_path), "--json")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "adverse.event" in res.stderr


def test_project_cases_use_both_constructs():
    """Fox 2002 uses the difference metric; Wheless 2019 and Watkins 2021 the adverse measure, all
    three declared validation (never used in a fit: docs/adverse.md, registry/parameters/nabilone.yaml)."""
    cases = {c.id: c for c in load_cases()}
    fox = cases["FOX02_NABILONE"]
    assert fox.kind == "validation" and any(m.difference_of for m in fox.metrics)
    for cid in ("WHELESS19_ADVERSE", "WATKINS21_ALT"):
        assert cases[cid].kind == "validation"
        assert all(m.adverse and m.rule.type == "binomial" for m in cases[cid].metrics)


def test_adverse_case_reproduces_the_known_wheless_verdicts():
    """docs/adverse.md: somnolence and diarrhoea inside the Wilson intervals at every dose, decreased
    appetite too at 10 mg/kg/day but missed at 20 and 40 (0/20 and 1/21 observed)."""
    case = next(c for c in load_cases() if c.id == "WHELESS19_ADVERSE")
    passed = {r.id.split(".")[-1]: r.passed for r in evaluate_case(case)}
    missed = {k for k, ok in passed.items() if not ok}
    assert missed == {"appetite_mgkg20", "appetite_mgkg40"}


def test_a_metric_says_how_many_patients_its_arms_lost_to_faults(tmp_path, monkeypatch):
    """Statistics leave non-finite values out (ecsim.faults); the metric's note must say so, for the
    arms it reads only. Patient 3 of every arm that doses CBD is made a fault through the fault
    check itself; the case's metrics read arm 'fed', arm 'fasted' or both."""
    import ecsim.validation.runner as runner
    real = runner.patient_faults

    def fault_in_dosed_arms(values, outputs, clinical):
        reasons = real(values, outputs, clinical).copy()
        if outputs["cbd_plasma_ng_per_ml"].max() > 0:
            reasons[3] = "drug_levels"
        return reasons

    monkeypatch.setattr(runner, "patient_faults", fault_in_dosed_arms)
    notes = {r.id.split(".")[-1]: r.note for r in evaluate_case(load_case(write(tmp_path, difference_case())))}
    assert notes["fed_mean"] == "1 of 40 patients of arm fed left out (numerical faults)"
    assert notes["fasted_mean"] == "1 of 40 patients of arm fasted left out (numerical faults)"
    assert "arm fed" in notes["fed_minus_fasted"] and "arm fasted" in notes["fed_minus_fasted"]
