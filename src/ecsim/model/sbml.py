"""SBML Level 3 export of a declared model, for libroadrunner, COPASI and other tools.

States become non-constant parameters with rate rules (amounts in µmol, time in h); intermediate
expressions and outputs become assignment rules; registry parameters and covariates are constants
at the registry value (covariates of the typical patient, `ecsim.chain.typical_covariates`). Everything comes from the same
declaration the engine uses, so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import sympy as sp

from ..errors import InputError, ModelError
from ..registry import Registry, default_registry
from .declaration import Model

def formula(expr: sp.Expr) -> str:
    """An SBML L3 infix formula for a SymPy expression."""
    return sp.sstr(sp.sympify(expr), full_prec=True).replace("**", "^")


def to_sbml(model: Model, registry: Registry | None = None, covariates: dict[str, float] | None = None) -> str:
    import libsbml

    from ..chain import typical_covariates
    registry = registry or default_registry()
    covariates = {k: v for k, v in typical_covariates(registry).items() if k in model.covariates} | (covariates or {})
    doc = libsbml.SBMLDocument(3, 2)
    sbml = doc.createModel()
    sbml.setId("ecsim_pk")
    sbml.setTimeUnits("dimensionless")
    for name, unit in model.parameters.items():
        _constant(sbml, name, registry.value(name, unit))
    for name, value in covariates.items():
        _constant(sbml, name, value)
    for name in model.states:
        _variable(sbml, name)
        rule = sbml.createRateRule()
        rule.setVariable(name)
        rule.setMath(_math(_rate(model, name)))
    for name, expr in _intermediates(model).items():
        _variable(sbml, name)
        rule = sbml.createAssignmentRule()
        rule.setVariable(name)
        rule.setMath(_math(expr))
    return libsbml.writeSBMLToString(doc)


def write_sbml(model: Model, path: Path) -> None:
    """Write the SBML file atomically (temporary name, then rename)."""
    path = Path(path)
    if not path.parent.is_dir() or path.is_dir():
        raise InputError("OUT", str(path), "a file path in an existing folder")
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(to_sbml(model))
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


def _constant(sbml, name: str, value: float) -> None:
    p = sbml.createParameter()
    p.setId(name)
    p.setValue(float(value))
    p.setConstant(True)


def _variable(sbml, name: str) -> None:
    p = sbml.createParameter()
    p.setId(name)
    p.setValue(0.0)
    p.setConstant(False)


def _math(expr: sp.Expr):
    import libsbml
    ast = libsbml.parseL3Formula(formula(expr))
    if ast is None:
        raise ModelError(f"cannot express {expr} in SBML: {libsbml.getLastParseL3Error()}")
    return ast
