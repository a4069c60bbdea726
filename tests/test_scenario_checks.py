"""Scenario checks from the user review: a primary day that is not a visit, doses that start after
the run, error lines that name the field and the value as written, and a meal or formulation the
route ignores. Each is refused with one line ``<field>: got <value>; allowed: <what>``."""

import subprocess
import sys

import pytest

from ecsim.errors import InputError
from ecsim.scenario import embedded_scenarios, load_scenario, parse_scenario

TWO_WEEKS = "name: t\nduration_days: {days}\npopulation: {{n: 20, phenotype: cervical}}\n{extra}arms:\n{arms}\n"
PLAIN_ARM = "  - {name: a}"


def scenario(arms: str = PLAIN_ARM, extra: str = "", days: float = 14) -> str:
    """A 14-day cervical-dystonia scenario with weekly visits (days 0, 7 and 14)."""
    return TWO_WEEKS.format(days=days, extra=extra, arms=arms)


def refusal(text: str) -> str:
    """The one-line error a scenario gives (the test fails if it is accepted)."""
    with pytest.raises(InputError) as err:
        parse_scenario(text)
    message = str(err.value)
    assert "\n" not in message and "this combination" not in message
    return message


# 1. trial.primary_day must be a visit day

def test_primary_day_between_visits_is_refused_not_moved():
    message = refusal(scenario(extra="trial: {primary_day: 10}\n"))
    assert message.startswith("trial.primary_day: got 10.0; allowed: a visit day")
    assert "0, 7 or 14" in message


@pytest.mark.parametrize("day", [0, 7, 14])
def test_primary_day_on_a_visit_is_accepted(day):
    assert parse_scenario(scenario(extra=f"trial: {{primary_day: {day}}}\n")).trial.primary_day == day


def test_primary_day_after_the_run_lists_the_visits_too():
    assert "0, 7 or 14" in refusal(scenario(extra="trial: {primary_day: 30}\n"))


def test_many_visits_are_described_not_all_listed():
    message = refusal(scenario(extra="trial: {primary_day: 100}\n", days=365))
    assert "0, 7, 14, ... (every 7 days), 364 or 365" in message and len(message) < 200


def test_primary_day_is_checked_after_the_visit_count_is_bounded():
    """Listing the visits of a 1e-9-day interval would need terabytes: the count is refused first."""
    message = refusal(scenario(extra="visit_interval_days: 1.0e-9\ntrial: {primary_day: 10}\n"))
    assert message.startswith("visit_interval_days: got 1e-09")


def test_cli_refuses_a_primary_day_between_visits_with_exit_2(tmp_path):
    path = tmp_path / "pd.yaml"
    path.write_text(scenario(extra="trial: {primary_day: 10}\n"))
    res = subprocess.run([sys.executable, "-m", "ecsim", "run", str(path), "--no-report", "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: trial.primary_day: got 10.0")
    assert not (tmp_path / "out").exists()


# 2. every dosing step (and every other treatment) must start inside the run

@pytest.mark.parametrize("arm, field", [
    ("{name: a, cbd: [{dose: 25 mg, times_h: [8], from_day: 20}]}", "arms.a.cbd.0.from_day: got 20"),
    ("{name: a, cbd: [{dose: 25 mg, times_h: [8], from_day: 14}]}", "arms.a.cbd.0.from_day: got 14"),
    ("{name: a, thc: [{dose: 5 mg, times_h: [8], from_day: 20}]}", "arms.a.thc.0.from_day: got 20"),
    ("{name: a, cbd: [{dose: 5 mg, times_h: [8], to_day: 7}, {dose: 9 mg, times_h: [8], from_day: 15}]}",
     "arms.a.cbd.1.from_day: got 15"),
    ("{name: a, comedication: [{drug: clobazam, steps: [{dose: 5 mg, times_h: [8], from_day: 20}]}]}",
     "arms.a.comedication.0.steps.0.from_day: got 20"),
    ("{name: a, comedication: [{drug: nabilone, steps: [{dose: 1 mg, times_h: [8], from_day: 30}]}]}",
     "arms.a.comedication.0.steps.0.from_day: got 30"),
])
def test_dosing_step_after_the_run_is_refused(arm, field):
    message = refusal(scenario(f"  - {arm}"))
    assert message.startswith(field) and "a day from 0 to 13" in message


def test_dosing_step_on_the_last_day_is_accepted():
    sc = parse_scenario(scenario("  - {name: a, cbd: [{dose: 25 mg, times_h: [8], from_day: 13}]}"))
    assert sc.arms[0].cbd[0].from_day == 13


def test_first_dose_after_a_fractional_end_is_refused():
    """A 13.25-day run ends at 06:00 on day 13: a step from day 13 at 08:00 gives nothing."""
    arm = "  - {name: a, cbd: [{dose: 25 mg, times_h: [8], from_day: 13}]}"
    assert "a day from 0 to 12" in refusal(scenario(arm, days=13.25))
    assert parse_scenario(scenario(arm.replace("[8]", "[4]"), days=13.25)).arms[0].cbd[0].from_day == 13


def test_dose_time_after_a_short_run_is_refused():
    message = refusal(scenario("  - {name: a, cbd: [{dose: 25 mg, times_h: [8]}]}", days=0.25))
    assert message.startswith("arms.a.cbd.0.times_h: got [8.0]; allowed: a time before the run ends (6 h)")


@pytest.mark.parametrize("block, field", [
    ("botulinum: {units: 500, first_day: 20}", "arms.a.botulinum.first_day: got 20.0"),
    ("gpi_stimulation: {from_day: 14}", "arms.a.gpi_stimulation.from_day: got 14.0"),
    ("physiotherapy: {from_day: 30}", "arms.a.physiotherapy.from_day: got 30.0"),
    ("painkiller: {drug: ibuprofen, mg_per_day: 1200, from_day: 20}", "arms.a.painkiller.from_day: got 20.0"),
])
def test_treatment_that_starts_after_the_run_is_refused(block, field):
    message = refusal(scenario(f"  - name: a\n    {block}"))
    assert message.startswith(field) and "a day before duration_days (14)" in message


def test_treatment_that_starts_inside_the_run_is_accepted():
    arm = "  - name: a\n    painkiller: {drug: ibuprofen, mg_per_day: 1200, from_day: 13}"
    assert parse_scenario(scenario(arm)).arms[0].painkiller.from_day == 13


# 3. error lines name the field and the value as written

def test_duplicate_arm_names_name_the_arm_and_the_name():
    message = refusal(scenario("  - {name: a}\n  - {name: b}\n  - {name: a}"))
    assert message.startswith("arms.2.name: got 'a'; allowed: ") and "unique" in message


def test_overlapping_steps_name_the_step_and_its_from_day():
    open_ended = "  - {name: a, cbd: [{dose: 25 mg, times_h: [8]}, {dose: 50 mg, times_h: [8], from_day: 3}]}"
    message = refusal(scenario(open_ended))
    assert message.startswith("arms.a.cbd.1.from_day: got 3; allowed: ") and "give step 0 a to_day" in message
    bounded = "  - {name: a, cbd: [{dose: 50 mg, times_h: [8], from_day: 3}, {dose: 25 mg, times_h: [8], to_day: 5}]}"
    assert refusal(scenario(bounded)).startswith("arms.a.cbd.0.from_day: got 3; allowed: day 5 or later: step 1 runs "
                                                 "on days [0, 5)")


def test_dose_time_off_the_output_grid_names_the_time():
    message = refusal(scenario("  - {name: a, cbd: [{dose: 25 mg, times_h: [8, 20.5]}]}"))
    assert message == "arms.a.cbd.0.times_h: got 20.5; allowed: multiples of output_step_h (1 h), e.g. 20 or 21"


def test_titration_time_off_the_output_grid_names_the_titration():
    arm = "  - name: a\n    titration: {levels: [5 mg, 10 mg], times_h: [8.5], step_days: 7}"
    assert refusal(scenario(arm)).startswith("arms.a.titration.times_h: got 8.5; allowed: multiples")


@pytest.mark.parametrize("levels, shown", [
    ("[5 mg/kg, 10 mg]", "['5 mg/kg', '10 mg']"),
    ("[10 mg, 0.005 g]", "['10 mg', '0.005 g']"),
    ("[{mg: 10}, {mg_per_kg: 5}]", "['10 mg', '5 mg/kg']"),
])
def test_titration_levels_are_shown_with_their_units(levels, shown):
    arm = f"  - name: a\n    titration: {{levels: {levels}, times_h: [8], step_days: 7}}"
    assert f"titration.levels: got {shown}; allowed: rising doses" in refusal(scenario(arm))


@pytest.mark.parametrize("arm, start", [
    ("{name: a, cbd: [{dose: true, times_h: [8]}]}", "arms.0.cbd.0.dose: got True; allowed: a dose: an amount with "
                                                     "a unit, e.g. '25 mg' or '5 mg/kg'"),
    ("{name: a, titration: {levels: [true, 5 mg], times_h: [8], step_days: 7}}",
     "arms.0.titration.levels: got [True, '5 mg']; allowed: a list of doses, each an amount with a unit"),
])
def test_true_as_a_dose_says_what_a_dose_is(arm, start):
    assert refusal(scenario(f"  - {arm}")).startswith(start)


def test_to_day_before_from_day_names_to_day():
    message = refusal(scenario("  - {name: a, cbd: [{dose: 25 mg, times_h: [8], from_day: 5, to_day: 3}]}"))
    assert message.startswith("arms.0.cbd.0.to_day: got 3; allowed: a day after from_day (5)")
    stimulation = refusal(scenario("  - name: a\n    gpi_stimulation: {from_day: 5, to_day: 2}"))
    assert stimulation.startswith("arms.0.gpi_stimulation.to_day: got 2.0; allowed: a day after from_day (5)")


def test_unknown_control_arm_names_the_field():
    message = refusal(scenario("  - {name: a}\n  - {name: b}", extra="trial: {control_arm: c}\n"))
    assert message == "trial.control_arm: got 'c'; allowed: one of the arm names: a, b"


# 4. a meal or a formulation only where the route uses it

@pytest.mark.parametrize("route", ["inhaled", "intravenous"])
def test_meal_with_a_route_that_ignores_it_is_refused(route):
    message = refusal(scenario(f"  - {{name: a, route: {route}, food: high_fat, cbd: [{{dose: 5 mg, times_h: [8]}}]}}"))
    assert message.startswith(f"arms.0.food: got 'high_fat'; allowed: fasted with route {route}")


@pytest.mark.parametrize("route", ["oromucosal", "inhaled", "intravenous"])
def test_sedds_with_a_non_oral_route_is_refused(route):
    arm = f"  - {{name: a, route: {route}, formulation: sedds, cbd: [{{dose: 5 mg, times_h: [8]}}]}}"
    message = refusal(scenario(arm))
    assert message.startswith(f"arms.0.formulation: got 'sedds'; allowed: oil with route {route}")


@pytest.mark.parametrize("arm", [
    "{name: a, route: oral, food: high_fat, formulation: sedds}",
    "{name: a, route: oromucosal, food: high_fat}",              # the meal factor applies (Stott 2013 case)
    "{name: a, route: inhaled, food: fasted, formulation: oil}",  # neutral values, as in the Ohlsson 1986 case
    "{name: a, route: intravenous}",                             # the defaults never trigger the check
])
def test_meals_and_formulations_the_route_uses_are_accepted(arm):
    assert parse_scenario(scenario(f"  - {arm}")).arms[0].name == "a"


def test_web_api_refuses_a_meal_with_an_inhaled_dose(tmp_path):
    """422, one line, no run started; the error names the request's field (`food`), not the path of
    the scenario it would build (`arms.1.food`, as until 2026-11-26)."""
    from fastapi.testclient import TestClient

    from ecsim.server import create_app
    client = TestClient(create_app(tmp_path, max_patients=20, report=False), base_url="http://127.0.0.1")
    refused = client.post("/api/runs", json={"route": "inhaled", "food": "high_fat", "patients": 10})
    assert refused.status_code == 422 and refused.json()["field"] == "food"
    assert refused.json()["detail"] == ("food: got 'high_fat'; allowed: fasted with route inhaled "
                                        "(a meal changes only oral and oromucosal absorption)")


def test_web_form_builds_inhaled_and_oromucosal_arms():
    """The form sends food: fasted for every route, and may send a meal with an oromucosal dose."""
    from ecsim.server.form import build_scenario
    from ecsim.server.models import request_model
    request = request_model(20)
    for body in ({"route": "inhaled"}, {"route": "oromucosal", "food": "low_fat"}):
        assert build_scenario(request(**body)).arms[1].route.value == body["route"]


# the shipped scenarios still pass every check

@pytest.mark.parametrize("name", embedded_scenarios())
def test_embedded_scenarios_load(name):
    assert load_scenario(name).arms
