"""The pharmacokinetic model: CBD (+7-OH-CBD, 7-COOH-CBD), THC (+11-OH-THC), clobazam (+N-CLB).

States are amounts in µmol; every rate is per hour. Doses (mg) are turned into boluses in µmol by
`ecsim.regimen`, which also applies the dose- and food-dependent oral bioavailability (a function of
the dose, not of the states, so it stays outside the ODEs). Equations and parameter sources are in
docs/model.md; every parameter name below is an entry of the registry.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..engine import Bolus
from ..model.declaration import Model, Submodel, symbols
from .compartments import WEIGHT, disposition, scaled_clearance, scaled_volume, transit_absorption

ACTIVITY_2C19, HEPATIC, CBD_RATE, THC_RATE = symbols(
    "cyp2c19_activity hepatic_cbd_cl_factor cbd_absorption_rate_factor thc_absorption_rate_factor")

CBD_TRANSITS = 5   # oral transit steps (Schultz 2023 used a chain); 5 fitted Taylor 2018 better than 1 or 3

COVARIATES = {
    "body_weight_kg": "kg",
    "cyp2c19_activity": "dimensionless",
    "hepatic_cbd_cl_factor": "dimensionless",
    "cbd_absorption_rate_factor": "dimensionless",
    "thc_absorption_rate_factor": "dimensionless",
}


def cbd_submodel() -> Submodel:
    """CBD with a transit oral chain (CBD_TRANSITS steps), an oromucosal depot, three compartments and two metabolites."""
    gut, mucosa, central, periph, deep, oh, cooh, sink = symbols(
        "cbd_gut cbd_mucosa cbd_central cbd_periph cbd_deep cbd7oh_central cbd7cooh_central cbd_eliminated")
    transits = symbols(" ".join(f"cbd_transit{i}" for i in range(1, CBD_TRANSITS + 1)))
    (cl, v1, q2, v2, q3, v3, ktr, ka_om, fm2c19, fm_oh, cl_oh, v_oh, fm_cooh, cl_cooh, v_cooh,
     fu, kp, mw, mw_oh, mw_cooh) = symbols(
        "cbd_cl cbd_v1 cbd_q2 cbd_v2 cbd_q3 cbd_v3 cbd_ktr cbd_ka_oromucosal cbd_fm_cyp2c19 "
        "cbd_fm_7oh cbd7oh_cl cbd7oh_v cbd7oh_fm_7cooh cbd7cooh_cl cbd7cooh_v cbd_fu_plasma "
        "cbd_kp_brain cbd_mw cbd7oh_mw cbd7cooh_mw")
    CL, V1 = symbols("CL_cbd V1_cbd")
    V_oh, CL_oh, V_cooh, CL_cooh = symbols("V_cbd7oh CL_cbd7oh V_cbd7cooh CL_cbd7cooh")
    algebra = {
        "CL_cbd": scaled_clearance(cl) * HEPATIC * (1 - fm2c19 * (1 - ACTIVITY_2C19)),
        "V1_cbd": scaled_volume(v1),
        "CL_cbd7oh": scaled_clearance(cl_oh) * HEPATIC, "V_cbd7oh": scaled_volume(v_oh),
        "CL_cbd7cooh": scaled_clearance(cl_cooh), "V_cbd7cooh": scaled_volume(v_cooh),
        "cbd_free_nM": 1000 * fu * central / V1,
        "cbd7oh_free_nM": 1000 * fu * oh / V_oh,
    }
    absorbed, oral_input = transit_absorption(gut, transits, ktr * CBD_RATE)
    rates = absorbed | disposition(central, periph, deep, CL, V1, scaled_clearance(q2), scaled_volume(v2),
                                   scaled_clearance(q3), scaled_volume(v3))
    rates["cbd_mucosa"] = -ka_om * mucosa
    rates["cbd_central"] += oral_input + ka_om * mucosa
    formed_oh = fm_oh * CL * central / V1
    formed_cooh = fm_cooh * CL_oh * oh / V_oh
    rates["cbd7oh_central"] = formed_oh - CL_oh * oh / V_oh
    rates["cbd7cooh_central"] = formed_cooh - CL_cooh * cooh / V_cooh
    rates["cbd_eliminated"] = ((1 - fm_oh) * CL * central / V1 + (1 - fm_cooh) * CL_oh * oh / V_oh
                               + CL_cooh * cooh / V_cooh)
    conc_uM = central / V1
    outputs = {
        "cbd_plasma_ng_per_ml": conc_uM * mw,
        "cbd_plasma_free_nM": 1000 * fu * conc_uM,
        "cbd_brain_free_nM": 1000 * fu * conc_uM,
        "cbd_brain_total_nM": 1000 * kp * conc_uM,
        "cbd7oh_plasma_ng_per_ml": oh / V_oh * mw_oh,
        "cbd7oh_plasma_free_nM": 1000 * fu * oh / V_oh,
        "cbd7cooh_plasma_ng_per_ml": cooh / V_cooh * mw_cooh,
    }
    return Submodel(
        name="cbd", description=__doc__ or "",
        states={str(s): "umol" for s in (gut, *transits, mucosa, central, periph, deep, oh, cooh, sink)},
        parameters={"cbd_cl": "L/h", "cbd_v1": "L", "cbd_q2": "L/h", "cbd_v2": "L", "cbd_q3": "L/h",
                    "cbd_v3": "L", "cbd_ktr": "1/h", "cbd_ka_oromucosal": "1/h",
                    "cbd_fm_cyp2c19": "dimensionless", "cbd_fm_7oh": "dimensionless",
                    "cbd7oh_cl": "L/h", "cbd7oh_v": "L", "cbd7oh_fm_7cooh": "dimensionless",
                    "cbd7cooh_cl": "L/h", "cbd7cooh_v": "L", "cbd_fu_plasma": "dimensionless",
                    "cbd_kp_brain": "dimensionless", "cbd_mw": "g/mol", "cbd7oh_mw": "g/mol",
                    "cbd7cooh_mw": "g/mol"},
        covariates={k: COVARIATES[k] for k in ("body_weight_kg", "cyp2c19_activity",
                                               "hepatic_cbd_cl_factor", "cbd_absorption_rate_factor")},
        algebra=algebra, rates=rates, outputs=outputs)


def thc_submodel() -> Submodel:
    """THC: transit oral chain with first-pass 11-hydroxylation, oromucosal depot, two compartments."""
    gut, transit, mucosa, central, periph, oh, sink = symbols(
        "thc_gut thc_transit thc_mucosa thc_central thc_periph thc11oh_central thc_eliminated")
    (cl, v1, q2, v2, ktr, ka_om, fh, fm_fp, fm_oh, cl_oh, v_oh, fu, mw, mw_oh) = symbols(
        "thc_cl thc_v1 thc_q2 thc_v2 thc_ktr thc_ka_oromucosal thc_fh_oral thc_fm_first_pass_11oh "
        "thc_fm_11oh thc11oh_cl thc11oh_v thc_fu_plasma thc_mw thc11oh_mw")
    CL, V1, CL_oh, V_oh = symbols("CL_thc V1_thc CL_thc11oh V_thc11oh")
    algebra = {"CL_thc": scaled_clearance(cl), "V1_thc": scaled_volume(v1),
               "CL_thc11oh": scaled_clearance(cl_oh), "V_thc11oh": scaled_volume(v_oh),
               "thc_free_nM": 1000 * fu * central / V1, "thc11oh_free_nM": 1000 * fu * oh / V_oh}
    absorbed, portal = transit_absorption(gut, (transit,), ktr * THC_RATE)
    rates = absorbed | disposition(central, periph, None, CL, V1, scaled_clearance(q2), scaled_volume(v2))
    rates["thc_mucosa"] = -ka_om * mucosa
    rates["thc_central"] += fh * portal + ka_om * mucosa
    rates["thc11oh_central"] = (1 - fh) * fm_fp * portal + fm_oh * CL * central / V1 - CL_oh * oh / V_oh
    rates["thc_eliminated"] = ((1 - fh) * (1 - fm_fp) * portal + (1 - fm_oh) * CL * central / V1
                               + CL_oh * oh / V_oh)
    outputs = {
        "thc_plasma_ng_per_ml": central / V1 * mw,
        "thc_plasma_free_nM": 1000 * fu * central / V1,
        "thc11oh_plasma_ng_per_ml": oh / V_oh * mw_oh,
        "thc11oh_plasma_free_nM": 1000 * fu * oh / V_oh,
    }
    return Submodel(
        name="thc", description="THC and 11-OH-THC",
        states={str(s): "umol" for s in (gut, transit, mucosa, central, periph, oh, sink)},
        parameters={"thc_cl": "L/h", "thc_v1": "L", "thc_q2": "L/h", "thc_v2": "L", "thc_ktr": "1/h",
                    "thc_ka_oromucosal": "1/h", "thc_fh_oral": "dimensionless",
                    "thc_fm_first_pass_11oh": "dimensionless", "thc_fm_11oh": "dimensionless",
                    "thc11oh_cl": "L/h", "thc11oh_v": "L", "thc_fu_plasma": "dimensionless",
                    "thc_mw": "g/mol", "thc11oh_mw": "g/mol"},
        covariates={"body_weight_kg": "kg", "thc_absorption_rate_factor": "dimensionless"},
        algebra=algebra, rates=rates, outputs=outputs)


def clobazam_submodel() -> Submodel:
    """Clobazam and N-desmethylclobazam; CBD inhibits CYP3A4 (formation) and CYP2C19 (clearance).

    Inhibition is competitive on the unbound plasma CBD concentration, with each in-vitro Ki scaled
    by an in-vivo factor fitted to Morrison 2019 (registry: cbd_ki_*_invivo_scale).
    """
    gut, central, nclb, sink = symbols("clb_gut clb_central nclb_central clb_eliminated")
    (ka, cl, v, fm3a4, cl_n, v_n, fm2c19, ki3a4, ki2c19, scale3a4, scale2c19, mw, mw_n, fu_cbd) = symbols(
        "clb_ka clb_cl clb_v clb_fm_cyp3a4_nclb nclb_cl nclb_v nclb_fm_cyp2c19 cbd_ki_cyp3a4 "
        "cbd_ki_cyp2c19 cbd_ki_cyp3a4_invivo_scale cbd_ki_cyp2c19_invivo_scale clb_mw nclb_mw cbd_fu_plasma")
    cbd_central, = symbols("cbd_central")
    V1_cbd, = symbols("V1_cbd")
    inhibitor_uM = fu_cbd * cbd_central / V1_cbd
    spared_3a4 = 1 / (1 + inhibitor_uM / (ki3a4 * scale3a4))
    spared_2c19 = 1 / (1 + inhibitor_uM / (ki2c19 * scale2c19))
    CL, V, CL_n, V_n = scaled_clearance(cl), scaled_volume(v), scaled_clearance(cl_n), scaled_volume(v_n)
    to_nclb = fm3a4 * spared_3a4 * CL * central / V
    other = (1 - fm3a4) * CL * central / V
    nclb_out = CL_n * (fm2c19 * ACTIVITY_2C19 * spared_2c19 + 1 - fm2c19) * nclb / V_n
    rates = {"clb_gut": -ka * gut, "clb_central": ka * gut - to_nclb - other,
             "nclb_central": to_nclb - nclb_out, "clb_eliminated": other + nclb_out}
    return Submodel(
        name="clobazam", description="clobazam and N-desmethylclobazam with CBD inhibition",
        states={str(s): "umol" for s in (gut, central, nclb, sink)},
        parameters={"clb_ka": "1/h", "clb_cl": "L/h", "clb_v": "L", "clb_fm_cyp3a4_nclb": "dimensionless",
                    "nclb_cl": "L/h", "nclb_v": "L", "nclb_fm_cyp2c19": "dimensionless",
                    "cbd_ki_cyp3a4": "umol/L", "cbd_ki_cyp2c19": "umol/L",
                    "cbd_ki_cyp3a4_invivo_scale": "dimensionless",
                    "cbd_ki_cyp2c19_invivo_scale": "dimensionless", "clb_mw": "g/mol", "nclb_mw": "g/mol",
                    "cbd_fu_plasma": "dimensionless"},
        covariates={"body_weight_kg": "kg", "cyp2c19_activity": "dimensionless"},
        rates=rates,
        outputs={"clobazam_plasma_ng_per_ml": central / V * mw,
                 "nclb_plasma_ng_per_ml": nclb / V_n * mw_n,
                 "cyp2c19_activity_remaining": spared_2c19,
                 "cyp3a4_activity_remaining": spared_3a4})


@lru_cache(maxsize=1)
def pk_model() -> Model:
    """The L1 model, in dependency order (CBD before clobazam)."""
    return Model((cbd_submodel(), thc_submodel(), clobazam_submodel()))


PF_STATES = ("pf04457845_gut", "pf04457845_central", "pf04457845_periph", "pf04457845_eliminated")


def pf04457845_submodel() -> Submodel:
    """PF-04457845, the irreversible FAAH inhibitor of Li et al. 2012, in healthy adults.

    The two-compartment model with first-order absorption of Benson et al. 2014 (BIOMD0000000512),
    whose PK part was fitted to the phase I data Li 2012 published: distribution and elimination as
    first-order rate constants on amounts, concentration = central amount / V. Benson's second,
    saturable elimination pathway (Vmax 1511 ng/h, Km 26.1 ng/L) is left out: it is not linear in the
    state. It adds 3 % to the linear pathway's elimination at 10 ng/mL, 31 % at 1 ng/mL and up to
    12 times more below 0.03 ng/mL, so leaving it out overstates exposure at the lowest doses and
    lengthens the washout tail (see docs/ecs.md). The dose-dependent
    bioavailability (Emax in the dose) is applied to the bolus (`pf04457845_bolus`). No allometric
    scaling: the source gives one typical adult.
    """
    gut, central, periph, sink = symbols(" ".join(PF_STATES))
    ka, v, k12, k21, kel, mw = symbols("pf04457845_ka pf04457845_v pf04457845_k12 pf04457845_k21 "
                                       "pf04457845_kel pf04457845_mw")
    rates = {"pf04457845_gut": -ka * gut,
             "pf04457845_central": ka * gut - (kel + k12) * central + k21 * periph,
             "pf04457845_periph": k12 * central - k21 * periph,
             "pf04457845_eliminated": kel * central}
    return Submodel(
        name="pf04457845", description=pf04457845_submodel.__doc__ or "",
        states={s: "umol" for s in PF_STATES},
        parameters={"pf04457845_ka": "1/h", "pf04457845_v": "L", "pf04457845_k12": "1/h",
                    "pf04457845_k21": "1/h", "pf04457845_kel": "1/h", "pf04457845_mw": "g/mol"},
        rates=rates,
        algebra={"pf04457845_plasma_nM_total": 1000 * central / v},
        outputs={"pf04457845_plasma_ng_per_ml": central / v * mw})


def pf04457845_bioavailability(p: dict, mg):
    """Oral bioavailability of one dose (Benson 2014): F = Fmax D / (ED50 + D), D in mg. It rises
    with the dose, which gives the supraproportional exposure Li 2012 saw from 0.1 to 10 mg."""
    return p["pf04457845_f_max"] * mg / (p["pf04457845_f_ed50"] + mg)


def pf04457845_bolus(p: dict, time_h: float, mg):
    """An oral dose of PF-04457845 (mg, per patient) as the amount (µmol) reaching the gut depot."""
    return Bolus(time_h, "pf04457845_gut", 1000.0 * mg * pf04457845_bioavailability(p, mg) / p["pf04457845_mw"])
