"""The report's figures, each returned as PNG bytes so the HTML can embed them (it must open offline).

Every figure shows between-patient spread where the run has it; none invents data the run does not
hold. matplotlib is imported here only.
"""

from __future__ import annotations

import io

import numpy as np

from ..circuit.regions import REGIONS
from ..circuit.scales import SYMPTOMS
from ..clinical_summary import PRESENT
from ..intervals import half_width
from ..simulation import ArmResult
from ..uncertainty.model import split_key

PANELS = (("cbd_plasma_ng_per_ml", "CBD, plasma (ng/mL)"),
          ("cbd_brain_free_nM", "CBD, free in brain (nM)"),
          ("cbd7oh_plasma_ng_per_ml", "7-OH-CBD, plasma (ng/mL)"),
          ("thc_plasma_ng_per_ml", "THC, plasma (ng/mL)"))
ENGAGEMENT = (("faah_inhibition", "FAAH inhibited"), ("magl_inhibition", "MAGL inhibited"),
              ("fabp_inhibition", "FABP inhibited"), ("cb1_nam_occupancy_cbd", "CB1 modulated by CBD"),
              ("cb1_occupancy_thc", "CB1 occupied by THC"), ("ent1_inhibition", "ENT1 inhibited"),
              ("gpr55_inhibition", "GPR55 inhibited"), ("ht1a_occupancy_cbd", "5-HT1A occupied"),
              ("trpv1_activation", "TRPV1 activated"))
TONE = (("aea_fold_brain", "anandamide, brain (fold)"), ("twoag_fold_brain", "2-AG, brain (fold)"),
        ("cb1_signal_gaba_striatum_to_gpe_rel", "CB1 signal, striatum→GPe (relative)"),
        ("release_gaba_striatum_to_gpe_rel", "GABA release, striatum→GPe (relative)"))
RATES = (("gpi_hz", "GPi"), ("gpe_hz", "GPe"), ("stn_hz", "STN"))
NOTE = "ecsim: a model, not medical advice"


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.text(0.995, 0.005, NOTE, ha="right", va="bottom", fontsize=7, color="0.5")
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def drug_levels(results: list[ArmResult]) -> bytes:
    """Plasma CBD, free brain CBD, 7-OH-CBD and THC: median and 5-95 % band of sampled patients."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True, constrained_layout=True)
    for ax, (name, label) in zip(axes.flat, PANELS):
        for r in results:
            sample = np.concatenate(r.sample[name])
            lo, mid, hi = np.percentile(sample, [5, 50, 95], axis=0)
            line, = ax.plot(r.times_h / 24, mid, lw=1.2, label=r.name)
            ax.fill_between(r.times_h / 24, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_ylabel(label)
        ax.set_yscale("symlog", linthresh=0.01)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    axes[0, 0].legend(fontsize=7)
    return _png(fig)


def target_engagement(results: list[ArmResult]) -> bytes:
    """Each target's last-day average per arm: median with 5th-95th percentile whiskers, log scale."""
    plt = _plt()
    arms = [r for r in results if any(np.any(r.exposure[f"{t}.avg"] > 0) for t, _ in ENGAGEMENT)]
    fig, ax = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
    width = 0.8 / max(len(arms), 1)
    x = np.arange(len(ENGAGEMENT))
    for i, r in enumerate(arms):
        v = np.array([np.percentile(np.maximum(r.exposure[f"{t}.avg"], 1e-9), [5, 50, 95]) for t, _ in ENGAGEMENT])
        ax.bar(x + i * width, v[:, 1], width, label=r.name, alpha=0.8)
        ax.errorbar(x + i * width, v[:, 1], yerr=[v[:, 1] - v[:, 0], v[:, 2] - v[:, 1]], fmt="none", ecolor="0.3", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(1e-7, 1.5)
    ax.axhline(0.5, color="0.4", ls="--", lw=0.8)
    ax.text(len(ENGAGEMENT) - 0.5, 0.55, "half engaged", fontsize=7, color="0.4", ha="right")
    ax.set_xticks(x + 0.4 - width / 2, [label for _, label in ENGAGEMENT], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("fraction (last-day average)")
    ax.grid(axis="y", alpha=0.3)
    if arms:
        ax.legend(fontsize=7)
    return _png(fig)


def tone(results: list[ArmResult]) -> bytes:
    """Endocannabinoid levels and CB1 signalling over the run: population mean per arm, averaged
    over each day (the within-day swings follow the doses)."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), sharex=True, constrained_layout=True)
    for ax, (name, label) in zip(axes.flat, TONE):
        for r in results:
            if name in r.mean:
                ax.plot(*daily_mean(r.times_h, r.mean[name]), lw=1.2, label=r.name)
        ax.axhline(1.0, color="0.5", lw=0.6)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    axes[0, 0].legend(fontsize=7)
    return _png(fig)


def daily_mean(times_h: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over each whole day after the start, plotted at the day's end (days)."""
    day = np.floor((times_h - 1e-9) / 24.0)
    days = np.unique(day[day >= 0])
    return days + 1, np.array([values[day == d].mean() for d in days])


def circuit_rates(results: list[ArmResult]) -> bytes | None:
    """Mean GPi, GPe and STN rates at each visit per arm (Hz)."""
    arms = [r for r in results if r.clinical]
    if not arms:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), constrained_layout=True)
    for ax, (name, label) in zip(axes, RATES):
        for r in arms:
            ax.plot(r.visit_days, r.clinical[name].mean(axis=0), marker="o", ms=3, lw=1.2, label=r.name)
        ax.set_title(f"{label} (Hz)", fontsize=9)
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return _png(fig)


def symptoms_over_time(results: list[ArmResult]) -> bytes | None:
    """Per arm: share of patients with each of the article's symptoms, and mean severity per region."""
    arms = [r for r in results if r.clinical]
    if not arms:
        return None
    plt = _plt()
    fig, axes = plt.subplots(2, len(arms), figsize=(2.6 * len(arms) + 1, 5.5), sharey="row", squeeze=False,
                             constrained_layout=True)
    for j, r in enumerate(arms):
        for s in SYMPTOMS:
            axes[0, j].plot(r.visit_days, np.mean(r.clinical[s] > PRESENT, axis=0), lw=1.2, label=s.replace("_", " "))
        severity = r.region_severity_sum / r.n
        for i, region in enumerate(REGIONS):
            if severity[:, i].max() > 0.02:
                axes[1, j].plot(r.visit_days, severity[:, i], lw=1.2, label=region)
        axes[0, j].set_title(r.name, fontsize=8)
        axes[1, j].set_xlabel("day")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("share of patients with symptom")
    axes[1, 0].set_ylabel("mean severity (0-1)")
    axes[0, -1].legend(fontsize=6, loc="upper right")
    axes[1, -1].legend(fontsize=6, loc="upper right")
    return _png(fig)


def scale_changes(results: list[ArmResult], scale: str, references: list[dict]) -> bytes | None:
    """Change from baseline in the primary scale per arm (mean and 95 % CI of the mean) against the
    published results of the project's case files for that scale (markers)."""
    arms = [r for r in results if r.clinical and scale in r.clinical]
    if not arms:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4), constrained_layout=True)
    for r in arms:
        change = r.clinical[scale] - r.clinical[scale][:, :1]
        mean = change.mean(axis=0)
        half = half_width(change, axis=0)
        line, = ax.plot(r.visit_days, mean, lw=1.5, label=r.name)
        ax.fill_between(r.visit_days, mean - half, mean + half, color=line.get_color(), alpha=0.2, lw=0)
    for ref in references:
        ax.errorbar(ref["day"], ref["observed"], yerr=ref.get("sd"), fmt="D", color="k", ms=5, capsize=3)
        ax.annotate(ref["label"], (ref["day"], ref["observed"]), xytext=(4, -10), textcoords="offset points", fontsize=7)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("day")
    ax.set_ylabel(f"{scale}: change from baseline")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def uncertainty(unc: dict, results: list[ArmResult], trial: dict | None, mic: float | None) -> bytes | None:
    """Left: each CBD arm's difference from control on the trial's primary scale (points at the
    primary visit; negative is better) with both kinds of spread, against the minimal important
    change: how different patients respond (`paired_differences`: 5th-95th percentile over the
    simulated patients, and the trial's mean with its 95 % CI) and how unsure the model is (median
    and 90 % interval over parameter draws, typical patient, expected score). Right: the
    parameters most correlated with the widest parameter interval."""
    answers = answer_intervals(unc)
    if not answers or not trial or not trial.get("control_arm"):
        return None
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True,
                                      gridspec_kw={"width_ratios": [1.5, 1]})
    arms = list(answers)
    scale, control, day = trial["primary_scale"], trial["control_arm"], trial["primary_day"]
    paired = paired_differences(results, scale, control, day)
    for i, arm in enumerate(arms):
        if arm in paired:
            lo, hi = np.percentile(paired[arm], [5, 95])
            left.plot([lo, hi], [i + 0.22] * 2, color="0.55", lw=5, marker="|", ms=12, mew=2, solid_capstyle="butt",
                      label="each patient vs control: 5th-95th percentile" if i == 0 else None)
        diff = (trial["arms"].get(arm) or {}).get("difference_vs_control")
        if diff and diff.get("ci95") and None not in diff["ci95"]:
            m, (c_lo, c_hi) = diff["mean"], diff["ci95"]
            left.errorbar(m, i, xerr=[[m - c_lo], [c_hi - m]], fmt="s", color="k", capsize=4,
                          label="trial: mean, 95 % CI" if i == 0 else None)
        v = answers[arm]
        left.errorbar(v["median"], i - 0.22, xerr=[[v["median"] - v["p05"]], [v["p95"] - v["median"]]], fmt="D",
                      color="C0", capsize=4, label="model: 90 % parameter interval" if i == 0 else None)
    if mic is not None:
        left.axvline(-mic, color="C3", ls="--", lw=1)
        left.text(-mic, len(arms) - 0.45, f" smallest change patients\n notice ({mic:g} points)", color="C3",
                  fontsize=7, va="top")
    left.axvline(0, color="0.5", lw=0.6)
    left.set_yticks(range(len(arms)), arms, fontsize=8)
    left.set_ylim(-0.6, len(arms) - 0.4)
    left.set_xlabel(f"{scale} vs {control} at day {day:g}, points (negative = better)", fontsize=8)
    left.grid(alpha=0.3)
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    widest = max(arms, key=lambda a: answers[a]["p95"] - answers[a]["p05"])
    drivers = unc.get("drivers", {}).get(answers[widest]["key"], [])
    if drivers:
        right.barh(range(len(drivers)), [d["score"] for d in drivers], color=["C2" if d["score"] < 0 else "C1" for d in drivers])
        right.set_yticks(range(len(drivers)), [d["parameter"] for d in drivers], fontsize=8)
        right.invert_yaxis()
        right.axvline(0, color="0.5", lw=0.6)
        noise = unc.get("rho_noise_level")
        if noise:
            right.axvspan(-noise, noise, color="0.9", zorder=0, label="within sampling noise")
            right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
        right.set_xlim(-1, 1)
        right.set_xlabel(f"Spearman rho with the answer\nfor {widest}", fontsize=8)
    right.grid(alpha=0.3)
    return _png(fig)


def answer_intervals(unc: dict) -> dict[str, dict]:
    """Per CBD arm, the parameter-uncertainty interval of its answer: the primary scale against
    control in points (``key`` names the output, ``unit`` its unit); the affected regions' severity
    in per cent of the control's where a run has no points (older uncertainty documents)."""
    intervals = unc.get("intervals", {})
    for suffix, unit in (("_vs_control_points", "points"), (".severity_vs_control_pct", "%")):
        found = {split_key(k)[0]: v | {"key": k, "unit": unit} for k, v in intervals.items() if k.endswith(suffix)}
        if found:
            return found
    return {}


def paired_differences(results: list[ArmResult], scale: str, control: str, day: float) -> dict[str, np.ndarray]:
    """Per arm: each simulated patient's change on ``scale`` from baseline to the visit nearest
    ``day`` minus the same patient's change on the control arm (points). The arms share their
    virtual patients (the same draws by patient number), so this is how each patient responds to
    the arm's treatment over the control's; patients left out of either arm are skipped."""
    arms = {r.name: r for r in results if r.clinical and scale in r.clinical}
    if control not in arms:
        return {}
    ref = arms[control]
    k = int(np.argmin(np.abs(ref.visit_days - day)))
    out = {}
    for name, r in arms.items():
        if name == control:
            continue
        _, i, j = np.intersect1d(r.patients, ref.patients, return_indices=True)
        change = r.clinical[scale][i, k] - r.clinical[scale][i, 0]
        out[name] = (change - (ref.clinical[scale][j, k] - ref.clinical[scale][j, 0])).astype(float)
    return out
