"""Bounded memory at any number of patients (issue 6): per-patient results spilled to disk as chunks
finish come back memory-mapped with the same bits, and result tables written in pieces hold the
same rows, in the same order and with the same types, as tables built whole."""

import numpy as np
import pandas as pd
import pytest

import ecsim.simulation as simulation
from ecsim.clinical_summary import clinical_frames
from ecsim.outputs import exposure_frames, write_parquet
from ecsim.scenario import Scenario
from ecsim.simulation import Simulation

BAD = {0: (0, 5), 1: (5, 6)}   # arm -> patients whose parameters are corrupted (numerical faults)


def mixed_trial(n: int = 12, crossover: bool = False) -> Scenario:
    """Two arms, a phenotype mix (text labels); as a crossover, a `randomised` yes/no label too."""
    trial = {"placebo_response": True, "control_arm": "placebo", "primary_scale": "bfmdrs_movement"}
    if crossover:
        trial |= {"crossover": {"period_days": 7, "washout_days": 0}}
    else:
        trial["primary_day"] = 14
    return Scenario.model_validate({
        "name": "streaming", "duration_days": 14, "output_step_h": 4.0, "visit_interval_days": 7,
        "population": {"n": n, "seed": 3, "phenotype_mix": {"tor1a": 1, "cervical": 1}},
        "trial": trial,
        "arms": [{"name": "placebo"},
                 {"name": "epidiolex", "product": "pharmaceutical", "food": "low_fat",
                  "cbd": [{"dose": "5 mg/kg", "times_h": [8, 20]}]}]})


@pytest.fixture
def faulty(monkeypatch):
    """Patients of `BAD` get a non-finite parameter: they become faults, with rows but no values."""
    real = simulation.patient_inputs

    def patched(scenario, arm, start, stop, registry, overrides=None):
        p, doses = real(scenario, arm, start, stop, registry, overrides)
        index = [a.name for a in scenario.arms].index(arm.name)
        p["cbd_cl"] = np.array(p["cbd_cl"], dtype=float)
        for bad in BAD[index % 2]:
            if start <= bad < stop:
                p["cbd_cl"][bad - start] = np.nan
        return p, doses
    monkeypatch.setattr(simulation, "patient_inputs", patched)


@pytest.mark.parametrize("crossover", [False, True])
def test_spilled_results_are_the_same_bits_and_memory_mapped(tmp_path, faulty, crossover):
    sc = mixed_trial(crossover=crossover)
    whole = Simulation(sc, chunk=5).run()
    spilled = Simulation(sc, chunk=5).run(store=tmp_path / "arrays")
    assert [sorted(r.faults) for r in whole] == [list(BAD[0]), list(BAD[1])]
    for a, b in zip(whole, spilled):
        assert a.faults == b.faults and a.n == b.n and np.array_equal(a.patients, b.patients)
        for group in ("exposure", "clinical", "labels"):
            mine, theirs = getattr(a, group), getattr(b, group)
            assert list(mine) == list(theirs) and mine, group
            for name in mine:
                assert isinstance(theirs[name], np.memmap), (group, name)
                assert theirs[name].dtype == mine[name].dtype and np.array_equal(theirs[name], mine[name]), name
        assert all(np.array_equal(a.mean[k], b.mean[k]) for k in a.mean)
    # only the joined arrays stay on disk; the per-chunk files went as they were copied
    left = sorted(p.relative_to(tmp_path / "arrays").parts[1] for p in (tmp_path / "arrays").rglob("*.npy"))
    assert set(left) == {"exposure", "clinical", "labels"}


@pytest.mark.parametrize("crossover", [False, True])
def test_tables_written_in_pieces_equal_tables_built_whole(tmp_path, faulty, crossover):
    """Pieces of 1 patient (the first piece holds only a faulted patient, so its labels are all
    empty), 3 and 5 patients, against one piece; and the Parquet file read back."""
    sc = mixed_trial(crossover=crossover)
    results = Simulation(sc, chunk=4).run(store=tmp_path / "arrays")
    seed = sc.population.seed if crossover else None
    tables = {"exposure": lambda k: exposure_frames(results, k), "clinical": lambda k: clinical_frames(results, seed, k)}
    for name, frames in tables.items():
        whole = pd.concat(list(frames(1 << 15)), ignore_index=True)
        assert len(list(frames(1 << 15))) == len(results)    # one piece per arm
        assert whole["fault"].notna().sum() == 4 * (1 if name == "exposure" else 3)
        if crossover and name == "clinical":
            assert whole["randomised"].notna().sum() == whole["fault"].isna().sum()
        for size in (1, 3, 5):
            pd.testing.assert_frame_equal(pd.concat(list(frames(size)), ignore_index=True), whole)
            path = tmp_path / f"{name}-{size}.parquet"
            assert write_parquet(frames(size), path)
            whole.to_parquet(tmp_path / "whole.parquet", index=False)
            pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(tmp_path / "whole.parquet"))
    assert not write_parquet(iter([]), tmp_path / "none.parquet") and not (tmp_path / "none.parquet").exists()


def test_rows_are_in_patient_order_with_faults_in_place(tmp_path, faulty):
    results = Simulation(mixed_trial(), chunk=4).run()
    table = pd.concat(list(clinical_frames(results, None, 3)), ignore_index=True)
    for arm, rows in table.groupby("arm", sort=False):
        assert list(rows["patient"]) == sorted(rows["patient"]) and rows["patient"].nunique() == 12
        faulted = rows[rows["fault"].notna()]
        index = [r.name for r in results].index(arm)
        assert set(faulted["patient"]) == set(BAD[index]) and faulted["phenotype"].isna().all()
        assert faulted["bfmdrs_movement"].isna().all() and rows[rows["fault"].isna()]["phenotype"].notna().all()
