"""Bad input, fuzzed (issue 8): every input path either accepts a value or refuses it with one line
naming the field, the value and what is allowed (`InputError`; `error: ...` and exit status 2 from
the CLI), never a traceback, a hang or a huge allocation.

Paths: scenario YAML (structured mutations of the shipped scenarios, and raw files: empty, binary,
invalid UTF-8, scalars, lists, deep nesting, huge files, alias bombs, duplicate keys, folders,
missing files), validation case files (mutations of the shipped cases, also evaluated), parameter
overrides, and the flags of every CLI command. The API is fuzzed in test_server_api.py.

Hypothesis runs derandomized, so CI sees the same inputs every time; no case starts a simulation
(the CLI's heavy functions are replaced by a stub that stops once the flags have been accepted).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ecsim import cli, safe_yaml
from ecsim.errors import InputError
from ecsim.registry import default_registry, override_range
from ecsim.scenario import load_scenario, parse_scenario
from ecsim.validation import runner
from ecsim.validation.cases import load_case, load_cases

# Examples per path and run; the whole file takes about 25 s on two cores.
N_SCENARIO = 250
N_CASE = 150
N_CASE_EVAL = 120
N_RAW = 60
N_OVERRIDE = 200
N_FLAG = 30          # per command

FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])

WORK = Path(tempfile.mkdtemp(prefix="ecsim-fuzz-"))


def _shipped(package: str) -> dict[str, dict]:
    root = resources.files(package)
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".yaml")}


SCENARIOS = _shipped("ecsim.data.scenarios")
CASES = _shipped("ecsim.data.cases")


# ---------------------------------------------------------------- the oracle


def assert_one_line(err: InputError) -> None:
    """An InputError that names a field, shows the value and says what is allowed, on one line."""
    text = str(err)
    assert err.field and err.allowed, text
    assert "\n" not in text and "\r" not in text and text.isprintable(), repr(text)
    assert text.startswith(f"{err.field}: got ") and "; allowed: " in text, text
    assert len(text) < 700, text


def accepts_or_refuses(call, *args):
    """Run an input path: success or a well-formed InputError pass; anything else fails the test."""
    try:
        return call(*args)
    except InputError as err:
        assert_one_line(err)
        return None


class Accepted(Exception):
    """Raised by the stubs that stand in for simulations once a command has accepted its input."""


def run_cli(argv: list[str]) -> tuple[int | None, str]:
    """`ecsim ARGV` in this process: (exit status or None when the input was accepted, stderr)."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), contextlib.chdir(WORK):
        try:
            status = cli.main(argv)
        except Accepted:
            status = None
    return status, err.getvalue()


def assert_cli_refused(status: int | None, stderr: str, must_name: str | None = None) -> None:
    assert status == 2, (status, stderr)
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n") and lines[0].startswith("error: ") and lines[0][7:].strip(), stderr
    if must_name:
        assert must_name in lines[0], stderr


def assert_cli_ok(status: int | None, stderr: str, must_name: str | None = None) -> None:
    """The command either accepted its input (stub reached, or status 0) or refused it properly."""
    if status is None or status == 0:
        assert "Traceback" not in stderr, stderr
        return
    assert_cli_refused(status, stderr, must_name)


STOPS = {   # what each command calls once its input is accepted
    "run": "ecsim.runjob.Simulation", "targets": "ecsim.simulation.Simulation",
    "claims": "ecsim.simulation.Simulation", "circuit": "ecsim.circuit.explore.steady_state_summary",
    "sensitivity": "ecsim.uncertainty.sensitivity_analysis", "bench": "ecsim.bench.run_bench",
    "serve": "uvicorn.run", "validate": "ecsim.validation.evaluate_cases", "cite": None,
}


@contextlib.contextmanager
def stopped(command: str):
    target = STOPS.get(command)
    if target is None:
        yield
        return
    with mock.patch(target, side_effect=Accepted("input accepted")):
        yield


# ---------------------------------------------------------------- structured mutations

NASTY_TEXT = ["", " ", "\n", "nan", "inf", "-1", "1e999", "25 mg/kg/kg", "10**10**10", "5 10**10**10", "mg",
              "../../etc/passwd", "\x00", "é" * 100, "x" * 10_000, "true", "null", "{a: 1}", "[1, 2]",
              "25 furlong", "25mg", "1e308 kg", "-5 mg", "nan mg", "0x10", "1_000"]
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 10**19, 2**63, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-320, 1e308, -1e308]),
)
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.sampled_from(NASTY_TEXT), st.text(max_size=30))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
KEYS = st.one_of(st.sampled_from(["name", "n", "dose", "times_h", "unknown", "Name", "arms ", "parameters",
                                  "mg", "from_day", "cbd", "<<"]), st.text(max_size=12))


def _paths(node, prefix=()):
    """Every location in a document: tuples of keys and list indices."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _parent(doc, path):
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw, documents: dict[str, dict]):
    """A shipped document with one to three mutations: a field deleted, its value replaced by a
    value of another type, an unknown key added, a key renamed, a list emptied or duplicated."""
    name = draw(st.sampled_from(sorted(documents)))
    doc = copy.deepcopy(documents[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        key = path[-1]
        kind = draw(st.sampled_from(["delete", "replace", "replace", "replace", "add", "rename", "grow"]))
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(VALUES)
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
        elif kind == "rename" and isinstance(parent, dict):
            new = draw(KEYS)
            parent[new] = parent.pop(key)
        elif kind == "grow":   # a list or value repeated: long lists, duplicate arm names
            parent[key] = [copy.deepcopy(parent[key])] * draw(st.sampled_from([0, 2, 30, 300]))
        else:
            parent[key] = draw(SCALARS)
    return name, doc


def dump(doc) -> str:
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, sort_keys=False)


# ---------------------------------------------------------------- 1. scenario files


def test_shipped_documents_are_valid():
    """The mutations start from valid documents (otherwise every mutant would be refused anyway)."""
    for name, doc in SCENARIOS.items():
        parse_scenario(dump(doc), name)
    assert len(load_cases()) == len(CASES) > 30


@settings(max_examples=N_SCENARIO, **FUZZ)
@given(mutated(SCENARIOS))
def test_scenario_mutations(named):
    name, doc = named
    accepts_or_refuses(parse_scenario, dump(doc), name)


# a few mutations known to have been bugs, kept as explicit examples
BOOL_DURATION = {**SCENARIOS["default.yaml"], "duration_days": True}
DICT_DOSE = copy.deepcopy(SCENARIOS["default.yaml"])
DICT_DOSE["arms"][1]["cbd"][0]["dose"] = {"mg": -5.0}


@pytest.mark.parametrize("doc, field", [
    (BOOL_DURATION, "duration_days"),
    (DICT_DOSE, "arms.1.cbd.0.dose.mg"),
    ({**SCENARIOS["default.yaml"], "parameters": {"cbd_cl": -1}}, "parameters.cbd_cl"),
    ({**SCENARIOS["default.yaml"], "parameters": {"cbd_cl": "80 furlong"}}, "parameters.cbd_cl"),
    ({**SCENARIOS["default.yaml"], "parameters": {"cbd_cl": [1]}}, "parameters.cbd_cl"),
    ({**SCENARIOS["default.yaml"], "parameters": {"no_such": 1}}, "parameters.no_such"),
    ({**SCENARIOS["default.yaml"], "output_step_h": 1e-6}, "output_step_h"),
    ({**SCENARIOS["default.yaml"], "visit_interval_days": 1e-9}, "visit_interval_days"),
    ({**SCENARIOS["default.yaml"], "populaton": {}}, "populaton"),
])
def test_former_bugs_are_refused_naming_the_field(doc, field):
    with pytest.raises(InputError) as caught:
        parse_scenario(dump(doc))
    assert_one_line(caught.value)
    assert caught.value.field == field, str(caught.value)


@pytest.mark.parametrize("dose", ["1e308 kg", "5 10**10**10", "1e6 mg", "2000 mg/kg", "nan mg", "-1 mg", "inf"])
def test_dose_text_is_bounded(dose):
    doc = copy.deepcopy(SCENARIOS["default.yaml"])
    doc["arms"][1]["cbd"][0]["dose"] = dose
    with pytest.raises(InputError, match=r"arms\.1\.cbd\.0\.dose: got"):
        parse_scenario(dump(doc))


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\nname: bomb\nduration_days: 1\narms: [{name: a}]\n"


DEFAULT_TEXT = dump(SCENARIOS["default.yaml"])
RAW = {   # name: bytes, and a word the one-line error must contain
    "empty": (b"", "empty"),
    "whitespace": (b"   \n\n# only a comment\n", "empty"),
    "binary": (bytes(range(256)) * 4, "UTF-8"),
    "invalid_utf8": (b"name: caf\xe9\n", "UTF-8"),
    "utf16": ("name: a\n".encode("utf-16"), "UTF-8"),
    "nul": (b"name: a\x00\n", "YAML"),
    "scalar": (b"42\n", "mapping"),
    "string": (b"just some words\n", "mapping"),
    "list": (b"- name: a\n- name: b\n", "mapping"),
    "deep_flow_list": (b"[" * 10_000 + b"]" * 10_000, "nested"),
    "deep_flow_map": (b"{a: " * 10_000 + b"1" + b"}" * 10_000, "nested"),
    "deep_block": ("".join("  " * i + "a:\n" for i in range(200)).encode(), "nested"),
    "huge": (b"name: big\n" + b"# padding\n" * 300_000, "bytes"),
    "huge_list": (b"name: big\nx: [" + b"1, " * 400_000 + b"1]\n", "bytes"),
    "billion_laughs": (_bomb().encode(), "alias"),
    "self_alias": (b"a: &a [1, *a]\nname: x\n", "alias"),
    "duplicate_key": (DEFAULT_TEXT.encode() + b"duration_days: 3\n", "twice"),
    "duplicate_nested": (b"name: a\nduration_days: 1\narms: [{name: a, name: b}]\n", "twice"),
    "python_tag": (b"!!python/object/apply:os.system ['true']\n", "YAML"),
    "complex_key": (b"? [a, b]\n: 1\n", "YAML"),
    "tab_indent": (b"name: a\n\tduration_days: 1\n", "YAML"),
    "unclosed": (b"name: 'a\n", "YAML"),
    "many_keys": (DEFAULT_TEXT.encode() + b"".join(b"k%d: 1\n" % i for i in range(20_000)), "one of the fields"),
    # found in review: PyYAML builds dates and converts huge integers while parsing (ValueError)
    "impossible_date": (b"name: a\nduration_days: 2001-02-30\narms: [{name: a}]\n", "duration_days"),
    "huge_integer": (b"name: a\npopulation: {n: 5, seed: " + b"9" * 5000 + b"}\n", "4300 digits"),
}


def test_raw_cases_stay_under_the_size_limit_where_they_should():
    assert len(RAW["deep_block"][0]) < safe_yaml.MAX_BYTES and len(RAW["many_keys"][0]) < safe_yaml.MAX_BYTES
    assert len(RAW["huge"][0]) > safe_yaml.MAX_BYTES and len(RAW["huge_list"][0]) > safe_yaml.MAX_BYTES


@pytest.mark.parametrize("name", sorted(RAW))
def test_raw_scenario_files(name):
    content, word = RAW[name]
    path = WORK / f"raw-{name}.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert_one_line(caught.value)
    assert word.lower() in str(caught.value).lower(), str(caught.value)


@pytest.mark.parametrize("make, word", [
    (lambda p: p.mkdir(), "existing file"),
    (lambda p: None, "existing file"),
    (lambda p: os.symlink(p, p), "existing file"),
    (lambda p: os.mkfifo(p), "existing file"),
])
def test_scenario_path_that_is_not_a_file(make, word, tmp_path):
    path = tmp_path / "scenario.yaml"
    make(path)
    with pytest.raises(InputError, match=word) as caught:
        load_scenario(path)
    assert_one_line(caught.value)


@pytest.mark.parametrize("path", ["a" * 5000, "x\x00y", "", "/proc/self/mem", "/dev/zero"])
def test_odd_scenario_paths(path):
    accepts_or_refuses(load_scenario, path)


@settings(max_examples=N_RAW, **FUZZ)
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)))
def test_random_bytes_as_scenario(content):
    path = WORK / "random.yaml"
    path.write_bytes(content)
    accepts_or_refuses(load_scenario, path)


@settings(max_examples=N_RAW, **FUZZ)
@given(st.integers(1, 200), st.sampled_from(["[", "{a: ", "- ", "&x [", "!!seq ["]))
def test_nesting_around_the_limit(depth, opener):
    closer = {"[": "]", "{a: ": "}", "- ": "", "&x [": "]", "!!seq [": "]"}[opener]
    if opener == "- ":
        text = "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "1\n"
    else:
        text = opener * depth + "1" + closer * depth
    try:
        safe_yaml.load(text, "t")
    except InputError as err:
        assert_one_line(err)
        assert depth > safe_yaml.MAX_DEPTH and "nested" in str(err), str(err)
    else:
        assert depth <= safe_yaml.MAX_DEPTH


@pytest.mark.parametrize("levels, refused", [(3, False), (9, True)])
def test_alias_expansion_is_counted(levels, refused):
    text = _bomb(levels)
    if refused:
        with pytest.raises(InputError, match="alias"):
            safe_yaml.load(text, "t")
    else:   # a few aliases are fine (and the scenario then fails on its unknown keys)
        assert safe_yaml.load(text, "t")["a2"][0][0] == ["x"] * 9


def test_merge_keys_are_not_duplicates():
    data = safe_yaml.load("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\n", "t")
    assert data["other"] == {"a": 1, "b": 3}


# ---------------------------------------------------------------- 1b. the CLI on scenario files


@pytest.mark.parametrize("name", ["binary", "billion_laughs", "deep_flow_list", "duplicate_key", "huge", "empty"])
def test_cli_run_on_raw_files(name):
    path = WORK / f"cli-{name}.yaml"
    path.write_bytes(RAW[name][0])
    with stopped("run"):
        status, err = run_cli(["run", str(path), "--out", "out"])
    assert_cli_refused(status, err)


@settings(max_examples=60, **FUZZ)
@given(mutated(SCENARIOS), st.sampled_from(["run", "targets", "cite", "sensitivity"]))
def test_cli_on_mutated_scenarios(named, command):
    name, doc = named
    path = WORK / f"mutant-{name}"
    path.write_text(dump(doc))
    with stopped(command):
        status, err = run_cli([command, str(path)] + (["--out", "out"] if command == "run" else []))
    assert_cli_ok(status, err)


def test_cli_end_to_end_one_line(tmp_path):
    """One real process: the entry point prints one line and exits 2 for an alias bomb."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_bomb())
    res = subprocess.run([sys.executable, "-m", "ecsim", "run", str(bomb), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert_cli_refused(res.returncode, res.stderr, "alias")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- 2. case files


@settings(max_examples=N_CASE, **FUZZ)
@given(mutated(CASES))
def test_case_mutations(named):
    name, doc = named
    path = WORK / "cases" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(dump(doc))
    accepts_or_refuses(load_case, path)


# Mutations of the metrics and sampling times of two short cases are loaded and, when accepted,
# evaluated on three simulated patients: a case file that loads must also evaluate.
EVAL_CASES = {name: load_case(Path(str(resources.files("ecsim.data.cases").joinpath(name))))
              for name in ("crav01_faah_ko.yaml", "crock20_high_fat.yaml")}
_CHUNKS: dict[str, dict] = {}


def _chunks(name):
    if name not in _CHUNKS:
        _CHUNKS[name] = runner.simulate_case(EVAL_CASES[name], default_registry(), n=3)
    return _CHUNKS[name]


QUANTITY_FIELDS = {
    "output": st.sampled_from(["cbd_plasma_ng_per_ml", "faah_inhibition", "gpi_hz", "severity.neck", "nope",
                               "severity.nowhere", "aea_fold_brain"]),
    "measure": st.sampled_from(["cmax", "tmax", "cmin", "auc_last", "auc_inf", "t_half", "c_at", "visit"]),
    "statistic": st.sampled_from(["geometric_mean", "arithmetic_mean", "median", "geometric_cv", "arithmetic_cv",
                                  "arithmetic_sd", "fraction_positive", "fraction_at_most"]),
    "window_h": st.one_of(st.none(), st.lists(NUMBERS, min_size=2, max_size=2),
                          st.tuples(st.floats(-5, 200), st.floats(-5, 200)).map(list)),
    "at_h": st.one_of(st.none(), NUMBERS, st.floats(-5, 200)),
    "at_day": st.one_of(st.none(), st.floats(-1, 10)),
    "at_most": st.one_of(st.none(), NUMBERS),
    "arm": st.sampled_from(["a", "nope", "vehicle"]),
}


@st.composite
def mutated_metric_case(draw):
    name = draw(st.sampled_from(sorted(EVAL_CASES)))
    doc = copy.deepcopy(CASES[name])
    metric = draw(st.sampled_from(doc["metrics"]))
    if "quantity" not in metric:
        metric["quantity"] = metric.pop("ratio_of", metric.pop("correlation_of", [{}]))[0]
    q = metric["quantity"]
    q.setdefault("arm", doc["scenario"]["arms"][0]["name"])
    for field in draw(st.lists(st.sampled_from(sorted(QUANTITY_FIELDS)), min_size=1, max_size=3, unique=True)):
        value = draw(QUANTITY_FIELDS[field])
        if field == "arm" and value == "a":
            value = doc["scenario"]["arms"][0]["name"]
        if value is None:
            q.pop(field, None)
        else:
            q[field] = value
    if draw(st.booleans()):
        doc["sampling_h"] = draw(st.one_of(st.lists(st.floats(-10, 300), max_size=6),
                                           st.lists(NUMBERS, min_size=2, max_size=4)))
    return name, doc


@settings(max_examples=N_CASE_EVAL, **FUZZ)
@given(mutated_metric_case())
def test_case_metric_mutations_load_and_evaluate(named):
    name, doc = named
    path = WORK / "eval" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(dump(doc))
    case = accepts_or_refuses(load_case, path)
    if case is None:
        return
    chunks = _chunks(name)
    with np.errstate(all="ignore"):
        for metric in case.metrics:
            value = runner.simulated_value(metric, chunks, case.sampling_h)
            runner.judge(metric, value)


@pytest.mark.parametrize("name", ["binary", "empty", "list", "billion_laughs", "duplicate_nested", "deep_flow_map"])
def test_raw_case_files(name, tmp_path):
    (tmp_path / "bad.yaml").write_bytes(RAW[name][0])
    with pytest.raises(InputError) as caught:
        load_cases(tmp_path)
    assert_one_line(caught.value)


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_text("x"), lambda p: p.mkdir(),
                                  lambda p: (p.mkdir(), (p / "x.yaml").mkdir())])
def test_cases_folder_that_is_not_one(make, tmp_path):
    folder = tmp_path / "cases"
    make(folder)
    with pytest.raises(InputError) as caught:
        load_cases(folder)
    assert_one_line(caught.value)


@settings(max_examples=30, **FUZZ)
@given(mutated(CASES))
def test_cli_validate_on_mutated_cases(named):
    name, doc = named
    folder = WORK / "cli-cases"
    folder.mkdir(exist_ok=True)
    (folder / "case.yaml").write_text(dump(doc))
    with stopped("validate"):
        status, err = run_cli(["validate", "--cases", str(folder)])
    assert_cli_ok(status, err)


# ---------------------------------------------------------------- 3. parameter overrides

REGISTRY = default_registry()
NAMES = sorted(REGISTRY.parameters)
UNITS = ["", "L/h", "mL/min", "mg", "1/h", "umol/L", "nM", "h", "d", "dimensionless", "furlong", "mg/kg/kg",
         "10**10**10", "L/h extra", "%", "kg**-1"]


@settings(max_examples=N_OVERRIDE, **FUZZ)
@given(st.one_of(st.sampled_from(NAMES), st.sampled_from(["", "nope", "CBD_CL", "cbd_cl ", 1, None]), st.text(max_size=10)),
       st.one_of(VALUES, st.tuples(NUMBERS, st.sampled_from(UNITS)).map(lambda t: f"{t[0]} {t[1]}")))
@example("cbd_cl", "5 10**10**10")
@example("cbd_cl", 10**400)
@example("cbd_cl", True)
def test_overrides(name, value):
    reg = accepts_or_refuses(REGISTRY.with_overrides, {name: value})
    if reg is not None:   # what was accepted is a finite number of the registry's sign and scale
        v = reg[name].value
        low, high, sign = override_range(REGISTRY[name])
        assert math.isfinite(v) and low <= v <= high and (v > 0 or sign != "above zero")


@pytest.mark.parametrize("value", [-1, 0, math.nan, math.inf, -math.inf, 1e300, "abc", "1 mg", [1], None, True, {}])
def test_override_bad_values_for_a_clearance(value):
    with pytest.raises(InputError) as caught:
        REGISTRY.with_overrides({"cbd_cl": value})
    assert_one_line(caught.value)
    assert caught.value.field == "parameters.cbd_cl"


def test_override_sign_rules_follow_the_registry():
    assert REGISTRY.with_overrides({"cbg_bias_msn": -0.5})["cbg_bias_msn"].value == -0.5   # a bias may be negative
    assert REGISTRY.with_overrides({"motor_reciprocal_inhibition": 0})["motor_reciprocal_inhibition"].value == 0
    assert REGISTRY.with_overrides({"cbd_faah_ic50_human": "0.001 umol/L"})["cbd_faah_ic50_human"].value == 0.001


@settings(max_examples=60, **FUZZ)
@given(st.dictionaries(st.one_of(st.sampled_from(NAMES[:40]), st.text(max_size=6)), VALUES, max_size=3))
def test_scenario_parameters_section(overrides):
    doc = {**SCENARIOS["default.yaml"], "parameters": overrides}
    accepts_or_refuses(parse_scenario, dump(doc))


# ---------------------------------------------------------------- 4. CLI flags

FLAG_VALUES = st.one_of(
    st.sampled_from(["-1", "0", "1", "2", "7", "8", "64", "65", "256", "3000", "3001", "65535", "65536",
                     "99999999999999999999999", "-99999999999999999999", "nan", "inf", "-inf", "1e400", "1.5",
                     "abc", "", " ", "0x10", "1_000", "１２", "--json", "sobol", "morris", "cervical", "tor1a"]),
    st.integers(-(10**25), 10**25).map(str),
    st.floats().map(str),
    st.text(max_size=12),
)
FLAGS = {
    "run": ["--patients", "--seed", "--workers", "--out", "--scheduler", "--chunk", "--resume"],
    "targets": ["--patients"],
    "circuit": ["--phenotype", "--levodopa"],
    "sensitivity": ["--samples", "--trajectories", "--top", "--method", "--seed"],
    "claims": ["--patients", "--seed"],
    "bench": ["--patients", "--reference-patients", "--days"],
    "serve": ["--port", "--max-patients", "--max-jobs", "--host"],
    "validate": ["--cases"],
    "cite": [],
}


def _safe_path(text: str) -> str:
    """Generated text as a relative path inside the scratch folder (the fuzzer must not create
    folders elsewhere when a value is accepted)."""
    return "./" + text.replace("..", "_").lstrip("/") if text else ""


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_cli_flags(command):
    flags = FLAGS[command]

    @settings(max_examples=N_FLAG, **FUZZ)
    @given(st.lists(st.tuples(st.sampled_from(flags or ["--json"]), FLAG_VALUES), min_size=1, max_size=2))
    def check(pairs):
        argv = [command]
        for flag, value in pairs:
            if flag in ("--out", "--data-dir", "--cases", "--resume"):
                value = _safe_path(value)
            argv += [flag] if flag == "--json" else [flag, value]
        if command == "serve":
            argv += ["--data-dir", "./web"]
        with stopped(command):
            status, err = run_cli(argv)
        assert_cli_ok(status, err)

    check()


@pytest.mark.parametrize("argv, named", [
    (["run", "--patients", "-1"], "--patients"), (["run", "--patients", "0"], "--patients"),
    (["run", "--patients", "99999999999999999999"], "--patients"), (["run", "--seed", "-5"], "--seed"),
    (["run", "--seed", str(2**64)], "--seed"), (["run", "--workers", "0"], "--workers"),
    (["run", "--workers", "1000"], "--workers"), (["run", "--patients", "nan"], "--patients"),
    (["targets", "--patients", "0"], "--patients"), (["claims", "--patients", "-3"], "--patients"),
    (["claims", "--seed", "-1"], "--seed"),
    (["circuit", "--levodopa", "nan"], "--levodopa"), (["circuit", "--levodopa", "-inf"], "--levodopa"),
    (["circuit", "--levodopa", "1e400"], "--levodopa"), (["circuit", "--phenotype", "x\ny"], "--phenotype"),
    (["sensitivity", "--samples", "7"], "--samples"), (["sensitivity", "--samples", "0"], "--samples"),
    (["sensitivity", "--trajectories", "1"], "--trajectories"), (["sensitivity", "--top", "0"], "--top"),
    (["sensitivity", "--method", "nan"], "--method"),
    (["sensitivity", "--seed", str(2**32)], "--seed"), (["sensitivity", "--seed", "-1"], "--seed"),
    (["bench", "--patients", "0"], "--patients"), (["bench", "--days", "nan"], "--days"),
    (["bench", "--days", "inf"], "--days"), (["bench", "--reference-patients", "-1"], "--reference-patients"),
    (["serve", "--port", "0"], "--port"), (["serve", "--port", "70000"], "--port"),
    (["serve", "--max-patients", "-1"], "--max-patients"), (["serve", "--max-jobs", "0"], "--max-jobs"),
    (["validate", "--cases", "./no-such-folder"], "--cases"),
    (["run", "--out", "./blocker/sub"], "--out"),
    (["run", "--out", "/proc/ecsim-run"], "--out"),   # os.access says writable for root; exit 1 until 2026-11-27
])
def test_cli_bad_flags_name_the_flag(argv, named):
    (WORK / "blocker").write_text("a file in the way")
    with stopped(argv[0]):
        status, err = run_cli(argv)
    assert_cli_refused(status, err, named)


@pytest.mark.parametrize("argv, value", [(["run", "--patients", "abc"], "abc"),
                                         (["serve", "--port", "1.5"], "1.5")])
def test_cli_parse_errors_show_the_value(argv, value):
    with stopped(argv[0]):
        status, err = run_cli(argv)
    assert_cli_refused(status, err, value)


@pytest.mark.parametrize("text", ["parameters: {a: 1}", "parameters: [1]", "[1]", "parameters: {a: {value: x}}",
                                  "parameters: {a: null}", "a: 1\na: 2\n"])
def test_parameter_files_with_bad_entries(text):
    """A parameter file being written (a developer's input) fails with one line, not a TypeError."""
    from ecsim.registry import _load_parameters
    with pytest.raises(InputError) as caught:
        _load_parameters(text, "new.yaml")
    assert_one_line(caught.value)
