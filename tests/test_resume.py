"""Crash-safe runs: a run killed with SIGKILL midway leaves nothing that looks complete, and
`ecsim run --resume` finishes it with the same files as a run that never stopped."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ecsim.checkpoint import Checkpoint, checkpoint_folder
from ecsim.cli import main

SCENARIO = """
name: resume
duration_days: 14
output_step_h: 2.0
visit_interval_days: 7
population: {n: 60, seed: 7, phenotype: cervical}
trial: {placebo_response: true, control_arm: placebo, primary_day: 14}
arms:
  - name: placebo
  - name: epidiolex
    product: pharmaceutical
    food: low_fat
    cbd:
      - {dose: 5 mg/kg, times_h: [8, 20]}
"""
CHUNKS = 24   # 2 arms x 60 patients in chunks of 5: many more than the 3 the kill waits for, so the
              # run cannot finish between the poll that sees 3 and the kill, however fast chunks get
TABLES = ("exposure", "bands", "clinical")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The scenario file and an uninterrupted run of it (chunks of 5, no report)."""
    root = tmp_path_factory.mktemp("resume")
    (root / "s.yaml").write_text(SCENARIO)
    assert main(["run", str(root / "s.yaml"), "--out", str(root / "whole"), "--chunk", "5", "--no-report",
                 "--json"]) == 0
    return root


def assert_same_results(a: Path, b: Path) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet"))
    assert json.loads((a / "summary.json").read_text()) == json.loads((b / "summary.json").read_text())
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for key in ("scenario", "parameter_set_sha256_16", "seed", "ecsim_version", "files"):
        assert ma[key] == mb[key], key


def chunk_files(out: Path) -> list[Path]:
    return sorted((checkpoint_folder(out) / "chunks").glob("*.pkl"))


def test_a_run_killed_midway_resumes_to_the_same_files(work, capsys):
    out = work / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ecsim", "run", str(work / "s.yaml"), "--out", str(out),
                             "--chunk", "5", "--no-report", "--json"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(chunk_files(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = chunk_files(out)
    assert 3 <= len(saved) < CHUNKS, "the run was not killed midway"
    assert not out.exists(), "a killed run left a folder that looks like a result"
    assert not list(out.parent.glob(f"{out.name}*")), "a killed run left a folder named like a result"

    assert main(["run", "--resume", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"resumed: {len(saved)} of {CHUNKS} chunks came from the checkpoint" in printed
    assert_same_results(work / "whole", out)
    execution = json.loads((out / "manifest.json").read_text())["execution"]
    assert execution == {"workers": None, "scheduler": None, "chunk_patients": 5, "chunks": CHUNKS,
                         "chunks_resumed": len(saved)}
    assert not checkpoint_folder(out).exists(), "the checkpoint outlived the finished run"


def test_a_damaged_chunk_file_is_simulated_again(work, monkeypatch):
    out = work / "damaged"
    _interrupted_copy(work, out, 4, monkeypatch)
    victim, other, third = chunk_files(out)[1:4]
    victim.write_bytes(victim.read_bytes()[:100])     # what a disk fault might leave
    third.write_bytes(other.read_bytes())             # a readable chunk under another chunk's name
    assert main(["run", "--resume", str(out), "--json"]) == 0
    assert_same_results(work / "whole", out)


def test_resume_refuses_other_code_missing_checkpoints_and_extra_options(work, capsys, monkeypatch):
    out = work / "refused"
    _interrupted_copy(work, out, 2, monkeypatch)
    run_json = checkpoint_folder(out) / "run.json"
    doc = json.loads(run_json.read_text())
    for key, other in (("code_sha256_16", "0" * 16), ("parameter_set_sha256_16", "1" * 16),
                       ("ecsim_version", "0.0.0"), ("numerics", doc["numerics"] | {"numpy": "1.0"})):
        run_json.write_text(json.dumps(doc | {key: other}))
        assert main(["run", "--resume", str(out)]) == 2, key
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --resume: ") and f"{key} was " in err and "\n" not in err, err
    run_json.write_text(json.dumps(doc | {"code_sha256_16": "0" * 16}))
    cases = [(["run", "--resume", str(out)], "--resume: ", "code_sha256_16 was 0000000000000000"),
             (["run", "--resume", str(work / "nothing-here")], "--resume: ", "no checkpoint at"),
             (["run", str(work / "s.yaml"), "--resume", str(out)], "--resume: ", "drop SCENARIO"),
             (["run", "--resume", str(out), "--patients", "3"], "--resume: ", "drop --patients"),
             (["run", "--resume", str(out), "--out", str(work / "x")], "--out: ", "left out with --resume"),
             (["run", str(work / "s.yaml"), "--chunk", "0"], "--chunk: ", "from 1 to 100000")]
    for argv, field, allowed in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {field}") and allowed in err and "\n" not in err, err
    assert len(chunk_files(out)) == 2, "a refused resume touched the checkpoint"


def test_two_runs_cannot_write_to_one_folder(work, capsys):
    out = work / "busy"
    ident = json.loads(json.dumps({"format": 1, "scenario": {}, "options": {}, "chunk_patients": 5}))
    with Checkpoint(out, ident, resume=False):
        assert main(["run", str(work / "s.yaml"), "--out", str(out), "--no-report", "--json"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: --out: got '{out}'; allowed: a folder no other running ecsim run is writing to"
    assert not out.exists()


def test_a_fresh_run_discards_an_interrupted_one(work, monkeypatch):
    out = work / "fresh"
    _interrupted_copy(work, out, 3, monkeypatch)
    first, second = chunk_files(out)[:2]
    first.write_bytes(second.read_bytes())    # a readable chunk with the wrong patients: reusing it would show
    monkeypatch.undo()
    assert main(["run", str(work / "s.yaml"), "--out", str(out), "--chunk", "5", "--no-report", "--json"]) == 0
    assert_same_results(work / "whole", out)
    assert not checkpoint_folder(out).exists()


def test_a_fresh_run_says_it_discarded_an_interrupted_one(work, monkeypatch, capsys):
    out = work / "fresh-noted"
    _interrupted_copy(work, out, 3, monkeypatch)
    capsys.readouterr()
    assert main(["run", str(work / "s.yaml"), "--out", str(out), "--chunk", "5", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "the 3 finished chunks of an interrupted run" in err and f"--resume {out}" in err


def _interrupted_copy(work: Path, out: Path, keep: int, monkeypatch) -> None:
    """A checkpoint as a killed run leaves it: run.json and the first ``keep`` chunk files (made by
    running to completion with the checkpoint kept, then deleting the rest)."""
    monkeypatch.setattr(Checkpoint, "remove", lambda self: None)
    assert main(["run", str(work / "s.yaml"), "--out", str(out), "--chunk", "5", "--no-report", "--json"]) == 0
    monkeypatch.undo()
    shutil.rmtree(out)
    for path in chunk_files(out)[keep:]:
        path.unlink()


def test_the_code_digest_sees_an_edited_source_file(tmp_path):
    import ecsim
    from ecsim.checkpoint import code_digest
    copy = tmp_path / "ecsim"
    shutil.copytree(Path(ecsim.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digest(copy)
    assert before == code_digest()
    engine = copy / "engine.py"
    engine.write_text(engine.read_text() + "\n# an edit\n")
    assert code_digest(copy) != before


def test_out_never_replaces_a_folder_that_is_not_a_result(work, capsys):
    victim = work / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me")
    for out, allowed in ((victim, "an earlier ecsim result"), (f"{victim}/..", "a name of its own")):
        assert main(["run", str(work / "s.yaml"), "--out", str(out), "--no-report", "--json"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --out: ") and allowed in err, err
    assert (victim / "important.txt").read_text() == "keep me"
    assert not checkpoint_folder(victim).exists()
