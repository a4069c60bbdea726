"""Per-patient exposure and target metrics over the last 24 h of a run (steady state for long
regimens): Cmax, Cmin and time-averaged concentration of drug levels; time averages of targets."""

from __future__ import annotations

import numpy as np

REPORTED = ("cbd_plasma_ng_per_ml", "cbd_brain_free_nM", "cbd7oh_plasma_ng_per_ml",
            "cbd7cooh_plasma_ng_per_ml", "thc_plasma_ng_per_ml", "thc11oh_plasma_ng_per_ml",
            "clobazam_plasma_ng_per_ml", "nclb_plasma_ng_per_ml", "nabilone_plasma_ng_per_ml")
# Outputs whose population mean over time a run keeps (bands.parquet, the report's tone figure); the
# others are kept per patient as exposure metrics only, so a chunk's sums stay small at 10^6 patients.
MEANS = REPORTED + ("aea_fold_brain", "twoag_fold_brain", "cb1_signal_gaba_striatum_to_gpe_rel",
                    "release_gaba_striatum_to_gpe_rel")
TARGETS = ("faah_inhibition", "magl_inhibition", "fabp_inhibition", "aea_fold_brain", "aea_fold_striatum",
           "aea_fold_plasma", "twoag_fold_brain", "twoag_fold_plasma", "cb1_nam_occupancy_cbd", "cb1_occupancy_thc",
           "cb2_occupancy_cbd", "cb2_occupancy_thc", "ent1_inhibition", "ht1a_occupancy_cbd", "gpr55_inhibition",
           "trpv1_activation", "cb1_signal_glu_corticostriatal_rel", "cb1_signal_gaba_striatum_to_gpe_rel",
           "cb1_signal_gaba_striatum_to_gpi_snr_rel", "cb1_signal_glu_stn_rel", "release_glu_corticostriatal_rel",
           "release_gaba_striatum_to_gpe_rel", "release_gaba_striatum_to_gpi_snr_rel", "release_glu_stn_rel",
           "cb1_surface_glu_corticostriatal_rel", "cb1_surface_gaba_striatum_to_gpe_rel")
COVARIATES = ("body_weight_kg", "cyp2c19_activity", "label_content_factor", "max_single_thc_mg",
              "max_single_thc_oral_equivalent_mg", "cbd_daily_mg", "parkinsonian_features")


def last_day(times_h: np.ndarray) -> np.ndarray:
    """Mask of output times in the last 24 h (the whole run if shorter)."""
    return times_h >= max(0.0, times_h[-1] - 24.0)


def exposure_metrics(times_h: np.ndarray, outputs: dict[str, np.ndarray],
                     values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cmax, Cmin and Cavg over the last day for the reported outputs, plus covariates."""
    mask = last_day(times_h)
    t = times_h[mask]
    span = max(t[-1] - t[0], 1e-12)
    metrics = {name: np.asarray(values[name], dtype=float) for name in COVARIATES}
    for name in REPORTED:
        window = outputs[name][:, mask]
        metrics[f"{name}.cmax"] = window.max(axis=1)
        metrics[f"{name}.cmin"] = window.min(axis=1)
        metrics[f"{name}.cavg"] = _time_average(window, t, span)
    for name in TARGETS:
        if name in outputs:
            metrics[f"{name}.avg"] = _time_average(outputs[name][:, mask], t, span)
    return metrics


def _time_average(window: np.ndarray, t: np.ndarray, span: float) -> np.ndarray:
    return np.trapezoid(window, t, axis=1) / span if len(t) > 1 else window[:, 0]
