"""The run's drug-level figure, pk.png (drawn by `ecsim.report.figures`, which the report shares)."""

from __future__ import annotations

from pathlib import Path


def plot_run(results, path: Path) -> None:
    """Median and 5-95 % band of the sampled patients per arm, four drug levels, against days."""
    from .report.figures import drug_levels
    path.write_bytes(drug_levels(results))
