"""Bad input: one line naming field, value and what is allowed; exit status 2; no traceback."""

import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from ecsim.errors import InputError
from ecsim.scenario import load_scenario, parse_scenario

from .conftest import scenario_text

GOOD_ARM = "  - {name: a, cbd: [{dose: 25 mg, times_h: [8, 20]}]}"


def test_default_scenario_loads():
    sc = load_scenario(None)
    assert sc.arms and sc.population.n > 0


@pytest.mark.parametrize("arms, field", [
    ("  - {name: a, cbd: [{dose: -5 mg, times_h: [8]}]}", "dose"),
    ("  - {name: a, cbd: [{dose: 5 L, times_h: [8]}]}", "dose"),
    ("  - {name: a, cbd: [{dose: 5 mg, times_h: [25]}]}", "times_h"),
    ("  - {name: a, route: nasal, cbd: [{dose: 5 mg, times_h: [8]}]}", "route"),
    ("  - {name: a, food: pizza}", "food"),
    ("  - {name: a, cbd: [{dose: 5 mg, times_h: [8.3]}]}", "arms"),
    ("  - {name: a, cbd: [{dose: 5 mg, times_h: [8]}, {dose: 9 mg, times_h: [8], from_day: 0, to_day: 3}]}", "arms"),
    ("  - {name: a, colour: red}", "colour"),
    ("  - {name: a, cbd: [{dose: 25 mg, times_h: [8, 8]}]}", "times_h"),   # silently a double dose until 2026-11-27
])
def test_bad_arm_names_field(arms, field):
    with pytest.raises(InputError) as err:
        parse_scenario(scenario_text(arms))
    assert field in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("population, field", [
    ("{weight_min_kg: 100, weight_max_kg: 50}", "population.weight_min_kg"),   # all would weigh 50 kg
    ("{weight_mean_kg: 30}", "population.weight_mean_kg"),                      # below the 40 kg minimum
    ("{seed: 4294967296}", "population.seed"),   # 2^32: would alias seed 0's streams
])
def test_bad_population_names_field(population, field):
    text = scenario_text(GOOD_ARM).replace("population: {n: 20, seed: 7}", f"population: {population}")
    with pytest.raises(InputError) as err:
        parse_scenario(text)
    assert str(err.value).startswith(f"{field}:") and "\n" not in str(err.value)


def test_a_negative_dose_is_called_negative():
    with pytest.raises(InputError, match=r"got '-25 mg'; allowed: a dose of 0 or more"):
        parse_scenario(scenario_text("  - {name: a, cbd: [{dose: -25 mg, times_h: [8]}]}"))


def test_weight_based_dose_parses():
    sc = parse_scenario(scenario_text("  - {name: a, cbd: [{dose: 10 mg/kg, times_h: [8]}]}"))
    assert sc.arms[0].cbd[0].dose.mg_per_kg == 10


def test_gram_dose_converts():
    sc = parse_scenario(scenario_text("  - {name: a, cbd: [{dose: 0.3 g, times_h: [8]}]}"))
    assert sc.arms[0].cbd[0].dose.mg == pytest.approx(300)


@pytest.mark.parametrize("text", ["", "just a string", "[1, 2]", "a: [unclosed", "\x00\x01binary", "{" * 5000])
def test_garbage_files_give_one_line(text):
    with pytest.raises(InputError) as err:
        parse_scenario(text)
    assert "\n" not in str(err.value)


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=20) | st.integers(),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
                    max_leaves=20))
def test_fuzzed_scenarios_never_escape_as_other_errors(data):
    import yaml
    try:
        parse_scenario(yaml.safe_dump({"name": "x", "duration_days": 1, "arms": [{"name": "a", "cbd": data}]}))
    except InputError as exc:
        assert "\n" not in str(exc)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ecsim", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_cli_bad_scenario_exit_2_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(scenario_text("  - {name: a, cbd: [{dose: lots, times_h: [8]}]}"))
    res = run_cli("run", str(bad), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "dose" in res.stderr
    assert not (tmp_path / "out").exists()


def test_cli_bad_flag_exit_2(tmp_path):
    res = run_cli("run", "--patients", "0", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "--patients" in res.stderr and res.stderr.count("\n") == 1


def test_cli_unwritable_out_fails_before_simulating(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("run", "--out", str(blocker / "sub"), "--patients", "2")
    assert res.returncode == 2 and "--out" in res.stderr and res.stderr.count("\n") == 1
