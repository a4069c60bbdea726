"""Chunk summaries and Dask: the same bits whatever the chunking, the order in which chunks finish,
or the workers (DESIGN §2). A real local scheduler with two worker processes runs a small trial."""

import numpy as np
import pytest

from ecsim.distributed import ClusterError, DaskExecutor, Job
from ecsim.errors import InputError
from ecsim.exposure import MEANS, REPORTED, exposure_metrics
from ecsim.runjob import prepared_scenario
from ecsim.scenario import Scenario
from ecsim.simulation import SAMPLE, ArmResult, ChunkTask, Simulation, TreeSum, block_sums, simulate_chunk, \
    summarize_chunk


def small_trial(n: int, days: int = 28, arms: int = 5) -> Scenario:
    """The default trial, shorter: ``days`` days, the first ``arms`` arms, ``n`` patients each."""
    data = prepared_scenario(None, n, None).model_dump(mode="json")
    data |= {"duration_days": days, "arms": data["arms"][:arms]}
    data["trial"]["primary_day"] = min(data["trial"]["primary_day"], days)
    return Scenario.model_validate(data)


def assert_same_bits(a: list[ArmResult], b: list[ArmResult]) -> None:
    for x, y in zip(a, b, strict=True):
        assert (x.name, x.n, x.unconverged) == (y.name, y.n, y.unconverged)
        for field in ("exposure", "mean", "clinical"):
            dx, dy = getattr(x, field), getattr(y, field)
            assert dx.keys() == dy.keys(), field
            for k in dx:
                assert np.array_equal(dx[k], dy[k]), f"{x.name} {field} {k}"
        assert x.sample.keys() == y.sample.keys()
        for k in x.sample:
            assert np.array_equal(np.concatenate(x.sample[k]), np.concatenate(y.sample[k])), f"{x.name} sample {k}"
        assert np.array_equal(x.region_severity_sum, y.region_severity_sum)
        assert np.array_equal(x.visit_days, y.visit_days)


def test_tree_sums_do_not_depend_on_chunking_or_order():
    """Block sums over patients give the same bits for any tiling of [0, n), added in any order."""
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 3, (203, 4, 3))            # magnitudes over decades: order would show
    cuts = [[0, 203], [0, 7, 14, 21, 28, 203], list(range(0, 203, 13)) + [203], [0, 1, 64, 65, 130, 131, 203]]
    totals = []
    for c in cuts:
        blocks = [block_sums(x[a:b], a) for a, b in zip(c[:-1], c[1:])]
        for order in (blocks, blocks[::-1], [blocks[i] for i in rng.permutation(len(blocks))]):
            tree = TreeSum()
            for b in order:
                tree.add(b)
            totals.append(tree.total())
    assert all(np.array_equal(totals[0], t) for t in totals)
    np.testing.assert_allclose(totals[0], x.sum(axis=0), rtol=1e-13)


def _previous_add(r: ArmResult, chunk, start: int) -> None:
    """`ArmResult.add` as it was before the summary split (running mean, concatenation); the
    sample now keeps the reported outputs only."""
    n = len(chunk.values["body_weight_kg"])
    for name, traj in chunk.outputs.items():
        r.mean[name] = (r.mean.get(name, 0.0) * r.n + traj.sum(axis=0)) / (r.n + n)
        if start < SAMPLE and name in REPORTED:
            r.sample.setdefault(name, []).append(traj[: SAMPLE - start])
    for name, metric in exposure_metrics(chunk.times_h, chunk.outputs, chunk.values).items():
        r.exposure[name] = np.concatenate([r.exposure.get(name, np.empty(0)), metric])
    c = chunk.clinical
    r.visit_days = c.visit_days
    for name, values in (c.totals | c.symptoms).items():
        part = values.astype(np.float32)
        r.clinical[name] = part if name not in r.clinical else np.concatenate([r.clinical[name], part])
    r.unconverged += int((~c.converged).sum())
    s = c.regions["severity"].sum(axis=0)
    r.region_severity_sum = s if r.region_severity_sum is None else r.region_severity_sum + s
    r.n += n


@pytest.mark.parametrize("size", [7, 500])
def test_summary_split_matches_previous_add(size):
    """summarize_chunk + add_summary keep what `add` kept: per-patient arrays and the sample bit for
    bit; means and region severity to rounding (sums now follow a tree, not the chunks)."""
    sc = small_trial(12, days=14, arms=2)
    sim = Simulation(sc)
    for arm in sc.arms:
        old, new = ArmResult(arm.name, np.empty(0)), ArmResult(arm.name, np.empty(0))
        starts = list(range(0, 12, size))
        for start in starts[::-1]:      # summaries may arrive in any order
            chunk = simulate_chunk(sc, arm, start, min(12, start + size), registry=sim.registry, model=sim.model)
            new.add_summary(summarize_chunk(chunk, start))
        for start in starts:
            _previous_add(old, simulate_chunk(sc, arm, start, min(12, start + size), registry=sim.registry), start)
        new.finish()
        assert set(new.mean) == set(MEANS)     # means of the outputs the run reports, not of all of them
        for k in new.mean:
            np.testing.assert_allclose(new.mean[k], old.mean[k], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(new.region_severity_sum, old.region_severity_sum, rtol=1e-12)
        old.mean, old.region_severity_sum = new.mean, new.region_severity_sum
        assert_same_bits([new], [old])


def test_chunk_size_does_not_change_a_run():
    """84 days, so the CB1 tolerance and clobazam-free drug arms run long enough for the matrix
    exponentials' scaling to differ between patients (it is per matrix, not per batch)."""
    sc = small_trial(20, days=84, arms=3)
    assert_same_bits(Simulation(sc, chunk=500).run(), Simulation(sc, chunk=6).run())


@pytest.fixture(scope="module")
def cluster():
    """A real local Dask scheduler with two single-threaded worker processes."""
    distributed = pytest.importorskip("distributed")
    import logging
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                                  silence_logs=logging.ERROR) as c:
        yield c


@pytest.mark.slow
def test_dask_workers_give_the_same_bits(cluster):
    sc = small_trial(40)
    seen = []
    here = Simulation(sc, chunk=12).run()
    there = Simulation(sc, chunk=12).run(lambda arm, n: seen.append((arm, n)), scheduler=cluster.scheduler_address)
    assert_same_bits(here, there)
    assert sorted(seen) == sorted((arm.name, n) for arm in sc.arms for n in (12, 12, 12, 4))


def test_worker_failure_is_one_line(cluster):
    from distributed import Client
    sc = small_trial(4, days=7, arms=1)
    with Client(cluster) as client:
        executor = DaskExecutor(client, Job(sc, Simulation(sc).registry))
        with pytest.raises(ClusterError, match=r"^a Dask worker failed on arm placebo, patients 0-4: "
                                               r"ZeroDivisionError: division by zero$"):
            executor._result(client.submit(lambda: 1 / 0), ChunkTask(0, 0, 4))


def test_worker_versions_must_match(cluster, monkeypatch):
    import ecsim
    real = ecsim.__version__
    monkeypatch.setattr(ecsim, "__version__", "0.0.0")     # here only: workers import the real one
    sc = small_trial(4, days=7, arms=1)
    with pytest.raises(InputError, match=r"allowed: workers with ecsim 0\.0\.0, .*has ecsim " + real):
        Simulation(sc).run(scheduler=cluster.scheduler_address)


def test_unreachable_scheduler_is_one_line(monkeypatch, capsys, tmp_path):
    import ecsim.distributed as d
    from ecsim.cli import main
    monkeypatch.setattr(d, "CONNECT_TIMEOUT_S", 1)
    code = main(["run", "--out", str(tmp_path / "r"), "--patients", "2", "--json", "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("error: --scheduler: got 'tcp://127.0.0.1:9'; allowed: a reachable dask scheduler address\n")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "error: --workers: got 0; allowed: 1 to 64 local worker processes"),
    (["--workers", "65"], "error: --workers: got 65; allowed: 1 to 64 local worker processes"),
    (["--workers", "2", "--scheduler", "tcp://h:8786"],
     "error: --scheduler: got 'tcp://h:8786'; allowed: either --workers or --scheduler, not both"),
])
def test_cluster_options_are_checked(args, message, capsys, tmp_path):
    from ecsim.cli import main
    assert main(["run", "--out", str(tmp_path / "r"), *args]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_local_cluster_option():
    """``workers``: a local cluster of its own, the same bits as here."""
    sc = small_trial(6, days=7, arms=2)
    assert_same_bits(Simulation(sc, chunk=4).run(), Simulation(sc, chunk=4).run(workers=2))


@pytest.mark.slow
def test_parameter_uncertainty_on_dask_gives_the_same_numbers(cluster):
    """Parameter sets sent to two workers in chunks of 64 give the numbers computed here in one chunk."""
    from ecsim.distributed import ordered_mapper
    from ecsim.uncertainty import parameter_uncertainty
    sc = small_trial(1, days=14, arms=3)
    reg = Simulation(sc).registry
    here = parameter_uncertainty(sc, reg, draws=80, seed=3)
    with ordered_mapper(scheduler=cluster.scheduler_address) as mapper:
        there = parameter_uncertainty(sc, reg, draws=80, seed=3, mapper=mapper)
    assert here["intervals"] and here == there


def test_ordered_mapper_here_keeps_the_order():
    from ecsim.distributed import ordered_mapper
    with ordered_mapper() as mapper:
        assert mapper(abs, [-3, 2, -1]) == [3, 2, 1]
