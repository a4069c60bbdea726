"""Bounded memory at any number of patients (issue 6): per-patient results spilled to disk as chunks
finish come back memory-mapped with the same bits, and result tables written in pieces hold the
same rows, in the same order and with the same types, as tables built whole."""

from dataclasses import replace

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


def _summary(start: int, n: int, reason: str) -> simulation.ChunkSummary:
    """A made-up chunk of n patients: values that say which patient they belong to, and a text
    label whose width differs between chunks (as `titration_reason` does)."""
    ids = np.arange(start, start + n)
    return simulation.ChunkSummary(start, n, {}, {}, {"x": ids * 1.5, "flag": ids % 2 == 0},
                                   clinical={"score": np.stack([ids, -ids], axis=1).astype(np.float32)},
                                   labels={"reason": np.array([reason] * n)})


@pytest.mark.parametrize("max_open", [256, 3])
def test_each_chunk_is_one_file_and_chunks_join_in_patient_order_whatever_their_arrival(tmp_path, monkeypatch,
                                                                                         max_open):
    """Chunks arrive out of order (Dask, or a resumed run whose checkpoint has gaps): while the arm
    runs the store holds one file per chunk, with the chunk's bytes; when it finishes, one .npy
    per column in patient order, types widened across chunks, the chunk files gone. With at most 3
    files open, the 4 columns are joined in two passes over the chunk files."""
    monkeypatch.setattr(simulation, "MAX_OPEN", max_open)
    chunks = [(0, 4, "ok"), (4, 4, "too_high"), (8, 3, "")]
    store = tmp_path / "arm0"
    r = simulation.ArmResult("a", np.zeros(1), store=store)
    added = []
    for start, n, reason in reversed(chunks):
        s = _summary(start, n, reason)
        r.add_summary(s)
        added.append(f"{start}.bin")
        assert sorted(p.name for p in store.iterdir()) == sorted(added)
        size = sum(np.asarray(v).nbytes for group in ("exposure", "clinical", "labels")
                   for v in getattr(s, group).values())
        assert (store / f"{start}.bin").stat().st_size == size
    r.finish()
    ids = np.arange(11)
    assert np.array_equal(r.patients, ids)
    assert r.exposure["x"].dtype == np.float64 and np.array_equal(r.exposure["x"], ids * 1.5)
    assert r.exposure["flag"].dtype == bool and np.array_equal(r.exposure["flag"], ids % 2 == 0)
    assert r.clinical["score"].dtype == np.float32 and r.clinical["score"].shape == (11, 2)
    assert np.array_equal(r.clinical["score"][:, 1], -ids)
    assert r.labels["reason"].dtype == np.dtype("<U8")
    assert list(r.labels["reason"]) == ["ok"] * 4 + ["too_high"] * 4 + [""] * 3
    assert all(isinstance(v, np.memmap) for g in (r.exposure, r.clinical, r.labels) for v in g.values())
    left = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
    assert left == ["clinical/score.npy", "exposure/flag.npy", "exposure/x.npy", "labels/reason.npy"]


def test_a_chunk_whose_patients_are_all_faults_spills_and_joins(tmp_path):
    """A chunk with no sound patient (every one a fault, or a screen failure) has empty arrays: its
    spill file is empty and the joined columns hold the other chunks' rows, as in memory."""
    full = _summary(4, 4, "x")
    empty = replace(full, faults={i: "non_finite" for i in range(4, 8)},   # rows cut as summarize_chunk cuts them
                    **{g: {k: v[:0] for k, v in getattr(full, g).items()} for g in ("exposure", "clinical", "labels")})
    parts = [_summary(0, 4, "ok"), empty, _summary(8, 3, "")]
    in_memory, on_disk = simulation.ArmResult("a", np.zeros(1)), simulation.ArmResult("a", np.zeros(1), store=tmp_path)
    for s in parts:
        in_memory.add_summary(s)
        on_disk.add_summary(s)
    assert (tmp_path / "4.bin").stat().st_size == 0
    in_memory.finish()
    on_disk.finish()
    assert list(on_disk.patients) == [0, 1, 2, 3, 8, 9, 10]
    for group in ("exposure", "clinical", "labels"):
        for name, values in getattr(in_memory, group).items():
            assert np.array_equal(getattr(on_disk, group)[name], values), (group, name)


def test_a_run_that_crashed_resumes_from_its_checkpoint_to_the_same_bits(tmp_path, faulty, monkeypatch):
    """A run dies after 4 of its 6 chunks; one saved chunk in the middle is then lost as well, so the
    resumed run adds chunks out of patient order. Its store held one file per finished chunk; the
    resumed results equal an uninterrupted in-memory run's."""
    import ecsim.distributed as distributed
    from ecsim.checkpoint import Checkpoint, identity
    sc = mixed_trial()
    whole = Simulation(sc, chunk=5).run()
    real, calls = distributed.summarize_task, []

    class Killed(Exception):
        pass

    def dies_after_four(*args):
        if len(calls) == 4:
            raise Killed
        calls.append(args[-1])
        return real(*args)
    monkeypatch.setattr(distributed, "summarize_task", dies_after_four)
    sim = Simulation(sc, chunk=5)
    ident = identity(sc.model_dump(mode="json"), sim.registry.digest(), 5, {})
    out = tmp_path / "run"
    with pytest.raises(Killed), Checkpoint(out, ident, resume=False) as ck:
        sim.run(checkpoint=ck, store=ck.arrays)
    spilled = sorted(p.relative_to(ck.arrays).as_posix() for p in ck.arrays.rglob("*") if p.is_file())
    assert spilled == ["arm0/0.bin", "arm0/10.bin", "arm0/5.bin", "arm1/0.bin"]
    (ck.folder / "chunks" / "0-5-10.pkl").unlink()
    monkeypatch.setattr(distributed, "summarize_task", real)
    sim = Simulation(sc, chunk=5)
    with Checkpoint(out, ident, resume=True) as ck:
        resumed = sim.run(checkpoint=ck, store=ck.arrays)
        assert sim.execution["chunks_resumed"] == 3
        for a, b in zip(whole, resumed):
            assert a.faults == b.faults and np.array_equal(a.patients, b.patients)
            for group in ("exposure", "clinical", "labels"):
                mine, theirs = getattr(a, group), getattr(b, group)
                assert list(mine) == list(theirs) and mine, group
                for name in mine:
                    assert theirs[name].dtype == mine[name].dtype and np.array_equal(theirs[name], mine[name]), name
            assert all(np.array_equal(a.mean[k], b.mean[k]) for k in a.mean)
        assert not list(ck.arrays.rglob("*.bin"))
