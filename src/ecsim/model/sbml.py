"""SBML Level 3 export of a declared model, for libroadrunner, COPASI and other tools.

States become non-constant parameters with rate rules (amounts in µmol, time in hours);
intermediate expressions and outputs become assignment rules; registry parameters and covariates
are constants at the registry value (covariates of the typical patient,
`ecsim.chain.typical_covariates`), or at one patient's values when given. Every constant and state
carries its unit (a unit definition made from the declaration's unit string) and every registry
parameter its description and source as notes. Doses, when given, become events that add each
bolus to its state (a bolus at time 0 is the state's initial amount). Intermediates and outputs
carry no unit: the declaration names their units only in the output names. Everything comes from
the same declaration the engine uses, so the two cannot drift apart.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import sympy as sp

from ..errors import InputError, ModelError
from ..registry import Registry, default_registry
from ..units import registry as unit_registry
from .declaration import Model

SBML_KIND = {"litre": "liter", "gram": "gram", "mole": "mole", "second": "second", "metre": "meter"}
"""SBML unit kinds and the pint units they stand for (a unit factor of that dimension becomes that
kind)."""


def formula(expr: sp.Expr) -> str:
    """An SBML L3 infix formula for a SymPy expression."""
    return sp.sstr(sp.sympify(expr), full_prec=True).replace("**", "^")


def to_sbml(model: Model, registry: Registry | None = None, covariates: dict[str, float] | None = None, *,
            values: dict[str, float] | None = None, doses: Iterable = ()) -> str:
    """The model as an SBML L3V2 document (a string).

    ``values`` (name -> value) replace registry values and covariates, e.g. one patient's from
    `ecsim.simulation.patient_inputs`; ``doses`` (`ecsim.engine.Bolus`, one patient: the amount's
    first entry) become events."""
    import libsbml

    from ..chain import typical_covariates
    registry = registry or default_registry()
    covariates = {k: v for k, v in typical_covariates(registry).items() if k in model.covariates} | (covariates or {})
    given = {k: float(v) for k, v in (values or {}).items()}
    doc = libsbml.SBMLDocument(3, 2)
    sbml = doc.createModel()
    sbml.setId("ecsim_pk")
    sbml.setTimeUnits(_unit_id(sbml, "h"))
    sbml.setSubstanceUnits(_unit_id(sbml, "umol"))
    sbml.setExtentUnits(_unit_id(sbml, "umol"))
    sbml.setVolumeUnits(_unit_id(sbml, "L"))
    for name, unit in model.parameters.items():
        p = _constant(sbml, name, given.get(name, registry.value(name, unit)), unit)
        p.setNotes(_notes(registry, name))
    for name, value in covariates.items():
        _constant(sbml, name, given.get(name, value), model.covariates[name])
    initial = _initial_amounts(doses)
    for name, unit in model.state_units.items():
        _variable(sbml, name, initial.get(name, 0.0), unit)
        rule = sbml.createRateRule()
        rule.setVariable(name)
        rule.setMath(_math(_rate(model, name)))
    for name, expr in _intermediates(model).items():
        _variable(sbml, name, 0.0, None)
        rule = sbml.createAssignmentRule()
        rule.setVariable(name)
        rule.setMath(_math(expr))
    _dose_events(sbml, doses)
    return libsbml.writeSBMLToString(doc)


def write_sbml(model: Model, path: Path, **kwargs) -> None:
    """Write the SBML file atomically (temporary name, then rename); ``kwargs`` go to `to_sbml`."""
    path = Path(path)
    if not path.parent.is_dir() or path.is_dir():
        raise InputError("OUT", str(path), "a file path in an existing folder")
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(to_sbml(model, **kwargs))
    tmp.rename(path)


def _rate(model: Model, state: str) -> sp.Expr:
    for sub in model.submodels:
        if state in sub.rates:
            return sub.rates[state]
    raise ModelError(state)


def _intermediates(model: Model) -> dict[str, sp.Expr]:
    out: dict[str, sp.Expr] = {}
    for sub in model.submodels:
        out |= sub.algebra
    for sub in model.submodels:
        out |= sub.outputs
    return out


def _constant(sbml, name: str, value: float, unit: str):
    p = sbml.createParameter()
    p.setId(name)
    p.setValue(float(value))
    p.setConstant(True)
    p.setUnits(_unit_id(sbml, unit))
    return p


def _variable(sbml, name: str, value: float, unit: str | None) -> None:
    p = sbml.createParameter()
    p.setId(name)
    p.setValue(float(value))
    p.setConstant(False)
    if unit is not None:
        p.setUnits(_unit_id(sbml, unit))


def _unit_id(sbml, unit: str) -> str:
    """The id of a unit definition for ``unit`` (pint syntax: 'L/h', 'umol', 'nmol/L'), made once
    per document: each factor of the unit as one SBML unit of its kind, with the prefix or the
    conversion as its multiplier (SBML reads (multiplier · kind)^exponent: umol/L is
    (1e-06 mole)^1 (1 litre)^-1, h is (3600 second)^1)."""
    import libsbml
    if unit in ("dimensionless", ""):
        return "dimensionless"
    uid = "u_" + re.sub(r"[^A-Za-z0-9]", "_", unit.replace("/", "_per_"))
    if sbml.getUnitDefinition(uid) is not None:
        return uid
    ureg = unit_registry()
    definition = sbml.createUnitDefinition()
    definition.setId(uid)
    definition.setName(unit)
    for component, exponent in ureg.Quantity(1.0, unit).unit_items():
        quantity = ureg.Quantity(1.0, component)
        kind = next((k for k, dims in SBML_KIND.items() if quantity.dimensionality == ureg.Unit(dims).dimensionality),
                    None)
        if kind is None:
            raise ModelError(f"unit {unit!r}: no SBML kind for {component}")
        _unit(definition, libsbml.UnitKind_forName(kind), float(exponent), float(quantity.to(SBML_KIND[kind]).magnitude))
    return uid


def _unit(definition, kind, exponent: float, multiplier: float) -> None:
    u = definition.createUnit()
    u.setKind(kind)
    u.setExponent(exponent)
    u.setScale(0)
    u.setMultiplier(multiplier)


def _notes(registry: Registry, name: str) -> str:
    """A registry parameter's description, kind and source as SBML notes (XHTML)."""
    entry = registry[name]
    source = entry.source
    reference = registry.references.get(source)
    if reference is not None:
        source += f" ({reference.locator})"
    kind = getattr(entry.kind, "value", entry.kind)
    text = f"{entry.description}. Kind: {kind}; source: {source}." + (f" Reason: {entry.reason}" if entry.reason else "")
    return f'<body xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(text)}</p></body>'


def _initial_amounts(doses: Iterable) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for bolus in doses:
        if bolus.time_h <= 0.0:
            out[bolus.state] += float(bolus.amount[0])
    return out


def _dose_events(sbml, doses: Iterable) -> None:
    """One event per dose time after 0: each bolus adds its amount to its state."""
    by_time: dict[float, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for bolus in doses:
        if bolus.time_h > 0.0:
            by_time[float(bolus.time_h)][bolus.state] += float(bolus.amount[0])
    for i, (t, added) in enumerate(sorted(by_time.items()), start=1):
        event = sbml.createEvent()
        event.setId(f"dose_{i}")
        event.setUseValuesFromTriggerTime(True)
        trigger = event.createTrigger()
        trigger.setInitialValue(False)
        trigger.setPersistent(True)
        trigger.setMath(_math(sp.Ge(sp.Symbol("time"), t)))
        for state, amount in added.items():
            assign = event.createEventAssignment()
            assign.setVariable(state)
            assign.setMath(_math(sp.Symbol(state) + amount))


def _math(expr: sp.Expr):
    import libsbml
    ast = libsbml.parseL3Formula(formula(expr))
    if ast is None:
        raise ModelError(f"cannot express {expr} in SBML: {libsbml.getLastParseL3Error()}")
    return ast
