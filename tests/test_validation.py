"""Study cases: the format, the rules, the calibration/validation split, and published results."""

import json

import numpy as np
import pytest

from ecsim.calibration import STAGES
from ecsim.validation import evaluate_case, load_cases
from ecsim.validation.cases import Metric
from ecsim.validation.nca import auc_inf, auc_last, lambda_z, t_half
from ecsim.validation.runner import judge

from .test_scenario import run_cli

REQUIRED_STUDIES = {"taylor2018", "epidiolex_label", "devinsky2018", "knaub2019", "stott2013food"}


@pytest.fixture(scope="module")
def cases():
    return load_cases()


def test_part_a_studies_have_cases(cases):
    assert REQUIRED_STUDIES <= {c.citation for c in cases}


def test_at_least_a_third_of_cases_are_validation(cases):
    kinds = [c.kind for c in cases]
    assert kinds.count("validation") >= len(kinds) / 3


def test_fit_reads_only_calibration_cases(cases):
    by_id = {c.id: c for c in cases}
    for stage in STAGES:
        for case_id in stage.targets:
            assert by_id[case_id].kind == "calibration", case_id


def test_nca_on_analytic_profile():
    """C = 10 e^{-0.1 t}: AUC_inf = 100, t1/2 = ln2/0.1 (closed form, not from the code)."""
    t = np.linspace(0, 48, 97)
    c = 10 * np.exp(-0.1 * t)[None, :]
    assert lambda_z(t, c)[0] == pytest.approx(0.1, rel=1e-9)
    assert t_half(t, c)[0] == pytest.approx(np.log(2) / 0.1, rel=1e-9)
    assert auc_inf(t, c)[0] == pytest.approx(100.0, rel=1e-9)
    assert auc_last(t, c)[0] == pytest.approx(100 * (1 - np.exp(-4.8)), rel=1e-9)


@pytest.mark.parametrize("rule, observed, simulated, passed", [
    ({"type": "relative"}, {"value": 100}, 124, True),
    ({"type": "relative"}, {"value": 100}, 126, False),
    ({"type": "ci"}, {"value": 4, "ci_low": 3.4, "ci_high": 7.8}, 3.3, False),
    ({"type": "range"}, {"value": 4, "range_low": 3, "range_high": 5}, 5.0, True),
    ({"type": "sd"}, {"value": 30, "sd": 8}, 39, False),
])
def test_tolerance_rules(rule, observed, simulated, passed):
    metric = Metric.model_validate({"id": "m", "quantity": {"arm": "a", "output": "x", "measure": "cmax"},
                                    "observed": observed, "rule": rule})
    assert judge(metric, simulated)[0] is passed


def test_cv_sampling_rule_uses_chi_square():
    """n=6, simulated CV 60 %: s² ~ σ² χ²(5)/5 with σ² = ln 1.36 = 0.3075 and χ²(5) quantiles 0.831
    and 12.83 give sample CVs from 23 % to 110 % (hand calculation)."""
    metric = Metric.model_validate({"id": "m", "quantity": {"arm": "a", "output": "x", "measure": "cmax",
                                    "statistic": "geometric_cv"}, "observed": {"value": 88, "n": 6},
                                   "rule": {"type": "cv_sampling"}})
    ok, words = judge(metric, 60.0)
    assert ok and "[23, 110]" in words
    assert not judge(metric.model_copy(update={"observed": metric.observed.model_copy(update={"value": 20})}), 60.0)[0]


def test_interpolated_doses_reproduce_taylor_2018(cases):
    """Published results tier: the 3000 and 4500 mg doses were never fitted; AUC and Cmax must land
    within DESIGN §4's ±25 % of the published geometric means."""
    for case in (c for c in cases if c.id in ("TAY18_SAD_3000", "TAY18_SAD_4500")):
        results = {r.id.split(".")[-1]: r for r in evaluate_case(case)}
        for metric in ("cbd_auc_inf", "cbd_cmax", "cbd7oh_auc_inf"):
            assert results[metric].passed, (case.id, metric, results[metric])


def test_population_reproduces_published_cv(cases):
    """Between-subject CV of Cmax and AUC: the observed CVs of the never-fitted SAD arms are plausible
    samples (n=6) of the simulated population."""
    for case in (c for c in cases if c.id in ("TAY18_SAD_3000", "TAY18_SAD_4500")):
        results = {r.id.split(".")[-1]: r for r in evaluate_case(case)}
        assert results["cbd_cmax_cv"].passed and results["cbd_auc_cv"].passed


def test_validate_cli_json_on_external_folder(tmp_path, cases):
    """A case written outside the project runs with --cases DIR and prints the documented keys."""
    source = next(c for c in cases if c.id == "KNAUB19")
    (tmp_path / "mine.yaml").write_text(json.dumps(source.model_dump(mode="json") | {"id": "EXTERNAL_1"}))
    res = run_cli("validate", "--cases", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["passed"] + doc["failed"] == len(doc["cases"]) == len(source.metrics)
    assert set(doc["cases"][0]) >= {"id", "kind", "metric", "observed", "simulated", "tolerance", "passed"}


def test_validate_rejects_bad_case_folder(tmp_path):
    (tmp_path / "bad.yaml").write_text("id: X\nkind: maybe\n")
    res = run_cli("validate", "--cases", str(tmp_path))
    assert res.returncode == 2 and "kind" in res.stderr and res.stderr.count("\n") == 1


def test_rule_without_its_observed_fields_is_a_one_line_error(tmp_path, cases):
    source = next(c for c in cases if c.id == "KNAUB19").model_dump(mode="json")
    source["metrics"][0]["rule"] = {"type": "ci"}
    (tmp_path / "bad.yaml").write_text(json.dumps(source))
    res = run_cli("validate", "--cases", str(tmp_path))
    assert res.returncode == 2 and "ci_low" in res.stderr and res.stderr.count("\n") == 1
