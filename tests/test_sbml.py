"""SBML export: the same model in libroadrunner gives the engine's trajectories (rel. 1e-4)."""

import numpy as np
import pytest

from ecsim.engine import Bolus, Grid, integrate
from ecsim.model.sbml import to_sbml

from .conftest import typical_values

roadrunner = pytest.importorskip("roadrunner")


def test_roadrunner_reproduces_engine(chain, registry):
    model = chain
    rr = roadrunner.RoadRunner(to_sbml(model, registry))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-14
    p = typical_values(registry)
    grid = Grid(72.0, 0.5)
    doses = {"cbd_gut": 3000.0, "thc_gut": 10.0, "clb_gut": 30.0}
    ours = integrate(model, p, [Bolus(0.0, s, np.array([a])) for s, a in doses.items()], grid, 1)
    for state, amount in doses.items():
        rr[state] = amount
    compared = ("cbd_central", "cbd7oh_central", "thc_central", "nclb_central", "cb1_surface_shift_glu_corticostriatal")
    res = rr.simulate(0, 72, grid.size, ["time", *compared])
    for i, state in enumerate(compared, start=1):
        np.testing.assert_allclose(res[:, i], ours[state][0], rtol=0, atol=1e-4 * np.abs(ours[state][0]).max(), err_msg=state)


def test_roadrunner_reproduces_faah_turnover(chain, registry):
    """PF-04457845 PK and the FAAH protein state (Magnus steps in the engine) against CVODE."""
    rr = roadrunner.RoadRunner(to_sbml(chain, registry))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-14
    p = typical_values(registry)
    grid = Grid(96.0, 1.0)
    ours = integrate(chain, p, [Bolus(0.0, "pf04457845_gut", np.array([5.0]))], grid, 1)
    rr["pf04457845_gut"] = 5.0
    compared = ("pf04457845_central", "faah_inactivated_fraction")
    res = rr.simulate(0, 96, grid.size, ["time", *compared])
    for i, state in enumerate(compared, start=1):
        np.testing.assert_allclose(res[:, i], ours[state][0], rtol=0, atol=1e-4 * np.abs(ours[state][0]).max(), err_msg=state)
    assert ours["faah_inactivated_fraction"][0, -1] > 0.5


ARM_SCENARIO = """
name: sbml-arms
duration_days: 3
output_step_h: 0.5
population: {n: 10, seed: 3}
arms:
  - {name: oil_fed, product: full_spectrum, food: low_fat, cbd: [{dose: 25 mg, times_h: [0, 12]}]}   # a dose at 0: initial amounts
  - name: spray_clobazam
    product: pharmaceutical
    route: oromucosal
    cbd: [{dose: 10 mg/kg, times_h: [8]}]
    comedication: [{drug: clobazam, steps: [{dose: 10 mg, times_h: [8, 20]}]}]
"""


@pytest.mark.parametrize("arm", ["oil_fed", "spray_clobazam"])
def test_an_exported_arm_runs_alone_in_roadrunner(arm):
    """`export-sbml --scenario --arm`: the typical patient's values and doses (events) are in the
    file, so libroadrunner needs nothing else to give ecsim's trajectories of that patient (a meal's
    slower absorption, full-spectrum THC, an oromucosal dose split between mucosa and gut, clobazam
    under CBD inhibition)."""
    from ecsim.chain import full_model
    from ecsim.scenario import parse_scenario
    from ecsim.simulation import scenario_registry, simulate_chunk, typical_arm_inputs
    sc = parse_scenario(ARM_SCENARIO)
    values, doses = typical_arm_inputs(sc, next(a for a in sc.arms if a.name == arm))
    rr = roadrunner.RoadRunner(to_sbml(full_model(), scenario_registry(sc), values=values, doses=doses))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-14
    typical = sc.model_copy(update={"population": sc.population.model_copy(update={"typical": True})})
    ours = simulate_chunk(typical, next(a for a in sc.arms if a.name == arm), 0, 1)
    compared = ("cbd_central", "cbd_mucosa", "thc_central", "thc11oh_central", "nclb_central",
                "cb1_surface_shift_glu_corticostriatal")
    res = rr.simulate(0, 72, len(ours.times_h), ["time", *compared])
    np.testing.assert_allclose(res[:, 0], ours.times_h)
    for i, state in enumerate(compared, start=1):
        peak = np.abs(ours.states[state][0]).max()
        np.testing.assert_allclose(res[:, i], ours.states[state][0], rtol=0, atol=1e-4 * peak + 1e-300, err_msg=state)
    assert ours.states["cbd_central"][0].max() > 0


def test_the_export_carries_units_and_sources(registry):
    """Time in hours, amounts in µmol; every registry parameter has a unit definition of its
    registry unit's dimension and the parameter's source in its notes."""
    import libsbml

    from ecsim.chain import full_model
    from ecsim.units import registry as units
    doc = libsbml.readSBMLFromString(to_sbml(full_model(), registry))
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    m = doc.getModel()
    hour = m.getUnitDefinition(m.getTimeUnits())
    assert libsbml.UnitDefinition.printUnits(hour, True) == "(3600 second)^1"
    assert libsbml.UnitDefinition.printUnits(m.getUnitDefinition("u_umol_per_L"), True) == "(1e-06 mole)^1, (1 litre)^-1"
    for name, unit in full_model().parameters.items():
        p = m.getParameter(name)
        definition = m.getUnitDefinition(p.getUnits())
        if unit == "dimensionless":
            assert p.getUnits() == "dimensionless", name
            continue
        si = libsbml.UnitDefinition.convertToSI(definition)
        factor = np.prod([(u.getMultiplier() * 10.0 ** u.getScale()) ** u.getExponent() for u in si.getListOfUnits()])
        dims = {libsbml.UnitKind_toString(u.getKind()): u.getExponent() for u in si.getListOfUnits()
                if u.getKind() != libsbml.UNIT_KIND_DIMENSIONLESS}
        expected = units().Quantity(1.0, unit).to_base_units()
        assert factor == pytest.approx(expected.magnitude, rel=1e-12), name
        assert dims == {{"meter": "metre"}.get(k, k): v for k, v in expected.unit_items()}, name
        assert registry[name].source in p.getNotesString(), name


def test_export_sbml_command_with_an_arm_and_its_errors(tmp_path):
    """The command writes the arm's file (events, units); --arm without --scenario, or an arm the
    scenario lacks, is a one-line error with exit status 2 and no file."""
    import libsbml

    from .test_scenario import run_cli
    out = tmp_path / "arm.xml"
    res = run_cli("export-sbml", str(out), "--scenario", "default", "--arm", "full_spectrum_25mg_bid")
    assert res.returncode == 0, res.stderr
    m = libsbml.readSBMLFromFile(str(out)).getModel()
    assert m.getNumEvents() == 2 * 7 * 12          # 8 h and 20 h for 12 weeks
    first = m.getEvent(0)
    assert libsbml.formulaToL3String(first.getTrigger().getMath()) == "time >= 8"
    assert {first.getEventAssignment(i).getVariable() for i in range(first.getNumEventAssignments())} == {
        "cbd_gut", "thc_gut"}                       # a full-spectrum oil: CBD and its THC
    for args, field in ((("--arm", "full_spectrum_25mg_bid"), "--arm"),
                        (("--scenario", "default", "--arm", "nope"), "--arm")):
        bad = tmp_path / "bad.xml"
        res = run_cli("export-sbml", str(bad), *args)
        assert res.returncode == 2 and res.stderr.startswith(f"error: {field}: got ") and res.stderr.count("\n") == 1
        assert not bad.exists() and not list(tmp_path.glob(".*partial"))
