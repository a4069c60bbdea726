"""benchmarks/stage_rates.py times the stages of `ecsim run`'s chunk one by one: they must be the
stages `simulation.summarize_task` runs, giving the same summary, or its table measures something
else than the run."""

import importlib.util
from dataclasses import fields
from pathlib import Path

import numpy as np

from ecsim import simulation as S
from ecsim.chain import full_model
from ecsim.scenario import load_scenario

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "stage_rates.py"


def _script():
    spec = importlib.util.spec_from_file_location("stage_rates", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def test_the_timed_stages_make_the_runs_summary():
    stage_rates = _script()
    scenario = load_scenario(None)
    registry = S.scenario_registry(scenario)
    arm = 1   # a CBD arm: every stage does work
    seconds, summary = stage_rates.time_arm(scenario, registry, full_model(), scenario.arms[arm], 12)
    expected = S.summarize_task(scenario, registry, S.ChunkTask(arm, 0, 12))
    assert set(seconds) == set(stage_rates.STAGES)
    assert all(v >= 0 for v in seconds.values()) and seconds["circuit"] > 0
    for f in fields(summary):
        _same(getattr(summary, f.name), getattr(expected, f.name), f.name)
