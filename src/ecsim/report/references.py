"""Published scale changes to draw beside a run's own: taken from the project's case files, so
every marker has a citation and a case id."""

from __future__ import annotations

from functools import lru_cache

from ..validation import load_cases


@lru_cache(maxsize=16)
def _changes(scale: str, phenotype: str | None) -> tuple[tuple, ...]:
    rows = []
    for case in load_cases(None):
        if case.scenario.population.phenotype != phenotype:
            continue
        for m in case.metrics:
            q = m.quantity
            if (q is None or q.measure != "visit" or q.output != scale or q.change_from_day != 0
                    or q.relative or q.statistic != "arithmetic_mean"):
                continue
            rows.append((q.at_day, m.observed.value, m.observed.sd, f"{case.id} {q.arm}", case.citation, case.kind))
    return tuple(rows)


def published_changes(scale: str, phenotype: str | None) -> list[dict]:
    """Mean changes from baseline on ``scale`` reported by studies of ``phenotype`` (case files)."""
    keys = ("day", "observed", "sd", "label", "citation", "kind")
    return [dict(zip(keys, row)) for row in _changes(scale, phenotype)]
