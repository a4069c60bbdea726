"""A bounded load test of `ecsim serve` on loopback: concurrent clients mix page loads, schema
fetches, status polls, bad requests and a few small runs for a fixed time; every answer is checked
against the status code that request must get.

    .venv/bin/python benchmarks/server_load.py                       # starts its own server
    .venv/bin/python benchmarks/server_load.py --duration 30 --clients 8 --runs 3
    .venv/bin/python benchmarks/server_load.py --url http://127.0.0.1:8765   # a server already running

(A server given with --url must be a loopback one: a request with a foreign Host header is
expected to get 400.)

Prints one JSON document: requests served, rate, latency percentiles (ms), status codes, errors
(a 5xx, a connection error or timeout, or any status other than the one expected) with a few
examples, and the runs (accepted, done, failed, refused with 429 while busy). Exit status 1 if
there was any error or a run did not finish. `tests/test_server_load.py` runs a short version.

Its own server is `ecsim.server.serve` (what `ecsim serve` calls) in a subprocess on a free
127.0.0.1 port with a temporary data folder, runs without the report (``report=False``) so that
a run costs seconds, not tens of seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

RUN_REQUEST = {"patients": 10, "weeks": 1, "product": "isolate", "dose": 50}
BIG_BODY = json.dumps({"phenotype": "cervical", "pad": "x" * 100_000})
# (kind, weight): what the clients do, chosen at random
MIX = (("page", 4), ("static", 2), ("health", 3), ("options", 2), ("phenotypes", 2), ("schema", 2),
       ("poll", 6), ("run_file", 2), ("bad_json", 1), ("bad_value", 1), ("path_value", 1), ("unknown_field", 1),
       ("too_large", 1), ("unknown_run", 1), ("traversal", 1), ("bad_host", 1))


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen | None = None
    log: Path | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def start_server(data_dir: Path, *, max_jobs: int = 2, max_patients: int = 50, max_run_seconds: float = 300,
                 report: bool = False, env: dict | None = None, start_timeout_s: float = 60):
    """`ecsim.server.serve` in a subprocess (its own process group, as a terminal would start it)
    on a free loopback port; yields a Server once /api/health answers, stops it afterwards."""
    port = free_port()
    code = (f"from ecsim.server import serve; serve(port={port}, data_dir={str(data_dir)!r}, "
            f"max_patients={max_patients}, max_jobs={max_jobs}, max_run_seconds={max_run_seconds}, "
            f"report={report})")
    log = Path(data_dir) / "server.log"
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", Path(data_dir), proc, log)
    try:
        _wait_until_up(server, start_timeout_s)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_until_up(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"the server exited ({server.process.returncode}): {server.log.read_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout_s:g} s")


@dataclass
class _State:
    deadline: float
    runs_wanted: int
    run_request: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)
    kinds: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    run_ids: list = field(default_factory=list)
    done_ids: list = field(default_factory=list)
    refused: int = 0
    next_submit: float = 0.0
    submit_every: float = 1.0


def _plan(kind: str, state: _State, rng: random.Random):
    """(method, path, keyword arguments, expected status codes) for one request of ``kind``."""
    with state.lock:
        run_id = rng.choice(state.run_ids) if state.run_ids else None
        done_id = rng.choice(state.done_ids) if state.done_ids else None
    unknown = uuid.uuid4().hex
    post = {"headers": {"content-type": "application/json"}}
    return {
        "page": ("GET", "/", {}, {200}),
        "static": ("GET", rng.choice(["/static/app.js", "/static/style.css"]), {}, {200}),
        "health": ("GET", "/api/health", {}, {200}),
        "options": ("GET", "/api/options", {}, {200}),
        "phenotypes": ("GET", "/api/phenotypes", {}, {200}),
        "schema": ("GET", "/openapi.json", {}, {200}),
        "poll": ("GET", f"/api/runs/{run_id or unknown}", {}, {200} if run_id else {404}),
        "run_file": ("GET", f"/api/runs/{done_id}/files/summary.json", {}, {200}) if done_id
        else ("GET", f"/api/runs/{unknown}/files/summary.json", {}, {404}),
        "bad_json": ("POST", "/api/runs", {"content": b"{not json", **post}, {422}),
        "bad_value": ("POST", "/api/runs", {"json": {"dose": -5}}, {422}),
        "path_value": ("POST", "/api/runs", {"json": {rng.choice(["phenotype", "product", "route", "food"]):
                                                      "../../etc/passwd"}}, {422}),
        "unknown_field": ("POST", "/api/runs", {"json": {"out": "/tmp/elsewhere"}}, {422}),
        "too_large": ("POST", "/api/runs", {"content": BIG_BODY, **post}, {413}),
        "unknown_run": ("GET", f"/api/runs/{unknown}", {}, {404}),
        "traversal": ("GET", f"/api/runs/{done_id or unknown}/files/..%2F..%2F..%2Fetc%2Fpasswd", {}, {404}),
        "bad_host": ("GET", "/api/health", {"headers": {"host": "evil.example"}}, {400}),
        "submit": ("POST", "/api/runs", {"json": state.run_request}, {202, 429}),
    }[kind]


def _client(url: str, state: _State, seed: int) -> None:
    rng = random.Random(seed)
    kinds, weights = zip(*MIX)
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < state.deadline:
            kind = _next_kind(state, rng, kinds, weights)
            _request(client, state, kind, rng)


def _next_kind(state: _State, rng: random.Random, kinds, weights) -> str:
    """A submission when one is due (spread over the duration), otherwise a random request."""
    with state.lock:
        now = time.monotonic()
        if len(state.run_ids) < state.runs_wanted and now >= state.next_submit:
            state.next_submit = now + state.submit_every   # claimed: other clients wait for this one
            return "submit"
    return rng.choices(kinds, weights)[0]


def _request(client: httpx.Client, state: _State, kind: str, rng: random.Random) -> httpx.Response | None:
    method, path, kwargs, expected = _plan(kind, state, rng)
    started = time.perf_counter()
    try:
        r = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        with state.lock:
            state.errors.append(f"{kind} {method} {path}: {type(exc).__name__}: {exc}")
        return None
    elapsed = time.perf_counter() - started
    with state.lock:
        state.latencies.append(elapsed)
        state.statuses[r.status_code] = state.statuses.get(r.status_code, 0) + 1
        state.kinds[kind] = state.kinds.get(kind, 0) + 1
        if r.status_code not in expected or r.status_code >= 500:
            state.errors.append(f"{kind} {method} {path}: got {r.status_code}, expected {sorted(expected)}: "
                                f"{r.text[:200]}")
        elif kind == "submit" and r.status_code == 202:
            state.run_ids.append(r.json()["id"])
        elif kind == "submit":
            state.refused += 1
            state.next_submit = time.monotonic() + 1.0     # busy: try again in a second
        elif kind == "poll" and r.status_code == 200 and r.json()["status"] == "done":
            if r.json()["id"] not in state.done_ids:
                state.done_ids.append(r.json()["id"])
    return r


def run_load(url: str, duration_s: float = 25, clients: int = 8, runs: int = 3, seed: int = 1,
             run_timeout_s: float = 300, run_request: dict | None = None) -> dict:
    """Load the server at ``url`` for ``duration_s`` with ``clients`` threads submitting ``runs``
    runs along the way; then wait (at most ``run_timeout_s``) for every accepted run to end."""
    state = _State(deadline=time.monotonic() + duration_s, runs_wanted=runs, run_request=run_request or RUN_REQUEST)
    state.submit_every = duration_s / (runs + 1)
    state.next_submit = time.monotonic() + state.submit_every / 2
    started = time.monotonic()
    threads = [threading.Thread(target=_client, args=(url, state, seed * 1000 + i), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    runs_out = _wait_for_runs(url, state, run_timeout_s)
    lat = sorted(state.latencies)
    return {
        "url": url, "duration_s": round(elapsed, 2), "clients": clients,
        "requests": len(lat), "requests_per_s": round(len(lat) / elapsed, 1) if elapsed else None,
        "latency_ms": {name: round(1000 * _percentile(lat, q), 1) for name, q in
                       (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))} if lat else {},
        "by_kind": dict(sorted(state.kinds.items())),
        "status_codes": {str(k): v for k, v in sorted(state.statuses.items())},
        "errors": len(state.errors) + runs_out["failed"] + runs_out["unfinished"],
        "error_examples": state.errors[:10] + runs_out["failures"][:10],
        "runs": {k: v for k, v in runs_out.items() if k != "failures"} | {"refused_busy": state.refused},
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
    }


def _wait_for_runs(url: str, state: _State, timeout_s: float) -> dict:
    """Poll every accepted run until it is done or failed."""
    pending, done, failures = set(state.run_ids), 0, []
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=30) as client:
        while pending and time.monotonic() < deadline:
            for run_id in sorted(pending):
                run = client.get(f"/api/runs/{run_id}").json()
                if run["status"] == "done":
                    done += 1
                    pending.discard(run_id)
                elif run["status"] == "failed":
                    failures.append(f"run {run_id} failed: {run['error']}")
                    pending.discard(run_id)
            time.sleep(0.5)
    return {"accepted": len(state.run_ids), "done": done, "failed": len(failures), "unfinished": len(pending),
            "failures": failures + [f"run {r} did not finish in {timeout_s:g} s" for r in sorted(pending)]}


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server; by default one is started on a free loopback port")
    p.add_argument("--duration", type=float, default=25, help="seconds of load (default 25)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--runs", type=int, default=3, help="small runs submitted during the load (default 3)")
    p.add_argument("--max-jobs", type=int, default=2, help="the started server's --max-jobs (default 2)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.url:
        result = run_load(a.url, a.duration, a.clients, a.runs, a.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="ecsim-load-") as tmp, \
                start_server(Path(tmp), max_jobs=a.max_jobs) as server:
            result = run_load(server.url, a.duration, a.clients, a.runs, a.seed)
    print(json.dumps(result, indent=1))
    return 1 if result["errors"] or result["runs"]["done"] < a.runs else 0


if __name__ == "__main__":
    sys.exit(main())
