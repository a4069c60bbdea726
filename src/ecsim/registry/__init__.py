"""The parameter registry: every number the model uses, with unit, species, source and spread.

Parameters live in YAML files under ``registry/parameters/`` (one per source or topic). Each entry
carries value, unit (checked with pint when loaded), species, source (a key of
``registry/bibliography.yaml`` that has a DOI or PMID, or ``assumption`` with a reason), kind
(measured, derived, fitted or assumption), parameter uncertainty and, where patients differ,
between-subject variability. See docs/parameters.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputError
from ..safe_yaml import load as load_yaml, plain_unit
from ..units import convert

MAX_OVERRIDE_FACTOR = 1e6
"""An override may be at most this many times the registry's value (or its uncertainty bound, the
larger): far beyond any what-if question or fit, well short of overflow in the engine."""

Kind = Literal["measured", "derived", "fitted", "assumption"]


class Spread(BaseModel):
    """A distribution around a value: parameter uncertainty or between-subject variability.

    ``lognormal`` uses ``cv`` (geometric CV as a fraction); ``normal`` uses ``sd`` in the
    parameter's unit; ``uniform`` uses ``low``/``high`` in the parameter's unit.
    """

    model_config = ConfigDict(extra="forbid")
    distribution: Literal["lognormal", "normal", "uniform"]
    cv: float | None = Field(default=None, ge=0, le=10)   # 10: a log-SD of 2.15, beyond the fits' cap of 2
    sd: float | None = Field(default=None, ge=0)
    low: float | None = None
    high: float | None = None
    basis: str = ""

    @model_validator(mode="after")
    def _complete(self) -> "Spread":
        need = {"lognormal": ("cv",), "normal": ("sd",), "uniform": ("low", "high")}[self.distribution]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{self.distribution} spread needs {', '.join(missing)}")
        return self

    def describe(self) -> str:
        """Short text for tables: 'lognormal CV 0.5', 'normal SD 2', 'uniform [1, 3]'."""
        if self.distribution == "lognormal":
            return f"lognormal CV {self.cv:g}"
        if self.distribution == "normal":
            return f"normal SD {self.sd:g}"
        return f"uniform [{self.low:g}, {self.high:g}]"


class Parameter(BaseModel):
    """One registry entry."""

    model_config = ConfigDict(extra="forbid")
    name: str
    value: float
    unit: str
    species: str
    source: str
    kind: Kind
    description: str
    uncertainty: Spread
    variability: Spread | None = None
    reason: str = ""
    fitted_to: list[str] = Field(default_factory=list)
    note: str = ""
    max: float | None = None   # a physical upper bound: 1 for a fraction, share, probability or bioavailability

    @model_validator(mode="after")
    def _within_max(self) -> "Parameter":
        """The value and the uncertainty range stay at or below ``max``; draws beyond it are truncated
        (`uncertainty.problem.Factor`), overrides beyond it refused (`Registry.with_overrides`)."""
        if self.max is not None and (self.value > self.max or (self.uncertainty.high or 0) > self.max):
            raise ValueError(f"value {self.value:g} or uncertainty high {self.uncertainty.high} above max {self.max:g}")
        return self

    @model_validator(mode="after")
    def _provenance(self) -> "Parameter":
        if (self.source == "assumption" or self.kind == "assumption") and len(self.reason) < 10:
            raise ValueError("an assumption needs a 'reason' (at least a sentence)")
        if self.kind == "fitted" and not self.fitted_to:
            raise ValueError("a fitted parameter lists the calibration cases in 'fitted_to'")
        return self


class Reference(BaseModel):
    """A bibliography entry; at least one of DOI, PMID or URL (for labels) is required."""

    model_config = ConfigDict(extra="forbid")
    key: str
    citation: str
    doi: str = ""
    pmid: str = ""
    url: str = ""
    checked: str = Field(description="how the number was read: V primary, S secondary, D derived")

    @property
    def locator(self) -> str:
        """Where to find it: 'doi:...', else 'PMID ...', else the URL."""
        return f"doi:{self.doi}" if self.doi else (f"PMID {self.pmid}" if self.pmid else self.url)

    @model_validator(mode="after")
    def _locator(self) -> "Reference":
        if not (self.doi or self.pmid or self.url):
            raise ValueError(f"reference {self.key} needs a doi, pmid or url")
        return self


@dataclass(frozen=True)
class Registry:
    """All parameters and references, loaded and checked."""

    parameters: dict[str, Parameter]
    references: dict[str, Reference]

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self.parameters[name]
        except KeyError:
            raise InputError("parameter", name, "a name listed by `ecsim params`") from None

    def value(self, name: str, unit: str) -> float:
        """The value of ``name`` converted to ``unit``."""
        entry = self[name]
        return convert(entry.value, entry.unit, unit, field=f"parameters.{name}.unit")

    def citations(self, names: list[str]) -> list[Reference]:
        """The references behind the given parameters, sorted by key."""
        keys = {self[n].source for n in names} - {"assumption"}
        return [self.references[k] for k in sorted(keys)]

    def with_overrides(self, overrides: dict[str, float | str]) -> "Registry":
        """A copy with some values replaced; strings like ``'80 L/h'`` carry their unit. Each value
        must be finite, of the registry's sign (see `override_range`) and within
        `MAX_OVERRIDE_FACTOR` of its scale; anything else is an InputError naming the parameter."""
        if not isinstance(overrides, dict):
            raise InputError("parameters", overrides, "a mapping of parameter name to value")
        params = dict(self.parameters)
        for name, given in overrides.items():
            if not isinstance(name, str) or name not in self.parameters:
                raise InputError(f"parameters.{name}", name, "a name listed by `ecsim params`")
            params[name] = _override(self.parameters[name], given)
        return Registry(params, self.references)

    def digest(self) -> str:
        """A hash of every value, unit and spread: the parameter-set identity in manifests."""
        blob = json.dumps({k: v.model_dump() for k, v in sorted(self.parameters.items())}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def override_range(entry: Parameter) -> tuple[float, float, str]:
    """(lowest, highest, sign rule) an override of ``entry`` may take, in the entry's unit.

    Negative values only where the registry's value or uncertainty range is negative (e.g. a bias);
    zero only where that range reaches zero (a pathway that may be absent); otherwise above zero.
    The magnitude is at most `MAX_OVERRIDE_FACTOR` times the larger of the value and its bounds, and
    never above the entry's physical ``max`` (1 for a fraction)."""
    spread = entry.uncertainty
    bounds = [b for b in (entry.value, spread.low, spread.high) if b is not None]
    top = MAX_OVERRIDE_FACTOR * override_scale(entry)[0]
    if entry.max is not None:
        top = min(top, entry.max)
    if min(bounds) < 0:
        return -top, top, "any sign"
    if min(bounds) == 0:
        return 0.0, top, "zero or above"
    return 0.0, top, "above zero"


def override_scale(entry: Parameter) -> tuple[float, str]:
    """The size (in the entry's unit) that an override may be `MAX_OVERRIDE_FACTOR` times, and what
    that number is in words: the registry's value, or an uncertainty bound where one is larger in
    size (1 where they are all zero)."""
    spread = entry.uncertainty
    candidates = [(abs(entry.value), f"the registry's value {entry.value:g}")]
    for bound, side in ((spread.low, "lower"), (spread.high, "upper")):
        if bound is not None:
            candidates.append((abs(bound), f"{bound:g}, the {side} bound of the registry's uncertainty range; "
                                           f"the registry's value is {entry.value:g}"))
    scale, words = max(candidates, key=lambda c: c[0])   # the value wins a tie: it comes first
    return (scale, words) if scale else (1.0, "1 (the registry's value and uncertainty range are all zero)")


def _override(entry: Parameter, given: float | str) -> Parameter:
    field = f"parameters.{entry.name}"
    if isinstance(given, bool) or not isinstance(given, (int, float, str)):
        raise InputError(field, given, f"a number, or a number and unit convertible to {entry.unit!r}")
    if isinstance(given, str):
        value = _parse_quantity(given, entry.unit, field)
    else:
        try:
            value = float(given)
        except OverflowError:   # an integer beyond float range
            value = float("inf")
    low, high, sign = override_range(entry)
    inside = low <= value <= high and (value > 0 or sign != "above zero")
    if not inside:   # also NaN and infinities
        limit = (f"at most {entry.max:g}" if entry.max is not None else
                 f"up to {high:.3g} in size (10^{math.log10(MAX_OVERRIDE_FACTOR):g} times {override_scale(entry)[1]})")
        raise InputError(field, given, f"a finite number of {entry.unit}, {sign}, {limit}")
    return entry.model_copy(update={"value": value, "kind": "assumption", "source": "assumption",
                                    "reason": f"user override (registry value {entry.value} {entry.unit})"})


def _parse_quantity(text: str, unit: str, field: str) -> float:
    parts = text.strip().split(maxsplit=1)
    try:
        number = float(parts[0])
    except (ValueError, IndexError):
        raise InputError(field, text, f"a number or 'number unit' convertible to {unit}") from None
    if len(parts) == 1:
        return number
    if not plain_unit(parts[1]):
        raise InputError(field, text, f"a number and a plain unit convertible to {unit!r}, e.g. '80 {unit}'")
    try:
        return convert(number, parts[1], unit, field=field)
    except InputError as exc:
        raise InputError(field, text, exc.allowed) from None


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The package's registry, loaded once and validated."""
    root = resources.files("ecsim.registry")
    references = _load_references(root.joinpath("bibliography.yaml").read_text())
    parameters: dict[str, Parameter] = {}
    for item in sorted(root.joinpath("parameters").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            _merge(parameters, _load_parameters(item.read_text(), item.name))
    _check_sources(parameters, references)
    return Registry(parameters, references)


def _load_references(text: str) -> dict[str, Reference]:
    out = {}
    for key, entry in _entries(load_yaml(text, "bibliography.yaml") or {}, "bibliography.yaml").items():
        out[key] = _validated(Reference, entry, key, f"bibliography.yaml:{key}")
    return out


def _load_parameters(text: str, filename: str) -> dict[str, Parameter]:
    raw = _entries(load_yaml(text, filename) or {}, filename)
    out = {}
    for name, entry in _entries(raw.get("parameters") or {}, f"{filename}:parameters").items():
        out[name] = _validated(Parameter, entry, name, f"{filename}:{name}")
        convert(out[name].value, out[name].unit, out[name].unit, field=f"{filename}:{name}.unit")
    return out


def _entries(raw: object, where: str) -> dict:
    if not isinstance(raw, dict):
        raise InputError(where, type(raw).__name__, "a mapping of names to entries")
    return raw


def _validated(model, entry: object, name: str, where: str):
    """A registry entry (a mapping of its fields) as ``model``, or a one-line InputError."""
    if not isinstance(entry, dict):
        raise InputError(where, entry, "a mapping of the entry's fields (see docs/parameters.md)")
    try:
        return model(**{**entry, "name" if model is Parameter else "key": name})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise InputError(f"{where}.{loc}" if loc else where, err.get("input"), err["msg"]) from None


def _merge(into: dict[str, Parameter], new: dict[str, Parameter]) -> None:
    for name, entry in new.items():
        if name in into:
            raise InputError("parameter", name, "a name defined in only one parameter file")
        into[name] = entry


def _check_sources(parameters: dict[str, Parameter], references: dict[str, Reference]) -> None:
    for p in parameters.values():
        if p.source != "assumption" and p.source not in references:
            raise InputError(f"parameters.{p.name}.source", p.source,
                             "a key of registry/bibliography.yaml or 'assumption'")
