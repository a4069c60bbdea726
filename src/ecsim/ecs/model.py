"""Targets and endocannabinoid tone at rapid equilibrium, driven by free brain drug levels.

Binding, enzyme inhibition and endocannabinoid turnover (seconds to minutes) are far faster than
drug levels (hours), so they enter as algebraic outputs of the state (DESIGN §5, step 2):

- enzyme and carrier inhibition by CBD: C / (C + IC50) (competitive, unbound CBD);
- anandamide: clearance falls with FAAH inhibition and with FABP-carrier inhibition (FAAH reaches
  AEA through FABPs); D2 activation multiplies striatal release (Giuffrida 1999). Brain and plasma
  anandamide have their own FAAH shares of clearance (mouse knockout for brain, Cravatt 2001; human
  plasma under near-complete FAAH inhibition, Mayo 2020);
- 2-AG: clearance shared by MAGL (85 %) and ABHD12/ABHD6 (Blankman 2007);
- CB1: Black–Leff operational model with several agonists (2-AG, AEA, THC, 11-OH-THC) and CBD as a
  negative allosteric modulator scaling agonist affinity (alpha) and efficacy (beta) with
  constant K_B (Laprairie 2015); efficacy scales with regional CB1 density;
- release at each synapse class: 1 - Imax x CB1 signal, reported relative to the drug-free state.

Interventions (FAAH knockout or inhibitor, MAGL inhibitor, D2 agonist, fixed in-vitro CBD) and the
species-specific FAAH IC50 are per-patient covariates.

FAAH protein turns over in days, so the enzyme left after an irreversible inhibitor (PF-04457845)
is a state (`faah_turnover_submodel`): synthesis equals degradation at baseline, covalent
inactivation at k_inact/K_I times the inhibitor's concentration. Reversible inhibitors (CBD, the
`faah_extra_inhibition` covariate) act on the enzyme that is left.
"""

from __future__ import annotations

import sympy as sp

from ..model.declaration import Submodel, symbols

INTERVENTIONS = {"faah_extra_inhibition": "dimensionless", "magl_extra_inhibition": "dimensionless",
                 "d2_agonist_occupancy": "dimensionless", "cbd_fixed_free_nM": "nmol/L",
                 "synthetic_cb1_agonist_occupancy": "dimensionless",
                 "cbd_faah_ic50_uM": "umol/L"}

PARAMETERS = {
    "cbd_magl_ic50": "umol/L", "cbd_fabp_ki": "umol/L", "faah_fabp_dependence": "dimensionless",
    "aea_fm_faah": "dimensionless", "twoag_fm_magl": "dimensionless", "aea_d2_release_gain": "dimensionless",
    "aea_plasma_fm_faah": "dimensionless",
    "aea_free_brain_baseline": "nmol/L", "twoag_free_brain_baseline": "nmol/L", "aea_cb1_kd": "nmol/L",
    "twoag_cb1_kd": "nmol/L", "thc_cb1_ki": "nmol/L", "cb1_tau_2ag": "dimensionless",
    "cb1_tau_aea": "dimensionless", "cb1_tau_thc": "dimensionless", "cbd_cb1_nam_kb": "umol/L",
    "cbd_cb1_nam_efficacy_coop": "dimensionless", "cbd_cb1_nam_affinity_coop": "dimensionless",
    "cb1_density_striatum": "dimensionless", "cb1_density_pallidal": "dimensionless",
    "cb1_density_stn": "dimensionless", "cb1_release_imax": "dimensionless", "cbd_cb2_ki": "nmol/L",
    "thc_cb2_ki": "nmol/L", "cbd_ent1_ki": "nmol/L", "cbd_5ht1a_ki": "nmol/L", "cbd_gpr55_ic50": "nmol/L",
    "cbd_trpv1_ec50": "nmol/L", "cb1_recovery_rate": "1/h", "cb1_internalisation_rate": "1/h",
    "nabilone_cb1_ki": "nmol/L", "nabilone_cb1_tau": "dimensionless",
    "cbd7oh_relative_potency": "dimensionless",
}

FAAH_TURNOVER = {"faah_degradation_rate": "1/h", "pf04457845_faah_kinact_ki": "L/nmol/h",
                 "pf04457845_fu_plasma": "dimensionless"}
FAAH_LOST = "faah_inactivated_fraction"   # 1 - active FAAH protein (covalently inactivated), 0 at baseline

S = {name: sp.Symbol(name, real=True, nonnegative=True)
     for name in [*PARAMETERS, *INTERVENTIONS, *FAAH_TURNOVER, FAAH_LOST, "cbd_free_nM", "thc_free_nM",
                  "thc11oh_free_nM", "pf04457845_plasma_nM_total", "nabilone_free_nM",
                                                "cbd7oh_free_nM"]}


def fraction(c: sp.Expr, k: sp.Expr) -> sp.Expr:
    """Occupancy or inhibition of a single site: c / (c + k)."""
    return c / (c + k)


def combined(*inhibitions: sp.Expr) -> sp.Expr:
    """Independent inhibitors acting on one enzyme: 1 - prod(1 - i)."""
    return 1 - sp.Mul(*[(1 - i) for i in inhibitions])


def affinity_scale(nam: sp.Expr) -> sp.Expr:
    """Factor on agonist K from CBD's allosteric site occupancy n = [CBD]/K_B (alpha cooperativity)."""
    return (1 + nam) / (1 + S["cbd_cb1_nam_affinity_coop"] * nam)


def cb1_signal(agonists: list[tuple[sp.Expr, sp.Expr, sp.Expr]], density: sp.Expr, nam: sp.Expr) -> sp.Expr:
    """Operational model with competing agonists (conc, K, tau) and an allosteric modulator.

    E/Em = sum(tau_i x_i) / (1 + sum(x_i (1 + tau_i))), x_i = [A_i] / K_i,eff, where
    K_eff = K (1 + n) / (1 + alpha n), tau_eff = density tau (1 + beta n) / (1 + n), n = [CBD] / K_B.
    """
    beta = S["cbd_cb1_nam_efficacy_coop"]
    t_scale = density * (1 + beta * nam) / (1 + nam)
    xs = [(c / (k * affinity_scale(nam)), tau * t_scale) for c, k, tau in agonists]
    return sum(t * x for x, t in xs) / (1 + sum(x * (1 + t) for x, t in xs))


def _levels():
    """Free CBD-like activity (nM and uM) at every CBD target, and free THC-like agonist (nM).
    7-OH-CBD counts as CBD times its relative potency (ecs.md row 70: an equipotent metabolite;
    assumption at the molecular targets), as 11-OH-THC counts as THC."""
    cbd_nM = S["cbd_free_nM"] + S["cbd7oh_relative_potency"] * S["cbd7oh_free_nM"] + S["cbd_fixed_free_nM"]
    return cbd_nM, cbd_nM / 1000, S["thc_free_nM"] + S["thc11oh_free_nM"]


def _agonists(aea_site: str, with_drugs: bool = True, reversible_only: bool = False
              ) -> list[tuple[sp.Expr, sp.Expr, sp.Expr]]:
    """(free concentration, K, tau) of each CB1 agonist at a synapse class. ``reversible_only``:
    anandamide as raised by reversible FAAH inhibition only, without the turnover state."""
    _, _, thc_nM = _levels()
    suffix = "_REVERSIBLE" if reversible_only else ""
    aea_fold, twoag_fold = (sp.Symbol(f"{n}", real=True, nonnegative=True)
                            for n in (f"AEA_FOLD_{aea_site.upper()}{suffix}", "TWOAG_FOLD"))
    # a synthetic full agonist (WIN 55,212-2, CP55940) given as its drug-free occupancy o:
    # [A]/K = o / (1 - o), with 2-AG's efficacy
    synthetic = S["synthetic_cb1_agonist_occupancy"] / (1 - S["synthetic_cb1_agonist_occupancy"])
    nabilone_nM = S["nabilone_free_nM"]   # oral nabilone (ecsim.pk.nabilone), unbound plasma = brain
    if not with_drugs:
        aea_fold, twoag_fold, thc_nM, synthetic = sp.Integer(1), sp.Integer(1), sp.Integer(0), sp.Integer(0)
        nabilone_nM = sp.Integer(0)
    return [(S["twoag_free_brain_baseline"] * twoag_fold, S["twoag_cb1_kd"], S["cb1_tau_2ag"]),
            (S["aea_free_brain_baseline"] * aea_fold, S["aea_cb1_kd"], S["cb1_tau_aea"]),
            (thc_nM, S["thc_cb1_ki"], S["cb1_tau_thc"]),
            (synthetic, sp.Integer(1), S["cb1_tau_2ag"]),
            (nabilone_nM, S["nabilone_cb1_ki"], S["nabilone_cb1_tau"])]


def occupancy(agonists, nam: sp.Expr) -> sp.Expr:
    """Fraction of CB1 bound by any orthosteric agonist, with CBD lowering affinity (alpha)."""
    xs = [c / (k * affinity_scale(nam)) for c, k, _ in agonists]
    return sum(xs) / (1 + sum(xs))


def faah_turnover_submodel() -> Submodel:
    """Active FAAH protein with turnover and covalent inactivation by PF-04457845.

    With E the active fraction of FAAH protein (1 at baseline: synthesis k_deg balances degradation
    k_deg E) and C the unbound plasma PF-04457845 concentration, dE/dt = k_deg (1 - E) - k C E,
    k = k_inact/K_I (the low-concentration limit of covalent inhibition, Ahn 2011). The state is the
    inactivated fraction u = 1 - E, so it starts at 0 and stays exactly 0 without the drug:
    du/dt = k C (1 - u) - k_deg u. Linear in u; C follows the drug's PK, so the engine takes Magnus
    steps. Inactivated enzyme is degraded like the active one, so recovery after the last dose
    follows new synthesis (half-life ln 2 / k_deg).
    """
    u = S[FAAH_LOST]
    conc = S["pf04457845_fu_plasma"] * S["pf04457845_plasma_nM_total"]
    rate = S["pf04457845_faah_kinact_ki"] * conc * (1 - u) - S["faah_degradation_rate"] * u
    return Submodel(name="faah_turnover", description=faah_turnover_submodel.__doc__ or "",
                    states={FAAH_LOST: "dimensionless"}, parameters=FAAH_TURNOVER, rates={FAAH_LOST: rate},
                    outputs={"faah_active_fraction": 1 - u})


def _aea_clearance(faah: sp.Expr, fabp: sp.Expr, fm: sp.Expr = S["aea_fm_faah"]) -> sp.Expr:
    """Anandamide clearance relative to baseline at a FAAH inhibition and an FABP inhibition, with
    ``fm`` the FAAH share of clearance at baseline (brain by default); the rest (NAAA, COX-2, FAAH-2
    in primates, uptake elsewhere) is left untouched. The fold is the inverse, so 1 - 1/fold = fm x
    (the fraction of FAAH-mediated clearance removed)."""
    return fm * (1 - faah) * (1 - S["faah_fabp_dependence"] * fabp) + 1 - fm


def ecs_submodel() -> Submodel:
    """Targets and tone: enzyme, carrier and receptor engagement; AEA and 2-AG folds."""
    cbd_nM, cbd_uM, thc_nM = _levels()
    reversible = combined(fraction(cbd_uM, S["cbd_faah_ic50_uM"]), S["faah_extra_inhibition"])
    faah = combined(reversible, S[FAAH_LOST])   # reversible inhibition of the enzyme that is left
    magl = combined(fraction(cbd_uM, S["cbd_magl_ic50"]), S["magl_extra_inhibition"])
    fabp = fraction(cbd_uM, S["cbd_fabp_ki"])
    d2 = 1 + S["aea_d2_release_gain"] * S["d2_agonist_occupancy"]
    algebra = {
        "AEA_FOLD_BRAIN": 1 / _aea_clearance(faah, fabp),
        "AEA_FOLD_STRIATUM": d2 / _aea_clearance(faah, fabp),
        # plasma anandamide: the FAAH share measured in human plasma, not the mouse-brain one
        "AEA_FOLD_PLASMA": 1 / _aea_clearance(faah, fabp, S["aea_plasma_fm_faah"]),
        # what CB1 tolerance sees (see tolerance_submodel): reversible FAAH inhibition only
        "AEA_FOLD_BRAIN_REVERSIBLE": 1 / _aea_clearance(reversible, fabp),
        "AEA_FOLD_STRIATUM_REVERSIBLE": d2 / _aea_clearance(reversible, fabp),
        "TWOAG_FOLD": 1 / (S["twoag_fm_magl"] * (1 - magl) + 1 - S["twoag_fm_magl"]),
    }
    aea_brain, aea_striatum, aea_plasma, twoag = (
        sp.Symbol(k, real=True, nonnegative=True)
        for k in ("AEA_FOLD_BRAIN", "AEA_FOLD_STRIATUM", "AEA_FOLD_PLASMA", "TWOAG_FOLD"))
    outputs = {
        "faah_inhibition": faah, "magl_inhibition": magl, "fabp_inhibition": fabp,
        "aea_fold_brain": aea_brain, "aea_fold_striatum": aea_striatum, "aea_fold_plasma": aea_plasma,
        "twoag_fold_brain": twoag, "twoag_fold_plasma": twoag,
        "cb2_occupancy_cbd": fraction(cbd_nM, S["cbd_cb2_ki"]),
        "cb2_occupancy_thc": fraction(thc_nM, S["thc_cb2_ki"]),
        "cb1_occupancy_thc": fraction(thc_nM, S["thc_cb1_ki"]),
        "cb1_nam_occupancy_cbd": fraction(cbd_uM, S["cbd_cb1_nam_kb"]),
        "ent1_inhibition": fraction(cbd_nM, S["cbd_ent1_ki"]),
        "ht1a_occupancy_cbd": fraction(cbd_nM, S["cbd_5ht1a_ki"]),
        "gpr55_inhibition": fraction(cbd_nM, S["cbd_gpr55_ic50"]),
        "trpv1_activation": fraction(cbd_nM, S["cbd_trpv1_ec50"]),
    }
    return Submodel(name="ecs", description=__doc__ or "", states={}, parameters=PARAMETERS,
                    covariates=INTERVENTIONS, rates={}, algebra=algebra, outputs=outputs)


SYNAPSES = {  # synapse class -> (CB1 density parameter, anandamide fold used)
    "glu_corticostriatal": ("cb1_density_striatum", "striatum"),
    "gaba_striatum_to_gpe": ("cb1_density_pallidal", "brain"),
    "gaba_striatum_to_gpi_snr": ("cb1_density_pallidal", "brain"),
    "glu_stn": ("cb1_density_stn", "brain"),
}


def tolerance_submodel() -> Submodel:
    """CB1 on the surface of each synapse class, internalised in proportion to agonist occupancy.

    With R the surface fraction, dR/dt = k_rec (1 - R) - k_int occ R; the state is the deviation
    y = R - R0 from the drug-free steady state R0 = k_rec / (k_rec + k_int occ0), so it starts at 0.
    Written as dy/dt = k_int R0 (occ0 - occ) - (k_rec + k_int occ) y (the same equation, since
    k_rec (1 - R0) = k_int occ0 R0), so that without drug the source is exactly zero and y stays
    exactly 0: a drug-free arm's states are then constant, and its outputs are computed once
    (`engine.outputs`). Linear in y; occ depends on drug levels, so the engine takes Magnus steps.
    Anandamide here is raised by reversible FAAH inhibition only: the engine's Magnus blocks read
    constant-coefficient blocks, not each other, so the FAAH turnover state does not reach tolerance (chronic MAGL
    blockade desensitised CB1 in mice, Schlosburg 2010; its FAAH arm is recalled, not re-read, as not).
    """
    _, cbd_uM, _ = _levels()
    nam = cbd_uM / S["cbd_cb1_nam_kb"]
    k_rec, k_int = S["cb1_recovery_rate"], S["cb1_internalisation_rate"]
    states, rates, algebra = {}, {}, {}
    for name, (_, aea_site) in SYNAPSES.items():
        y, = symbols(f"cb1_surface_shift_{name}")
        occ0 = occupancy(_agonists(aea_site, with_drugs=False), sp.Integer(0))
        r0 = k_rec / (k_rec + k_int * occ0)
        algebra[f"CB1_R0_{name}"] = r0
        states[str(y)] = "dimensionless"
        occ = occupancy(_agonists(aea_site, reversible_only=True), nam)
        rates[str(y)] = k_int * r0 * (occ0 - occ) - (k_rec + k_int * occ) * y
    return Submodel(name="cb1_tolerance", description=tolerance_submodel.__doc__ or "", states=states,
                    parameters={}, rates=rates, algebra=algebra)


def synapse_submodel() -> Submodel:
    """CB1 signal and transmitter release per synapse class, relative to the drug-free state."""
    _, cbd_uM, _ = _levels()
    nam = cbd_uM / S["cbd_cb1_nam_kb"]
    imax = S["cb1_release_imax"]
    outputs = {}
    for name, (density, aea_site) in SYNAPSES.items():
        r0 = sp.Symbol(f"CB1_R0_{name}", real=True, nonnegative=True)
        surface = (r0 + symbols(f"cb1_surface_shift_{name}")[0]) / r0
        signal = cb1_signal(_agonists(aea_site), S[density] * surface, nam)
        signal0 = cb1_signal(_agonists(aea_site, with_drugs=False), S[density], sp.Integer(0))
        outputs[f"cb1_surface_{name}_rel"] = surface
        outputs[f"cb1_signal_{name}"] = signal
        outputs[f"cb1_signal_{name}_rel"] = signal / signal0
        outputs[f"release_{name}_rel"] = (1 - imax * signal) / (1 - imax * signal0)
    return Submodel(name="cb1_synapses", description=synapse_submodel.__doc__ or "", states={},
                    parameters={}, rates={}, outputs=outputs)
