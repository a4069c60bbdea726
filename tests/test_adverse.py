"""Adverse-effect risk from exposure (ecsim.treatments.adverse; docs/adverse.md).

Expected values come from the publications named at each test, not from the code. Calibration
checks compare with the data the parameters were fitted to; validation checks use studies never
used in the fit; known misses are strict xfails (they fail the suite if the model starts passing,
so that docs/adverse.md is updated)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ecsim.exposure import exposure_metrics
from ecsim.registry import default_registry
from ecsim.scenario import Scenario
from ecsim.simulation import grid_for, simulate_chunk
from ecsim.treatments.adverse import (CBD_EVENTS, EVENTS, ExposureResponse, adverse_effects, adverse_summary,
                                      daily_cbd_mg, label_group_rates, label_population)


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of k events in n patients."""
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def exposure(cbd=0.0, nclb=0.0, thc_mg=0.0, n=5, parkinsonian=0.0) -> dict[str, np.ndarray]:
    full = lambda v: np.full(n, float(v))  # noqa: E731
    return {"cbd_plasma_ng_per_ml.cavg": full(cbd), "nclb_plasma_ng_per_ml.cavg": full(nclb),
            "max_single_thc_oral_equivalent_mg": full(thc_mg), "parkinsonian_features": full(parkinsonian)}


# --- provenance --------------------------------------------------------------------------------

def test_every_adverse_parameter_is_sourced(registry):
    names = [n for n in registry.parameters if n.startswith("adverse_")]
    assert len(names) >= 20
    for name in names:
        p = registry[name]
        assert p.source == "assumption" or p.source in registry.references, name
        assert p.uncertainty is not None and p.species == "human", name
    for prefix in CBD_EVENTS.values():
        ExposureResponse.from_registry(registry, prefix)   # every event's parameters exist


# --- properties --------------------------------------------------------------------------------

def test_probabilities_are_in_unit_interval_for_any_exposure(registry):
    rng = np.random.default_rng(0)
    n = 500
    exp = {"cbd_plasma_ng_per_ml.cavg": rng.lognormal(4, 3, n), "nclb_plasma_ng_per_ml.cavg": rng.lognormal(6, 3, n),
           "max_single_thc_oral_equivalent_mg": rng.lognormal(0, 3, n)}
    exp["cbd_plasma_ng_per_ml.cavg"][:5] = [0, np.nan, 1e12, np.inf, -1]
    risk = adverse_effects(exp, rng.lognormal(5, 3, n), registry, valproate=rng.random(n) < 0.5)
    assert set(risk) == set(EVENTS)
    for event, p in risk.items():
        assert p.shape == (n,) and np.all((p >= 0) & (p <= 1)), event


def test_no_drug_means_background_only(registry):
    """Zero excess without drug, whatever the co-medication: a placebo patient on clobazam and
    valproate has the placebo rates of the label and no THC or parkinsonism risk."""
    none = adverse_effects(exposure(parkinsonian=1.0), np.zeros(5), registry)
    comed = adverse_effects(exposure(nclb=1500.0, parkinsonian=1.0), np.zeros(5), registry, valproate=True)
    for event, prefix in CBD_EVENTS.items():
        p0 = registry.value(f"{prefix}_p0", "dimensionless")
        assert np.allclose(none[event], p0) and np.allclose(comed[event], p0), event
    for event in ("thc_psychoactive", "parkinsonism_worse"):
        assert np.all(none[event] == 0) and np.all(comed[event] == 0)


@pytest.mark.parametrize("clobazam", [0.0, 1500.0])
@pytest.mark.parametrize("valproate", [False, True])
def test_cbd_events_rise_with_exposure(registry, clobazam, valproate):
    levels = [0.0, 1.0, 10.0, 50.0, 150.0, 400.0, 2000.0]
    for event in CBD_EVENTS:
        p = [adverse_effects(exposure(c, clobazam), np.zeros(5), registry, valproate=valproate)[event][0]
             for c in levels]
        assert np.all(np.diff(p) >= 0) and p[-1] > p[0], event


def test_thc_and_parkinsonism_rise_with_dose(registry):
    thc = [adverse_effects(exposure(thc_mg=d), np.zeros(5), registry)["thc_psychoactive"][0]
           for d in (0.0, 0.5, 2.5, 10.0, 50.0)]
    park = [adverse_effects(exposure(parkinsonian=1.0), np.full(5, d), registry)["parkinsonism_worse"][0]
            for d in (0.0, 100.0, 300.0, 600.0, 1200.0)]
    assert np.all(np.diff(thc) > 0) and np.all(np.diff(park) > 0)


def test_interactions_act_where_the_label_says(registry):
    """Label 5.1: valproate (and less so clobazam) raise ALT elevations on CBD; label 5.2:
    clobazam raises somnolence on CBD. Valproate does not change somnolence here."""
    base = adverse_effects(exposure(200.0), np.zeros(5), registry)
    vpa = adverse_effects(exposure(200.0), np.zeros(5), registry, valproate=True)
    clb = adverse_effects(exposure(200.0, nclb=1500.0), np.zeros(5), registry)
    assert vpa["alt_over_3x_uln"][0] > clb["alt_over_3x_uln"][0] > base["alt_over_3x_uln"][0]
    assert clb["somnolence"][0] > base["somnolence"][0] == vpa["somnolence"][0]


# --- calibration: Epidiolex label, pooled LGS/DS controlled trials -------------------------------

# (group, observed fraction, patients): label section 5.2 (somnolence and sedation including
# lethargy), table 3 (diarrhoea, decreased appetite), section 5.1 (ALT > 3x ULN); arm sizes 227
# placebo, 75 at 10, 238 at 20 mg/kg/day; co-medication subgroups as shares of the 313 CBD patients
# (clobazam 0.5, valproate 0.4, assumption).
LABEL = {
    "somnolence": [("placebo", 0.11, 227), ("mgkg10", 0.27, 75), ("mgkg20", 0.34, 238),
                   ("cbd_clobazam", 0.46, 156), ("cbd_no_clobazam", 0.16, 156)],
    "diarrhoea": [("placebo", 0.09, 227), ("mgkg10", 0.09, 75), ("mgkg20", 0.20, 238)],
    "decreased_appetite": [("placebo", 0.05, 227), ("mgkg10", 0.16, 75), ("mgkg20", 0.22, 238)],
    "alt_over_3x_uln": [("placebo", 0.01, 227), ("mgkg10", 0.01, 75), ("mgkg20", 0.17, 238),
                        ("cbd_both", 0.30, 63), ("cbd_valproate_only", 0.21, 63), ("cbd_clobazam_only", 0.04, 94),
                        ("cbd_neither", 0.03, 94)],
}


@pytest.fixture(scope="module")
def label_pop(registry):
    return label_population(registry, n=400)


@pytest.mark.parametrize("event", list(LABEL))
def test_calibration_reproduces_the_label_table(registry, label_pop, event):
    model = ExposureResponse.from_registry(registry, CBD_EVENTS[event])
    sim = label_group_rates(model, label_pop)
    for group, observed, n in LABEL[event]:
        lo, hi = wilson(round(observed * n), n)
        assert lo <= sim[group] <= hi, (event, group, sim[group], observed)


# --- validation: studies never used in the fit ---------------------------------------------------

def simulate(arms: list[tuple[str, str]], weight: tuple[float, float, float, float], days: int, food: str,
             n: int = 300) -> dict[str, tuple[dict, np.ndarray]]:
    scenario = Scenario.model_validate({
        "name": "adverse-validation", "duration_days": days, "output_step_h": 1,
        "population": {"n": n, "seed": 11, "weight_mean_kg": weight[0], "weight_sd_kg": weight[1],
                       "weight_min_kg": weight[2], "weight_max_kg": weight[3]},
        "arms": [{"name": name, "product": "pharmaceutical", "route": "oral", "food": food,
                  "cbd": [{"dose": dose, "times_h": [8, 20]}]} for name, dose in arms]})
    out = {}
    for arm in scenario.arms:
        chunk = simulate_chunk(scenario, arm, 0, n)
        out[arm.name] = (exposure_metrics(chunk.times_h, chunk.outputs, chunk.values),
                         daily_cbd_mg(arm, chunk.values, grid_for(scenario)))
    return out


@pytest.fixture(scope="module")
def wheless(registry):
    """Wheless 2019 (CNS Drugs 33:593, Table 7): children with treatment-resistant epilepsy, synthetic
    CBD oral solution 10, 20, 40 mg/kg/day in two doses, open label, no placebo. Assumed: weight 25 +/-
    10 kg, low-fat meals, half on clobazam, none on valproate (not read)."""
    sims = simulate([("mgkg10", "5 mg/kg"), ("mgkg20", "10 mg/kg"), ("mgkg40", "20 mg/kg")],
                    (25.0, 10.0, 8.0, 70.0), 14, "low_fat")
    rng = np.random.default_rng(3)
    out = {}
    for name, (exp, dose) in sims.items():
        exp = dict(exp)
        exp["nclb_plasma_ng_per_ml.cavg"] = (rng.random(len(dose)) < 0.5).astype(float)
        out[name] = {e: float(p.mean()) for e, p in adverse_effects(exp, dose, registry).items()}
    return out


# (arm, event, events, patients) from Wheless 2019 Table 7. The model's somnolence is the label's
# wider "somnolence and sedation (including lethargy)"; Table 7 counts somnolence alone.
WHELESS_PASS = [("mgkg10", "somnolence", 3, 20), ("mgkg20", "somnolence", 3, 20), ("mgkg40", "somnolence", 7, 21),
                ("mgkg10", "diarrhoea", 1, 20), ("mgkg20", "diarrhoea", 2, 20), ("mgkg40", "diarrhoea", 7, 21),
                ("mgkg10", "decreased_appetite", 2, 20)]
WHELESS_MISS = [("mgkg20", "decreased_appetite", 0, 20), ("mgkg40", "decreased_appetite", 1, 21)]


@pytest.mark.parametrize("arm,event,k,n", WHELESS_PASS)
def test_validation_wheless2019(wheless, arm, event, k, n):
    lo, hi = wilson(k, n)
    assert lo <= wheless[arm][event] <= hi, (arm, event, wheless[arm][event], k / n)


@pytest.mark.xfail(strict=True, reason="known miss (docs/adverse.md): decreased appetite 0/20 and 1/21 at 20 "
                   "and 40 mg/kg/day in Wheless 2019; the label-calibrated model gives 22 and 28 %")
@pytest.mark.parametrize("arm,event,k,n", WHELESS_MISS)
def test_validation_wheless2019_misses(wheless, arm, event, k, n):
    lo, hi = wilson(k, n)
    assert lo <= wheless[arm][event] <= hi


@pytest.mark.xfail(strict=True, reason="known miss (docs/adverse.md): healthy adults on 1500 mg/day had ALT > 5x "
                   "ULN in 5 of 16 (Watkins 2021); the model, calibrated on children and adolescents with "
                   "epilepsy, gives under 5 % without valproate")
def test_validation_watkins2021_alt_in_healthy_adults(registry):
    """Watkins 2021 (Clin Pharmacol Ther 109:1224): 16 healthy adults, CBD 750 mg twice daily for about
    3.5 weeks; ALT > 5x ULN (hence > 3x ULN) in 5 (31 %). Meals not read: low-fat assumed."""
    exp, dose = simulate([("bid750", "750 mg")], (75.0, 12.0, 45.0, 130.0), 24, "low_fat")["bid750"]
    p = adverse_effects(exp, dose, registry)["alt_over_3x_uln"].mean()
    assert p >= wilson(5, 16)[0]


# --- THC and parkinsonism (calibration by construction; sources named) --------------------------

def test_thc_loael_marks_the_sensitive_tail(registry):
    """Beitzke & Pate 2021: psychomotor impairment only beyond an oral 2.5 mg THC bolus (LOAEL); the
    proposed tolerable upper intake 0.5 mg/day should be far from any effect."""
    p = lambda mg: adverse_effects(exposure(thc_mg=mg), np.zeros(5), registry)["thc_psychoactive"][0]  # noqa: E731
    assert p(2.5) == pytest.approx(registry.value("adverse_thc_loael_quantile", "dimensionless"))
    assert p(0.5) < 0.01
    assert p(2.5) < 0.5 < p(20.0)


def test_parkinsonism_follows_consroe1986(registry):
    """Consroe 1986 (100 -> 600 mg/day, uncontrolled): hypokinesia and rest tremor worse above
    300 mg/day in both patients with parkinsonian features, in none of the 3 without."""
    def p(mg, parkinsonian):
        return adverse_effects(exposure(parkinsonian=parkinsonian), np.full(5, mg), registry)["parkinsonism_worse"][0]
    lo, hi = wilson(2, 2)
    assert lo <= p(600.0, 1.0) <= hi
    assert p(300.0, 1.0) < lo and p(100.0, 1.0) < 0.01
    assert p(600.0, 0.0) == 0.0 and p(1600.0, 0.0) == 0.0   # 0 of 3: the point estimate is no risk
    assert registry["adverse_parkinsonism_fraction_without_features"].uncertainty.high == pytest.approx(
        wilson(0, 3)[1], abs=0.01)   # ... with the interval's upper end left to the uncertainty draws


def test_parkinsonism_risk_follows_the_phenotype():
    """Each patient's flag comes from their phenotype: cervical patients carry no parkinsonism risk
    at any dose, dystonia in Parkinson's disease does, and a phenotype mix gets it patient by patient."""
    from ecsim.scenario import parse_scenario
    from ecsim.simulation import parkinsonian_features, patient_labels
    base = "name: t\nduration_days: 7\narms: [{name: a, cbd: [{dose: 300 mg, times_h: [8]}]}]\n"
    cervical = parse_scenario(base + "population: {n: 20, phenotype: cervical}")
    parkinsons = parse_scenario(base + "population: {n: 20, phenotype: parkinsons}")
    mixed = parse_scenario(base + "population: {n: 200, phenotype_mix: {parkinsons: 0.5, cervical: 0.5}}\n"
                           "trial: {primary_scale: bfmdrs_movement}")
    assert np.all(parkinsonian_features(cervical, 0, 20) == 0)
    assert np.all(parkinsonian_features(parkinsons, 0, 20) == 1)
    flags, labels = parkinsonian_features(mixed, 0, 200), patient_labels(mixed, 0, 200)["phenotype"]
    assert np.array_equal(flags == 1, labels == "parkinsons") and 0 < flags.mean() < 1


# --- summary and daily dose ------------------------------------------------------------------------

def test_summary_means_intervals_and_excess():
    rng = np.random.default_rng(1)
    a = {e: rng.uniform(0.0, 0.2, 400) for e in EVENTS}
    b = {e: p + 0.1 for e, p in a.items()}
    s = adverse_summary({"placebo": a, "cbd": b}, control="placebo")
    for e in EVENTS:
        row = s["cbd"][e]
        assert row["mean"] == pytest.approx(float(np.mean(b[e])))
        assert row["interval95"][0] <= row["mean"] <= row["interval95"][1]
        assert row["excess_vs_control"] == pytest.approx(0.1)
        assert row["excess_ci95"][0] < 0.1 < row["excess_ci95"][1]
        assert "excess_vs_control" not in s["placebo"][e]
    assert "excess_vs_control" not in adverse_summary({"cbd": b})["cbd"]["somnolence"]
    with pytest.raises(KeyError):
        adverse_summary({"cbd": b}, control="placebo")


def test_daily_dose_is_the_last_day_of_a_titrated_regimen():
    scenario = Scenario.model_validate({
        "name": "titration", "duration_days": 14, "output_step_h": 1,
        "arms": [{"name": "epi", "product": "pharmaceutical", "route": "oral", "food": "low_fat",
                  "cbd": [{"dose": "2.5 mg/kg", "times_h": [8, 20], "to_day": 7},
                          {"dose": "5 mg/kg", "times_h": [8, 20], "from_day": 7}]}]})
    values = {"body_weight_kg": np.array([50.0, 70.0]), "label_content_factor": np.array([1.0, 0.5])}
    mg = daily_cbd_mg(scenario.arms[0], values, grid_for(scenario))
    assert mg == pytest.approx([500.0, 350.0])


def test_excess_over_control_is_known_with_one_patient_per_arm():
    """One patient per arm: the excess is the difference of the two risks; only its interval needs spread."""
    import math
    from ecsim.treatments.adverse import adverse_summary
    doc = adverse_summary({"drug": {"somnolence": np.array([0.2])}, "placebo": {"somnolence": np.array([0.1])}},
                          control="placebo")
    row = doc["drug"]["somnolence"]
    assert row["excess_vs_control"] == pytest.approx(0.1) and all(math.isnan(x) for x in row["excess_ci95"])
