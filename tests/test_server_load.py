"""`ecsim serve` as a real server (uvicorn in a subprocess on a free 127.0.0.1 port): a short load
test with benchmarks/server_load.py (concurrent clients; pages, schema, polls, bad requests and
small runs; no 5xx, no connection error, every bad request its 4xx, every run done), then Ctrl-C
while runs are in progress (the server stops promptly, its run processes with it, and no
unfinished run folder is left). Linux only (reads /proc)."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from ecsim.server.worker import FAULT_ENV

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc")

DRIVER = Path(__file__).resolve().parents[1] / "benchmarks" / "server_load.py"
LOAD_SECONDS, CLIENTS, RUNS = 10, 6, 2
HANG_SEED = 104            # the test-only fault hook: this run's process hangs once it has started
STOP_TIMEOUT_S = 30        # far above what a prompt stop takes; the old server never stopped here


def _driver():
    spec = importlib.util.spec_from_file_location("server_load", DRIVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module       # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


load = _driver()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with load.start_server(tmp_path_factory.mktemp("load"), max_jobs=2, max_patients=200,
                           env={FAULT_ENV: f"hang:{HANG_SEED}"}) as s:
        yield s


@pytest.fixture(scope="module")
def result(server):
    return load.run_load(server.url, duration_s=LOAD_SECONDS, clients=CLIENTS, runs=RUNS, run_timeout_s=240)


def test_it_keeps_answering_under_load(result, server):
    print(json.dumps(result))
    assert result["errors"] == 0, result["error_examples"]
    assert result["requests"] > 0 and not any(code.startswith("5") for code in result["status_codes"])
    assert result["runs"]["accepted"] == result["runs"]["done"] == RUNS
    assert set(result["by_kind"]) == {kind for kind, _ in load.MIX} | {"submit"}   # every bad request was tried
    assert "Traceback" not in server.log.read_text()


def test_it_listens_on_loopback_only(server):
    port = int(server.url.rsplit(":", 1)[1])
    listening = [line.split()[1] for path in ("/proc/net/tcp", "/proc/net/tcp6") if Path(path).is_file()
                 for line in Path(path).read_text().splitlines()[1:]
                 if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port]
    assert listening == [f"0100007F:{port:04X}"]   # 127.0.0.1, not 0.0.0.0 or ::


def test_ctrl_c_stops_runs_promptly(result, server):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while one run hangs and
    another simulates: the server exits, its run processes are gone, nothing unfinished is left."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        hang = c.post("/api/runs", json={"patients": 10, "weeks": 1, "seed": HANG_SEED}).json()["id"]
        busy = c.post("/api/runs", json={"patients": 50, "weeks": 12, "botulinum_reference": True}).json()["id"]
        deadline = time.monotonic() + 120          # both started: the hanging one cannot have finished
        while time.monotonic() < deadline and "queued" in {c.get(f"/api/runs/{i}").json()["status"]
                                                           for i in (hang, busy)}:
            time.sleep(0.2)
        assert c.get(f"/api/runs/{hang}").json()["status"] == "running"
        children = _descendants(server.process.pid)
        assert len(children) >= 2
    os.killpg(server.process.pid, signal.SIGINT)
    try:
        server.process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not stop within {STOP_TIMEOUT_S} s of Ctrl-C")
    leftover = _still_alive(children, within_s=5.0)   # a child may finish exiting just after the server
    assert not leftover, [_cmdline(pid) for pid in leftover]
    log = server.log.read_text()
    assert "ecsim: stopped" in log and "Traceback" not in log
    runs = server.data_dir / "runs"
    assert not [p.name for p in runs.iterdir() if p.name.startswith(".") or p.name in (hang, busy)]
    assert all((p / "manifest.json").is_file() for p in runs.iterdir())   # what is left is complete


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _still_alive(pids: list[int], within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return f"{pid} (gone)"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
