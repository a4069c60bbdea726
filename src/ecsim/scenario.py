"""Scenario files: YAML validated with pydantic, units checked with pint at the boundary.

Doses are quantities: ``"25 mg"``, ``"10 mg/kg"`` or a bare number (mg). Schedules follow the
protocol rule: each dosing step is active on days [from_day, to_day); steps of one drug must not
overlap. See docs/scenarios.md for every field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .circuit.phenotypes import PHENOTYPES
from .circuit.regions import REGIONS
from .errors import InputError
from .population import CYP2C19, Hepatic
from .products import Food, Formulation, Product, Route
from .units import convert, registry as unit_registry

MAX_PATIENTS = 10_000_000
MAX_FILE_BYTES = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dose(_Strict):
    """A fixed amount (mg) or a weight-based amount (mg/kg)."""

    mg: float = 0.0
    mg_per_kg: float = 0.0

    @classmethod
    def parse(cls, given: object, field: str) -> "Dose":
        if isinstance(given, (int, float)) and not isinstance(given, bool):
            return cls(mg=_non_negative(float(given), field))
        if not isinstance(given, str):
            raise InputError(field, given, "a dose like '25 mg', '10 mg/kg' or a number of mg")
        number, _, unit = given.strip().partition(" ")
        try:
            value = _non_negative(float(number), field)
        except ValueError:
            raise InputError(field, given, "a dose like '25 mg' or '10 mg/kg'") from None
        unit = unit.strip() or "mg"
        dims = unit_registry().Unit(unit).dimensionality if _is_unit(unit) else None
        if dims == unit_registry().Unit("mg").dimensionality:
            return cls(mg=convert(value, unit, "mg", field=field))
        if dims is not None and not dims:
            return cls(mg_per_kg=convert(value, unit, "mg/kg", field=field))
        raise InputError(field, given, "a mass ('mg', 'g') or mass per body weight ('mg/kg')")


class DosingStep(_Strict):
    """Doses at ``times_h`` (hours after midnight) on days [from_day, to_day)."""

    dose: Dose
    times_h: list[Annotated[float, Field(ge=0, lt=24)]] = Field(min_length=1, max_length=24)
    from_day: int = Field(default=0, ge=0)
    to_day: int | None = Field(default=None, ge=1)

    @field_validator("dose", mode="before")
    @classmethod
    def _dose(cls, v):
        if isinstance(v, (Dose, dict)):
            return v
        return Dose.parse(v, "dose")

    @model_validator(mode="after")
    def _order(self) -> "DosingStep":
        if self.to_day is not None and self.to_day <= self.from_day:
            raise ValueError("to_day must be after from_day")
        return self


class CoMedication(_Strict):
    """Another drug on its own schedule: clobazam, or PF-04457845 (oral irreversible FAAH inhibitor)."""

    drug: Literal["clobazam", "pf04457845"]
    steps: list[DosingStep] = Field(min_length=1, max_length=50)


class Interventions(_Strict):
    """Experimental manipulations of the endocannabinoid system (study cases, what-if questions)."""

    faah_inhibition: float = Field(default=0.0, ge=0, le=1, description="1 = FAAH knockout")
    magl_inhibition: float = Field(default=0.0, ge=0, le=1)
    d2_agonist_occupancy: float = Field(default=0.0, ge=0, le=1)
    cbd_fixed_free_nM: float = Field(default=0.0, ge=0, le=1e7, description="in-vitro CBD on top of PK")
    cb1_agonist_occupancy: float = Field(default=0.0, ge=0, le=0.99,
                                         description="a synthetic full CB1 agonist (WIN 55,212-2) at this occupancy")
    trihexyphenidyl_mg_per_day: float = Field(default=0.0, ge=0, le=120, description="from day 0")
    levodopa_mg_per_day: float = Field(default=0.0, ge=0, le=3000,
                                       description="levodopa (with a decarboxylase inhibitor) from day 0")


class Botulinum(_Strict):
    """A course of botulinum toxin injections into one region's muscles."""

    product: Literal["abobotulinumtoxinA", "onabotulinumtoxinA", "incobotulinumtoxinA"] = "abobotulinumtoxinA"
    units: float = Field(gt=0, le=2000, description="units per session, in the product's own units")
    region: Literal[REGIONS] = "neck"
    first_day: float = Field(default=0.0, ge=0)
    every_days: float = Field(default=84.0, ge=28, le=730, description="reinjection interval (at least 4 weeks)")


class Stimulation(_Strict):
    """Bilateral GPi stimulation, switched on on ``from_day`` (and off on ``to_day``)."""

    from_day: float = Field(default=0.0, ge=0)
    to_day: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _order(self) -> "Stimulation":
        if self.to_day is not None and self.to_day <= self.from_day:
            raise ValueError("to_day must be after from_day")
        return self


class Arm(_Strict):
    """One product at one regimen, given to the whole population."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    product: Product = Product.pharmaceutical
    route: Route = Route.oral
    food: Food = Food.fasted
    formulation: Formulation = Formulation.oil
    cbd: list[DosingStep] = Field(default_factory=list, max_length=50)
    thc: list[DosingStep] = Field(default_factory=list, max_length=50)
    comedication: list[CoMedication] = Field(default_factory=list, max_length=5)
    interventions: Interventions = Interventions()
    botulinum: Botulinum | None = None
    gpi_stimulation: Stimulation | None = None


class Trial(_Strict):
    """Trial conduct: expectation (placebo) response, control arm and primary scale for statistics."""

    placebo_response: bool = Field(default=False, description="every arm's ratings include a placebo response")
    control_arm: str | None = Field(default=None, description="arm the others are compared with")
    primary_scale: Literal["bfmdrs_movement", "twstrs_total", "jrs"] | None = None
    responder_fraction: float = Field(default=0.25, gt=0, lt=1,
                                      description="improvement of the primary scale that makes a responder")
    primary_day: float | None = Field(default=None, ge=0, description="visit of the primary end point (default: last)")
    sample_size_per_arm: int | None = Field(default=None, ge=2, le=100_000,
                                            description="replicate trials of this size are drawn from the virtual arms")
    replicates: int = Field(default=500, ge=10, le=100_000)


class Population(_Strict):
    n: int = Field(default=200, ge=1, le=MAX_PATIENTS)
    seed: int = Field(default=20261126, ge=0, lt=2**63)
    weight_mean_kg: float = Field(default=80.0, gt=2, lt=300)
    weight_sd_kg: float = Field(default=16.0, ge=0, lt=100)
    weight_min_kg: float = Field(default=40.0, gt=1, lt=300)
    weight_max_kg: float = Field(default=160.0, gt=1, lt=400)
    hepatic: Hepatic = Hepatic.normal
    cyp2c19: CYP2C19 = CYP2C19.population
    typical: bool = Field(default=False, description="every patient is the typical patient (no spread)")
    phenotype: Literal[tuple(PHENOTYPES)] | None = Field(
        default=None, description="form and cause of dystonia; none: drug levels and tone only")


class Scenario(_Strict):
    """A population, one or more arms, a duration and optional parameter overrides."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    species: Literal["human", "rat", "mouse"] = "human"
    duration_days: float = Field(gt=0, le=730)
    output_step_h: float = Field(default=1.0, gt=0, le=24)
    visit_interval_days: float = Field(default=7.0, gt=0, le=365,
                                       description="days between clinical visits (circuit and scales)")
    population: Population = Population()
    arms: list[Arm] = Field(min_length=1, max_length=20)
    parameters: dict[str, float | str] = Field(default_factory=dict)
    trial: Trial = Trial()

    def visit_days(self) -> list[float]:
        """Clinical visits: day 0, then every ``visit_interval_days``, and the last day."""
        n = int(self.duration_days // self.visit_interval_days + 1e-9)
        days = [k * self.visit_interval_days for k in range(n + 1)]
        return days if abs(days[-1] - self.duration_days) < 1e-9 else days + [self.duration_days]

    @model_validator(mode="after")
    def _clinical_needs_a_phenotype(self) -> "Scenario":
        if self.population.phenotype is not None:
            if self.trial.primary_day is not None and self.trial.primary_day > self.duration_days:
                raise InputError("trial.primary_day", self.trial.primary_day,
                                 f"a visit day up to duration_days ({self.duration_days:g})")
            return self
        clinical = [(f"arms.{a.name}.{k}", given) for a in self.arms for k, given in (
            ("botulinum", a.botulinum), ("gpi_stimulation", a.gpi_stimulation),
            ("interventions.levodopa_mg_per_day", a.interventions.levodopa_mg_per_day),
            ("interventions.trihexyphenidyl_mg_per_day", a.interventions.trihexyphenidyl_mg_per_day)) if given]
        if self.trial != Trial():
            clinical.append(("trial", "set"))
        if clinical:
            field, given = clinical[0]
            raise InputError(field, given if isinstance(given, (int, float, str)) else "set",
                             "only with population.phenotype (it acts on symptoms)")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        if self.trial.control_arm is not None and self.trial.control_arm not in names:
            raise ValueError(f"trial.control_arm {self.trial.control_arm!r} is not one of the arms {names}")
        for arm in self.arms:
            for label, steps in _all_steps(arm):
                _check_steps(steps, self.output_step_h, self.duration_days, f"arms.{arm.name}.{label}")
        return self


def _all_steps(arm: Arm):
    yield "cbd", arm.cbd
    yield "thc", arm.thc
    for i, co in enumerate(arm.comedication):
        yield f"comedication.{i}", co.steps


def _check_steps(steps: list[DosingStep], dt: float, duration_days: float, where: str) -> None:
    spans = sorted((s.from_day, s.to_day if s.to_day is not None else 10**9) for s in steps)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"{where}: dosing steps overlap (days [from_day, to_day) must not overlap)")
    for s in steps:
        for t in s.times_h:
            if abs(round(t / dt) * dt - t) > 1e-9:
                raise ValueError(f"{where}: dose time {t} h is not a multiple of output_step_h {dt}")


def _non_negative(value: float, field: str) -> float:
    if not value >= 0 or value == float("inf"):
        raise InputError(field, value, "a finite, non-negative amount")
    return value


def _is_unit(text: str) -> bool:
    try:
        unit_registry().Unit(text)
        return True
    except Exception:
        return False


def embedded_scenarios() -> list[str]:
    """Names of the scenarios shipped with ecsim (usable in place of a file path)."""
    root = resources.files("ecsim.data.scenarios")
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def load_scenario(path: str | Path | None) -> Scenario:
    """Read and validate a scenario file; ``None`` gives the embedded default, and the name of an
    embedded scenario (``claims-doses``) loads that one when no such file exists."""
    if path is None or (not Path(path).exists() and str(path) in embedded_scenarios()):
        name = "default" if path is None else str(path)
        text = resources.files("ecsim.data.scenarios").joinpath(f"{name}.yaml").read_text()
        return parse_scenario(text, f"{name}.yaml")
    return parse_scenario(read_text_file(Path(path), "scenario"), str(path))


def read_text_file(path: Path, field: str) -> str:
    """A small UTF-8 text file, or an InputError that says why not."""
    if not path.is_file():
        names = ", ".join(embedded_scenarios()) if field == "scenario" else ""
        raise InputError(field, str(path), "an existing file" + (f" or one of: {names}" if names else ""))
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(field, str(path), f"a file under {MAX_FILE_BYTES} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(field, str(path), "a UTF-8 text (YAML) file") from None


def parse_scenario(text: str, origin: str = "scenario") -> Scenario:
    data = parse_yaml_mapping(text, origin)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise pydantic_to_input_error(exc) from None


def parse_yaml_mapping(text: str, origin: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(origin, f"invalid YAML{where}", "a YAML mapping") from None
    except RecursionError:
        raise InputError(origin, "too deeply nested", "a YAML mapping of modest depth") from None
    if not isinstance(data, dict):
        raise InputError(origin, type(data).__name__, "a YAML mapping (key: value lines)")
    return data


def pydantic_to_input_error(exc: ValidationError) -> InputError:
    """The first validation problem as an InputError naming the field path."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "scenario"
    if isinstance(err.get("ctx", {}).get("error"), InputError):
        inner = err["ctx"]["error"]
        return InputError(_field_path(err["loc"], inner.field), inner.value, inner.allowed)
    message = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    if isinstance(given, dict) and err["type"] == "value_error":   # a check across fields: the message says which
        given = "this combination"
    return InputError(where, given, message)


def _field_path(loc: tuple, named: str) -> str:
    """Where an InputError raised inside validation points: a field validator's own location, or,
    for a check across a block's fields, the block's location followed by the field it names."""
    where = ".".join(str(x) for x in loc)
    if where and where.split(".")[-1] == named.split(".")[-1]:
        return where
    return f"{where}.{named}" if where else named
