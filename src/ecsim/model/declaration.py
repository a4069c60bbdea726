"""Symbolic model declaration.

Each `Submodel` declares its states (with units), the registry parameters it reads (with the
internal unit the registry converts them to), per-patient covariates, named intermediate
expressions and one rate expression per state, all in SymPy. A `Model` is an ordered list of
submodels: a submodel may read the states of the submodels before it (CBD drives the clobazam
interaction, drug levels drive receptors), never those after it. The engine, the reference solver
and the SBML export all derive from this one declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from ..errors import ModelError


def symbols(names: str) -> tuple[sp.Symbol, ...]:
    """Real, non-negative SymPy symbols, e.g. ``cl, v = symbols("cbd_cl cbd_v1")``."""
    out = sp.symbols(names, real=True, nonnegative=True)
    return out if isinstance(out, tuple) else (out,)


@dataclass(frozen=True)
class Submodel:
    """States, parameters and equations of one layer or one drug.

    Attributes:
        name: short identifier, e.g. ``"cbd"``.
        states: state name -> unit (amounts; time unit of every rate is hours).
        parameters: registry name -> internal unit the value is converted to.
        covariates: per-patient input name -> unit (body weight, enzyme activity, ...).
        algebra: named intermediate expressions, in order (may use earlier ones).
        rates: state name -> d(state)/dt in state unit per hour.
        outputs: output name (unit in the name) -> expression.
    """

    name: str
    states: dict[str, str]
    parameters: dict[str, str]
    rates: dict[str, sp.Expr]
    covariates: dict[str, str] = field(default_factory=dict)
    algebra: dict[str, sp.Expr] = field(default_factory=dict)
    outputs: dict[str, sp.Expr] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if set(self.rates) != set(self.states):
            raise ModelError(f"{self.name}: rates must cover exactly the states {sorted(self.states)}")


@dataclass(frozen=True, eq=False)
class Model:
    """An ordered composition of submodels."""

    submodels: tuple[Submodel, ...]

    @cached_property
    def states(self) -> list[str]:
        return [s for sub in self.submodels for s in sub.states]

    @cached_property
    def state_units(self) -> dict[str, str]:
        """State name -> unit, in the order of `states`."""
        return _union(sub.states for sub in self.submodels)

    @cached_property
    def parameters(self) -> dict[str, str]:
        return _union(sub.parameters for sub in self.submodels)

    @cached_property
    def covariates(self) -> dict[str, str]:
        return _union(sub.covariates for sub in self.submodels)

    @cached_property
    def algebra(self) -> dict[str, sp.Expr]:
        """All intermediate expressions, each expanded down to states, parameters, covariates."""
        expanded: dict[str, sp.Expr] = {}
        for sub in self.submodels:
            for name, expr in sub.algebra.items():
                expanded[name] = expr.xreplace(_syms(expanded))
        return expanded

    def expand(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every intermediate name replaced by its definition."""
        return sp.sympify(expr).xreplace(_syms(self.algebra))

    @cached_property
    def rates(self) -> dict[str, sp.Expr]:
        return {s: self.expand(sub.rates[s]) for sub in self.submodels for s in sub.states}

    @cached_property
    def outputs(self) -> dict[str, sp.Expr]:
        return {k: self.expand(v) for sub in self.submodels for k, v in sub.outputs.items()}

    def submodel(self, name: str) -> Submodel:
        for sub in self.submodels:
            if sub.name == name:
                return sub
        raise KeyError(name)

    def check(self) -> None:
        """Every free symbol is a state, parameter or covariate; no submodel reads a later one."""
        known = set(self.parameters) | set(self.covariates)
        seen: set[str] = set()
        for sub in self.submodels:
            seen |= set(sub.states)
            for state in sub.states:
                free = {str(x) for x in self.rates[state].free_symbols}
                unknown = free - known - seen
                if unknown:
                    raise ModelError(f"{sub.name}.{state} uses undeclared or later symbols {sorted(unknown)}")
            for name in sub.outputs:
                unknown = {str(x) for x in self.outputs[name].free_symbols} - known - seen
                if unknown:
                    raise ModelError(f"{sub.name} output {name} uses undeclared symbols {sorted(unknown)}")


def _union(dicts) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in dicts:
        for k, v in d.items():
            if out.get(k, v) != v:
                raise ModelError(f"{k} declared with two units: {out[k]} and {v}")
            out[k] = v
    return out


def _syms(mapping: dict[str, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    return {sp.Symbol(k, real=True, nonnegative=True): v for k, v in mapping.items()}
