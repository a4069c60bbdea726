"""Plain-terminal tables for `ecsim validate`."""

from __future__ import annotations


def print_validation(results) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table("metric", "kind", "observed", "simulated", "tolerance", "result")
    for r in results:
        table.add_row(r.id, r.kind, f"{r.observed:.4g}", f"{r.simulated:.4g}", r.tolerance,
                      "[green]pass[/]" if r.passed else "[red]MISS[/]")
    console = Console(width=200)
    console.print(table)
    for kind in ("calibration", "validation"):
        sub = [r for r in results if r.kind == kind]
        console.print(f"{kind}: {sum(r.passed for r in sub)} of {len(sub)} metrics within tolerance")
