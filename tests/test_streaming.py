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


def _old_table(results, columns_of, labels_of, days: bool) -> pd.DataFrame:
    """The tables as they were built before streaming (01db6d7): one frame of sound rows and one
    of faulted rows per arm, `pd.concat` (which unions the columns), then faulted rows moved to
    their patients' places. An independent construction to compare the streamed tables with."""
    frames = []
    for r in results:
        cols, labels = columns_of(r), labels_of(r)
        k = len(r.visit_days) if days else 1
        base = {"arm": r.name, "patient": np.repeat(r.patients, k)}
        if days:
            base["day"] = np.tile(r.visit_days, len(r.patients))
        base["fault"] = None
        base |= {name: np.repeat(v, k) for name, v in labels.items()}
        frames.append(pd.DataFrame(base | {name: np.asarray(v).reshape(-1) for name, v in cols.items()}))
        if r.faults:
            ids = np.array(sorted(r.faults))
            bad = {"arm": r.name, "patient": np.repeat(ids, k)}
            if days:
                bad["day"] = np.tile(r.visit_days, len(ids))
            bad["fault"] = np.repeat([r.faults[i] for i in ids], k)
            frames.append(pd.DataFrame(bad | {c: np.full(len(ids) * k, np.nan) for c in cols}))
    table = pd.concat(frames, ignore_index=True)
    order = {r.name: i for i, r in enumerate(results)}
    keys = ["arm", "patient", "day"] if days else ["arm", "patient"]
    return table.sort_values(keys, kind="stable", key=lambda c: c.map(order) if c.name == "arm" else c
                             ).reset_index(drop=True)


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """Values only: every empty cell as None, numbers as float, whatever the column types."""
    out = table.astype(object).where(table.notna(), None)
    return out.map(lambda x: float(x) if isinstance(x, (int, float, np.number)) and not isinstance(x, bool) else x)


@pytest.mark.parametrize("reverse", [False, True])
def test_tables_match_an_independent_construction_when_arms_have_different_labels(tmp_path, faulty, reverse):
    """A titrated arm has labels (level, reason) the placebo arm lacks; in either arm order the
    written tables hold every column, in the order `pd.concat` gives, with the same values."""
    from ecsim.scenario import load_scenario
    data = load_scenario("titration-cbd").model_dump(mode="json")
    data["population"]["n"] = 8
    data["arms"] = data["arms"][::-1] if reverse else data["arms"]
    sc = Scenario.model_validate(data)
    results = Simulation(sc, chunk=3).run(store=tmp_path / "arrays")
    assert any(r.faults for r in results)
    for name, frames, cols, labels, days in [
            ("exposure", exposure_frames(results, 2), lambda r: r.exposure, lambda r: {}, False),
            ("clinical", clinical_frames(results, None, 2), lambda r: r.clinical, lambda r: r.labels, True)]:
        path = tmp_path / f"{name}.parquet"
        assert write_parquet(frames, path)
        written, expected = pd.read_parquet(path), _old_table(results, cols, labels, days)
        assert list(written.columns) == list(expected.columns), name
        if name == "clinical":
            assert {"titration_level", "titration_reason"} <= set(written.columns)
        pd.testing.assert_frame_equal(_plain(written), _plain(expected), check_dtype=False)
