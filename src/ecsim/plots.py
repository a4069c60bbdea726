"""Figures. matplotlib is imported here only, so `import ecsim` stays fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PANELS = (("cbd_plasma_ng_per_ml", "CBD, plasma (ng/mL)"),
          ("cbd_brain_free_nM", "CBD, free in brain (nM)"),
          ("cbd7oh_plasma_ng_per_ml", "7-OH-CBD, plasma (ng/mL)"),
          ("thc_plasma_ng_per_ml", "THC, plasma (ng/mL)"))


def plot_run(results, path: Path) -> None:
    """Median and 5-95 % band of the sampled patients per arm, four drug levels, against days."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True, constrained_layout=True)
    for ax, (name, label) in zip(axes.flat, PANELS):
        for r in results:
            sample = np.concatenate(r.sample[name])
            lo, mid, hi = np.percentile(sample, [5, 50, 95], axis=0)
            days = r.times_h / 24
            line, = ax.plot(days, mid, lw=1.2, label=r.name)
            ax.fill_between(days, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_ylabel(label)
        ax.set_yscale("symlog", linthresh=0.01)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Drug levels: median and 5-95 % of virtual patients (a model, not medical advice)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
