"""Fixes from a user review of the command line: `ecsim params` never cuts a name short, `ecsim run
--help` says where --out writes and what it replaces, and an override's size limit names its number."""

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ecsim.cli import app, params_table
from ecsim.errors import InputError
from ecsim.outputs import check_out
from ecsim.registry import default_registry, override_scale

from .test_scenario import run_cli

LONG_NAME = "cbd_f_oral_d50_mg"   # a real registry name that an 80-column table used to cut to 'cbd_f_o…'


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_params_piped_at_80_columns_one_whole_row_per_parameter():
    reg = default_registry()
    res = CliRunner().invoke(app, ["params"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "…" not in res.output
    rows = {cells[0]: cells for cells in map(_cells, lines) if cells and cells[0] in reg.parameters}
    assert set(rows) == set(reg.parameters), "some name is cut or wrapped"
    grepped = [line for line in lines if LONG_NAME in line]   # what `ecsim params | grep` shows
    assert len(grepped) == 1
    entry = reg[LONG_NAME]
    assert _cells(grepped[0]) == [LONG_NAME, f"{entry.value:.4g}", entry.unit, entry.species, entry.kind,
                                  entry.source, entry.uncertainty.describe()]


def _terminal_rows(width: int) -> dict[str, list[list[str]]]:
    """`ecsim params` in a terminal ``width`` characters wide: each name's row, as the cells of its lines."""
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=True, color_system=None).print(
        params_table(default_registry(), width))
    assert "…" not in buf.getvalue() and max(len(line) for line in buf.getvalue().splitlines()) <= width
    rows: dict[str, list[list[str]]] = {}
    for line in buf.getvalue().splitlines():
        cells = _cells(line)
        if cells and cells[0]:
            rows[cells[0]] = [cells]
        elif cells and rows:
            rows[list(rows)[-1]].append(cells)
    return rows


@pytest.mark.parametrize("width", [80, 120])
def test_params_in_a_narrow_terminal_two_columns_nothing_broken(width):
    reg = default_registry()
    rows = _terminal_rows(width)
    assert set(reg.parameters) <= set(rows), "some name is cut or wrapped"
    entry = reg[LONG_NAME]
    details = " ".join(" ".join(cells[1] for cells in rows[LONG_NAME]).split())
    assert details == (f"{entry.value:.4g} {entry.unit} · {entry.kind} · {entry.source} · {entry.species} · "
                       f"{entry.uncertainty.describe()}")


def test_params_in_a_wide_terminal_one_column_each_identifiers_whole():
    reg = default_registry()
    rows = _terminal_rows(200)
    assert set(reg.parameters) <= set(rows)
    for name, lines in rows.items():
        if name in reg.parameters:
            entry = reg[name]
            assert lines[0][1:3] + lines[0][4:6] == [f"{entry.value:.4g}", entry.unit, entry.kind, entry.source]


def test_run_help_states_the_default_out_and_what_it_replaces():
    res = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.replace("│", " ").split())   # the help column's lines, joined
    assert "(default: results/run in the current folder)" in text
    assert "an earlier ecsim result there (a folder with manifest.json) is replaced whole" in text
    assert "a folder holding anything else is refused" in text
    from ecsim.simulation import CHUNK
    assert f"(default: {CHUNK})" in text and "(default: report)" in text   # once swallowed as rich markup


def test_out_behaves_as_the_help_says(tmp_path):
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "manifest.json").write_text("{}")
    assert check_out(earlier) == earlier
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="an earlier ecsim result"):
        check_out(other)


def test_override_limit_quotes_the_bound_it_is_based_on_and_the_value():
    with pytest.raises(InputError) as err:
        default_registry().with_overrides({"cbd_cl": 1e12})
    message = str(err.value)
    assert "10^6 times 93.6, the upper bound of the registry's uncertainty range" in message
    assert "the registry's value is 75.6" in message
    assert "registry's 93.6" not in message


def test_override_limit_quotes_the_value_when_it_is_the_scale():
    entry = default_registry()["adverse_somnolence_ec50"]   # lognormal uncertainty: no bounds
    with pytest.raises(InputError, match=r"10\^6 times the registry's value 125\.9\)"):
        default_registry().with_overrides({"adverse_somnolence_ec50": 1e12})
    assert override_scale(entry) == (pytest.approx(125.9), "the registry's value 125.9")


def test_override_limit_of_an_all_zero_entry_says_one():
    entry = default_registry()["cbd_f_oral_max"]
    zero = entry.model_copy(update={"value": 0.0})
    assert override_scale(zero)[0] == 1.0 and override_scale(zero)[1].startswith("1 (")


def test_override_error_from_a_scenario_is_one_line_exit_2(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: t\nduration_days: 1\npopulation: {n: 2, seed: 1}\n"
                        "arms:\n  - {name: a, cbd: [{dose: 10, times_h: [8]}]}\nparameters: {cbd_cl: 1000000000000}\n")
    res = run_cli("run", str(scenario), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "the registry's value is 75.6" in res.stderr
    assert not (tmp_path / "out").exists()


def test_run_prints_symptoms_and_regions_as_separate_tables(tmp_path, capsys):
    """User review: the symptoms and the regions were one table, row i of one beside row i of the
    other ('abnormal twisting' beside 'larynx'); the change column did not say between which days."""
    from ecsim.report_text import print_clinical
    from ecsim.runjob import run_job
    summary = run_job(None, tmp_path / "run", patients=6, quiet=True, report=False)
    capsys.readouterr()
    print_clinical(summary)
    text = capsys.readouterr().out
    arm = summary["clinical"][0]["arm"]
    last = summary["clinical"][0]["visit_days"][-1]
    assert f"{arm}: symptoms" in text and f"{arm}: severity per region" in text
    assert "symptoms and regions" not in text
    assert f"change day 0 to {last:g} (95% CI)" in text
