"""The web form as a scenario: placebo, the chosen product arm and, if asked, a botulinum-toxin
reference arm (Dysport 500 U into the neck, as in Truong 2005 and the default scenario), with a
placebo response in every arm, weekly visits and the phenotype's primary scale."""

from __future__ import annotations

from pydantic import ValidationError

from ..circuit.phenotypes import PHENOTYPES
from ..clinical_summary import primary_scale
from ..scenario import Scenario, pydantic_to_input_error
from .models import MEAL_ROUTE_NAMES, RunRequestBase

DOSE_TIMES_H = {1: [8], 2: [8, 20], 3: [8, 14, 20], 4: [8, 12, 16, 20]}   # multiples of output_step_h
OUTPUT_STEP_H = 2.0
WEIGHT_MEAN_KG, WEIGHT_SD_KG = 75.0, 15.0      # as in the default scenario
TOXIN_ARM = {"name": "botulinum_dysport_500u",
             "botulinum": {"product": "abobotulinumtoxinA", "units": 500, "region": "neck"}}


def build_scenario(req: RunRequestBase) -> Scenario:
    """Validate the scenario the form describes; any problem is the project's one-line InputError."""
    try:
        return Scenario.model_validate(scenario_dict(req))
    except ValidationError as exc:
        raise pydantic_to_input_error(exc) from None


def scenario_dict(req: RunRequestBase) -> dict:
    """The scenario mapping (the shape of a scenario YAML file) for a form request."""
    arms = [{"name": "placebo"}, product_arm(req)] + ([TOXIN_ARM] if req.botulinum_reference else [])
    return {
        "name": "web-form",
        "description": f"web form: {PHENOTYPES[req.phenotype].label}; {arm_label(req)} vs placebo",
        "duration_days": 7 * req.weeks,
        "output_step_h": OUTPUT_STEP_H,
        "visit_interval_days": 7,
        "population": {"n": req.patients, "seed": req.seed, "weight_mean_kg": WEIGHT_MEAN_KG,
                       "weight_sd_kg": WEIGHT_SD_KG, "phenotype": req.phenotype},
        "trial": {"placebo_response": True, "control_arm": "placebo", "primary_day": 7 * req.weeks,
                  "primary_scale": primary_scale(req.phenotype, None)},
        "arms": arms,
    }


def product_arm(req: RunRequestBase) -> dict:
    """The CBD arm: product, route, meal, fixed daily schedule and optional clobazam."""
    arm = {"name": arm_name(req), "product": req.product.value, "route": req.route, "food": req.food.value,
           "cbd": [{"dose": f"{req.dose!r} {req.dose_unit}", "times_h": DOSE_TIMES_H[req.doses_per_day]}]}
    if req.comedication == "clobazam":
        half = f"{req.clobazam_mg_per_day / 2!r} mg"
        arm["comedication"] = [{"drug": "clobazam", "steps": [{"dose": half, "times_h": DOSE_TIMES_H[2]}]}]
    return arm


def arm_name(req: RunRequestBase) -> str:
    """A readable arm name made only of the validated choices (letters, digits, '_', '.', '-')."""
    unit = "mg_kg" if req.dose_unit == "mg/kg" else "mg"
    name = f"{req.product.value}_{req.dose:g}{unit}_x{req.doses_per_day}_{req.route}"
    return name + ("_clobazam" if req.comedication == "clobazam" else "")


def arm_label(req: RunRequestBase) -> str:
    """The product arm in words, for the scenario description."""
    food = f", {req.food.value.replace('_', '-')}" if req.route in MEAL_ROUTE_NAMES else ""
    product = req.product.value.replace("_", "-")
    label = f"{product} CBD {req.dose:g} {req.dose_unit} {req.doses_per_day}x/day {req.route}{food}"
    return label + (f" + clobazam {req.clobazam_mg_per_day:g} mg/day" if req.comedication == "clobazam" else "")
