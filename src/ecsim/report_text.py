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


def print_targets(table: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=200)
    for arm in table["arms"]:
        t = Table("target", "median", "5th pct", "95th pct", title=f"{arm['arm']} ({arm['patients']} patients)")
        for name, v in arm["targets"].items():
            t.add_row(name, f"{v['median']:.4g}", f"{v['p05']:.4g}", f"{v['p95']:.4g}")
        console.print(t)
    console.print(f"{table['window']}; {table['spread']}")
