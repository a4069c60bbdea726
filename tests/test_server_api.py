"""`ecsim serve`'s JSON API: real small runs, limits, one-line errors, no path from user input,
concurrent runs that do not mix, crashed and hung runs that fail alone, and conformance to its own
OpenAPI schema (schemathesis, a bounded number of examples per operation)."""

import inspect
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

from ecsim.circuit.phenotypes import PHENOTYPES
from ecsim.errors import InputError
from ecsim.server import DEFAULT_HOST, check_limits, create_app, is_loopback, serve
from ecsim.server.form import build_scenario
from ecsim.server.models import request_model
from ecsim.server.worker import FAULT_ENV

MAX_PATIENTS = 60
RUN_TIMEOUT_S = 120

SCHEMA_DIR = tempfile.mkdtemp(prefix="ecsim-schema-")
# A small server for generated requests: runs of at most 10 patients, one at a time, no report. Made at import
# because schemathesis reads the schema while collecting (its fixture loader fails on pytest 9).
API_APP = create_app(Path(SCHEMA_DIR), max_patients=10, max_jobs=1, allowed_hosts=None, report=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", API_APP)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def client(data_dir):
    app = create_app(data_dir, max_patients=MAX_PATIENTS, max_jobs=2, report=False)   # report: test_web_page
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def wait_for(client, run_id: str) -> dict:
    """Poll a run until it is done or failed; progress never goes back."""
    deadline, last = time.monotonic() + RUN_TIMEOUT_S, 0.0
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}").json()
        assert run["progress"] >= last
        last = run["progress"]
        if run["status"] in ("done", "failed"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {RUN_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def two_runs(client):
    """Two different runs at once (the server's max_jobs), and a third refused while they run."""
    cervical = {"patients": 30, "weeks": 2, "product": "full_spectrum", "dose": 25, "botulinum_reference": True}
    bleph = {"patients": 20, "weeks": 1, "phenotype": "blepharospasm", "product": "isolate", "dose": 5,
             "dose_unit": "mg/kg", "doses_per_day": 3, "comedication": "clobazam", "clobazam_mg_per_day": 20}
    first, second = client.post("/api/runs", json=cervical), client.post("/api/runs", json=bleph)
    third = client.post("/api/runs", json=cervical)
    done = [wait_for(client, r.json()["id"]) for r in (first, second)]
    return {"responses": (first, second, third), "runs": done, "requests": (cervical, bleph)}


def test_health_and_choices(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["max_patients"] == MAX_PATIENTS
    phenotypes = {p["name"]: p for p in client.get("/api/phenotypes").json()}
    assert set(phenotypes) == set(PHENOTYPES) - {"normal"}
    assert phenotypes["cervical"]["primary_scale"] == "twstrs_total" and phenotypes["cervical"]["botulinum_reference"]
    assert phenotypes["blepharospasm"]["primary_scale"] == "jrs" and not phenotypes["tor1a"]["botulinum_reference"]
    assert all(p["label"] and p["cause"] for p in phenotypes.values())
    options = client.get("/api/options").json()
    assert options["max_patients"] == MAX_PATIENTS and options["defaults"]["phenotype"] == "cervical"
    assert {c["value"] for c in options["routes"]} == {"oral", "oromucosal", "inhaled"}


def test_runs_complete_with_their_own_scenario(two_runs, data_dir):
    first, second, third = two_runs["responses"]
    assert first.status_code == second.status_code == 202
    assert first.headers["location"] == f"/api/runs/{first.json()['id']}"
    assert third.status_code == 429 and third.headers["retry-after"]
    assert third.json()["detail"].startswith("busy: 2 runs are in progress")
    for run, req in zip(two_runs["runs"], two_runs["requests"]):
        assert run["status"] == "done" and run["progress"] == 1 and run["error"] is None, run["error"]
        manifest = json.loads((data_dir / "runs" / run["id"] / "manifest.json").read_text())
        scenario = manifest["scenario"]
        assert scenario["population"]["n"] == req["patients"] and scenario["duration_days"] == 7 * req["weeks"]
        assert scenario["population"]["phenotype"] == req.get("phenotype", "cervical")
        assert run["summary"]["trial"]["primary_day"] == 7 * req["weeks"]
        assert {a["patients"] for a in run["summary"]["arms"]} == {req["patients"]}


def test_form_becomes_the_scenario(two_runs, data_dir):
    cervical, bleph = two_runs["runs"]
    trial = cervical["summary"]["trial"]
    assert trial["primary_scale"] == "twstrs_total" and trial["control_arm"] == "placebo"
    assert set(trial["arms"]) == {"placebo", "full_spectrum_25mg_x2_oral", "botulinum_dysport_500u"}
    for arm in ("full_spectrum_25mg_x2_oral", "botulinum_dysport_500u"):
        lo, hi = trial["arms"][arm]["difference_vs_control"]["ci95"]
        assert lo < trial["arms"][arm]["difference_vs_control"]["mean"] < hi
    arms = json.loads((data_dir / "runs" / bleph["id"] / "manifest.json").read_text())["scenario"]["arms"]
    cbd = arms[1]
    assert bleph["summary"]["trial"]["primary_scale"] == "jrs" and len(arms) == 2
    assert cbd["product"] == "isolate" and cbd["cbd"][0]["dose"] == {"mg": 0.0, "mg_per_kg": 5.0}
    assert cbd["cbd"][0]["times_h"] == [8, 14, 20]
    assert cbd["comedication"][0]["steps"][0]["dose"]["mg"] == 10.0   # 20 mg/day as two doses


def test_run_files_and_report(client, two_runs, data_dir):
    run = two_runs["runs"][0]
    assert {"summary.json", "manifest.json", "pk.png"} <= set(run["files"])
    png = client.get(f"/api/runs/{run['id']}/files/pk.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    fallback = client.get(run["report_url"])   # this server's runs write no report.html (report=False)
    assert fallback.status_code == 200 and 'src="files/pk.png"' in fallback.text
    (data_dir / "runs" / run["id"] / "report.html").write_text("<p>the run's report</p>")   # as run_job writes
    report = client.get(run["report_url"], follow_redirects=False)
    assert report.status_code == 307 and report.headers["location"] == f"/api/runs/{run['id']}/files/report.html"
    page = client.get(report.headers["location"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == "<p>the run's report</p>" and "default-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("body, field", [
    ({"dose": -5}, "dose"),
    ({"dose": 60, "dose_unit": "mg/kg"}, "dose"),
    ({"dose": "lots"}, "dose"),
    ({"phenotype": "normal"}, "phenotype"),
    ({"phenotype": "../../etc/passwd"}, "phenotype"),
    ({"patients": MAX_PATIENTS + 1}, "patients"),
    ({"weeks": 13}, "weeks"),
    ({"route": "intravenous"}, "route"),
    ({"phenotype": "tor1a", "botulinum_reference": True}, "botulinum_reference"),
    ({"out": "/tmp/elsewhere"}, "out"),
])
def test_bad_input_is_one_line_naming_the_field(client, body, field):
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422
    doc = r.json()
    assert doc["field"] == field
    assert doc["detail"].startswith(f"{field}: got ") and "; allowed: " in doc["detail"]
    assert "\n" not in doc["detail"] and "Traceback" not in r.text


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_body_that_is_not_an_object(client, raw):
    r = client.post("/api/runs", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"


def test_cross_site_form_posts_cannot_start_runs(client):
    """A page elsewhere can send a 'simple' POST without asking (text/plain or a form), never JSON."""
    for kind in ("text/plain", "application/x-www-form-urlencoded"):
        r = client.post("/api/runs", content=b'{"patients": 10}', headers={"content-type": kind})
        assert r.status_code == 422 and r.json()["field"] == "body"
    assert "access-control-allow-origin" not in client.options("/api/runs").headers


def test_huge_bodies_are_refused(client):
    big = json.dumps({"phenotype": "cervical", "pad": "x" * 100_000})
    declared = client.post("/api/runs", content=big, headers={"content-type": "application/json"})
    chunks = iter([b'{"pad": "' + b"x" * 40_000] * 3)   # no Content-Length: counted as it arrives
    streamed = client.post("/api/runs", content=chunks, headers={"content-type": "application/json"})
    for r in (declared, streamed):
        assert r.status_code == 413 and r.json() == {
            "detail": "body: got 'too large'; allowed: at most 65536 bytes", "field": "body"}


def test_unknown_run_is_404(client):
    for path in ("/api/runs/0123456789abcdef0123456789abcdef", "/api/runs/nope/report",
                 "/api/runs/nope/files/summary.json"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["field"] == "run_id"
        assert r.json()["detail"].startswith("run_id: got ")


def test_files_cannot_leave_the_run_folder(client, two_runs, data_dir):
    (data_dir / "secret.txt").write_text("not for the web")
    run_id = two_runs["runs"][0]["id"]
    for name in ("..%2F..%2Fsecret.txt", "%2E%2E%2F%2E%2E%2Fsecret.txt", "%2E%2E", "..%5C..%5Csecret.txt",
                 "secret.txt", "%2E", "%2Fetc%2Fpasswd", "manifest.json%00.png"):
        r = client.get(f"/api/runs/{run_id}/files/{name}")
        assert r.status_code == 404, name
        assert "not for the web" not in r.text and "root:" not in r.text


def test_only_local_host_names_by_default(client):
    assert client.get("/api/health", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/health", headers={"host": "localhost:8765"}).status_code == 200


def test_page_and_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and "not medical advice" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http" not in client.get("/static/app.js").text.replace("HTTP ", "")   # nothing loaded from elsewhere
    assert client.get("/docs").status_code == 404   # Swagger UI would load from a CDN


# --- conformance to the OpenAPI schema ---------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _stop_schema_server():
    yield
    API_APP.state.jobs.shutdown()
    shutil.rmtree(SCHEMA_DIR, ignore_errors=True)


CONFORMANCE = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
               checks.response_schema_conformance, checks.negative_data_rejection]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_openapi_schema(case):
    case.call_and_validate(checks=CONFORMANCE)


def test_openapi_describes_the_form():
    with TestClient(API_APP) as c:
        doc = c.get("/openapi.json").json()
    body = doc["components"]["schemas"]["RunRequest"]["properties"]
    assert body["patients"]["maximum"] == 10 and body["weeks"]["maximum"] == 12
    assert "normal" not in body["phenotype"]["enum"]
    post = doc["paths"]["/api/runs"]["post"]["responses"]
    assert {"202", "413", "422", "429"} <= set(post)


def test_runs_of_earlier_sessions_are_cleared_at_start(tmp_path):
    """A folder left by an earlier server (finished or half-written) would never be evicted."""
    runs = tmp_path / "runs"
    (runs / "0123abcd").mkdir(parents=True)
    (runs / ".0123abcd.partial-77").mkdir()
    create_app(tmp_path, max_patients=10, max_jobs=1, report=False)
    assert list(runs.iterdir()) == []


# --- isolation: crashed, hung and concurrent runs (issue 8) --------------------------------------
# Faults are injected with the test-only ECSIM_TEST_WORKER_FAULT variable, read only inside the run
# process (ecsim.server.worker); no request can set it. It must be set before the app's first run
# process is started, so these tests use servers of their own.

FAULT_SEEDS = {"exit": 101, "segv": 102, "kill": 103, "hang": 104}
FAULT_SPEC = ",".join(f"{kind}:{seed}" for kind, seed in FAULT_SEEDS.items())
DIFFERENT_RUNS = (   # different phenotypes, products, doses, schedules, patients, weeks and seeds
    {"phenotype": "cervical", "product": "full_spectrum", "dose": 10, "patients": 14, "weeks": 1, "seed": 11},
    {"phenotype": "cervical", "product": "full_spectrum", "dose": 400, "patients": 11, "weeks": 1, "seed": 12},
    {"phenotype": "blepharospasm", "product": "pharmaceutical", "dose": 5, "dose_unit": "mg/kg",
     "doses_per_day": 1, "patients": 10, "weeks": 2, "seed": 13},
)


@pytest.fixture(scope="module")
def fault_env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FAULT_ENV, FAULT_SPEC)
        yield


@pytest.fixture(scope="module")
def mixed_runs(fault_env, tmp_path_factory):
    """Three different good runs and two that crash (a segmentation fault; SIGKILL, as the
    out-of-memory killer sends) all submitted at once; then one more good run."""
    data_dir = tmp_path_factory.mktemp("mixed")
    app = create_app(data_dir, max_patients=MAX_PATIENTS, max_jobs=5, report=False)
    crashes = {kind: {"patients": 10, "weeks": 1, "seed": FAULT_SEEDS[kind]} for kind in ("segv", "kill")}
    with TestClient(app, base_url="http://127.0.0.1") as c:
        good = [c.post("/api/runs", json=req) for req in DIFFERENT_RUNS]
        bad = {kind: c.post("/api/runs", json=req) for kind, req in crashes.items()}
        assert all(r.status_code == 202 for r in good + list(bad.values()))
        good_runs = [wait_for(c, r.json()["id"]) for r in good]
        bad_runs = {kind: wait_for(c, r.json()["id"]) for kind, r in bad.items()}
        after = wait_for(c, c.post("/api/runs", json={"patients": 10, "weeks": 1, "seed": 14}).json()["id"])
        yield {"good": good_runs, "bad": bad_runs, "after": after, "data_dir": data_dir,
               "health": c.get("/api/health").json()}


def test_a_crashed_run_fails_alone(mixed_runs):
    bad = mixed_runs["bad"]
    assert bad["segv"]["error"] == "the run's process crashed (SIGSEGV)"
    assert bad["kill"]["error"] == "the run's process was killed (SIGKILL; out of memory?); try fewer patients"
    runs = mixed_runs["data_dir"] / "runs"
    for run in bad.values():
        assert run["status"] == "failed" and run["files"] == [] and run["summary"] is None
        assert not any(p.name.startswith((run["id"], f".{run['id']}")) for p in runs.iterdir())
    for run in mixed_runs["good"] + [mixed_runs["after"]]:   # those in progress, and the next one
        assert run["status"] == "done" and run["error"] is None, run["error"]
    assert mixed_runs["health"]["active_runs"] == 0


def test_concurrent_runs_do_not_mix(mixed_runs):
    """Each result is the one its own request asked for: scenario, seed, population, arms, numbers."""
    RunRequest = request_model(MAX_PATIENTS)
    runs = mixed_runs["data_dir"] / "runs"
    cbd = []
    for req, run in zip(DIFFERENT_RUNS, mixed_runs["good"]):
        expected = build_scenario(RunRequest(**req)).model_dump(mode="json")
        manifest = json.loads((runs / run["id"] / "manifest.json").read_text())
        assert manifest["scenario"] == expected and manifest["seed"] == req["seed"]
        summary = run["summary"]
        assert summary["phenotype"] == req["phenotype"]
        assert [a["arm"] for a in summary["arms"]] == [a["name"] for a in expected["arms"]]
        assert {a["patients"] for a in summary["arms"]} == {req["patients"]}
        assert summary["trial"]["primary_day"] == 7 * req["weeks"]
        cbd.append(summary["arms"][1]["cbd_plasma_cavg_ng_per_ml"]["geometric_mean"])
    low, high = cbd[0], cbd[1]            # same product and phenotype, 10 vs 400 mg per dose
    assert 10 < high / low < 160, cbd     # roughly dose-proportional (bioavailability rises with dose)


def test_a_run_past_its_time_limit_is_stopped(fault_env, tmp_path):
    """A run that hangs is killed at the limit; the next run's process exits early (os._exit) and
    is reported as such; the server goes on."""
    app = create_app(tmp_path, max_patients=10, max_jobs=1, report=False, max_run_seconds=5)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").json()["max_run_seconds"] == 5
        run_id = c.post("/api/runs", json={"patients": 10, "weeks": 1, "seed": FAULT_SEEDS["hang"]}).json()["id"]
        pid = None
        while pid is None and app.state.jobs.get(run_id).status in ("queued", "running"):
            pid = app.state.jobs.get(run_id).pid
            time.sleep(0.05)
        run = wait_for(c, run_id)
        assert run["status"] == "failed" and run["error"] == "the run exceeded the 5 s limit and was stopped", run
        assert pid is not None and not _alive(pid)
        assert list((tmp_path / "runs").iterdir()) == []
        assert c.get("/api/health").json()["active_runs"] == 0
        exits = c.post("/api/runs", json={"patients": 10, "weeks": 1, "seed": FAULT_SEEDS["exit"]})
        assert exits.status_code == 202                                   # the slot is free again
        run = wait_for(c, exits.json()["id"])
        assert run["error"] == "the run's process ended without a result (exit status 3)", run


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, on Linux, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.is_file() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


# --- no request field reaches the filesystem as a path -------------------------------------------

PATH_VALUES = ("../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "runs/../../x", "%2e%2e%2fetc",
               "~/.ssh/id_rsa", "file:///etc/passwd", "cervical/../../x", "a\x00b")


def _string_fields() -> list[str]:
    props = request_model(MAX_PATIENTS).model_json_schema()["properties"]
    return sorted(name for name, p in props.items() if p.get("type") == "string" or "enum" in p or "$ref" in p)


def test_every_string_field_is_a_fixed_choice():
    """Every string the request carries is one of a closed set of choices: none can be a path."""
    assert _string_fields() == ["comedication", "dose_unit", "food", "phenotype", "product", "route"]


@pytest.mark.parametrize("field", _string_fields())
def test_path_like_values_are_refused_in_every_string_field(client, field):
    for value in PATH_VALUES:
        r = client.post("/api/runs", json={field: value})
        assert r.status_code == 422 and r.json()["field"] == field, (field, value, r.text)


@pytest.mark.parametrize("field", ["name", "out", "output", "data_dir", "arms", "scenario", "parameters",
                                   "description", "run_id", "folder"])
def test_fields_that_could_name_paths_do_not_exist(client, field):
    r = client.post("/api/runs", json={field: "../../etc/passwd"})
    assert r.status_code == 422 and r.json()["field"] == field


def test_written_files_stay_in_the_run_folders(client, two_runs, data_dir):
    """Everything the runs wrote is a plain file in runs/<server-made id>/; the scenario's names
    are fixed or made from the validated choices."""
    ids = {run["id"] for run in two_runs["runs"]}
    for path in data_dir.rglob("*"):
        rel = path.relative_to(data_dir).parts
        if rel in (("runs",), ("secret.txt",), (".ecsim-serve.lock",)):   # secret.txt: planted by the traversal
            continue                                                       # test; the lock: the server's own
        assert rel[0] == "runs" and rel[1] in ids and len(rel) <= 3, rel
        assert len(rel) == 2 or path.is_file()
    for run in two_runs["runs"]:
        scenario = json.loads((data_dir / "runs" / run["id"] / "manifest.json").read_text())["scenario"]
        assert scenario["name"] == "web-form"
        assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", a["name"]) and ".." not in a["name"] for a in scenario["arms"])


def test_server_limits_are_checked():
    check_limits(8765, 2000, 2, 600)
    for args, flag in (((0, 2000, 2), "--port"), ((8765, 5, 2), "--max-patients"), ((8765, 2000, 17), "--max-jobs"),
                       ((8765, 2000, 2, 0), "--max-run-seconds"), ((8765, 2000, 2, float("nan")), "--max-run-seconds")):
        with pytest.raises(InputError) as err:
            check_limits(*args)
        assert err.value.field == flag


def test_localhost_by_default():
    from ecsim import cli
    assert inspect.signature(serve).parameters["host"].default == DEFAULT_HOST == "127.0.0.1"
    assert inspect.signature(cli.serve).parameters["host"].default.default == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


def test_two_servers_cannot_share_a_data_folder(tmp_path):
    """A second server process on the same --data-dir would clear the first one's runs: refused."""
    import subprocess
    import sys
    first = create_app(tmp_path, max_patients=10, max_jobs=1, report=False)
    second = subprocess.run([sys.executable, "-m", "ecsim", "serve", "--data-dir", str(tmp_path), "--port", "1"],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    err = second.stderr.strip()
    assert err.startswith("error: --data-dir: got '/") and "\n" not in err
    assert err.endswith("allowed: a folder no other running ecsim serve uses")
    first.state.jobs.shutdown()
    free = subprocess.run([sys.executable, "-c", f"from ecsim.server.app import create_app; "
                           f"create_app({str(tmp_path)!r}, 10, 1, report=False).state.jobs.shutdown()"],
                          capture_output=True, text=True, timeout=120)
    assert free.returncode == 0, free.stderr


def test_a_meal_reaches_oromucosal_doses_and_is_refused_with_inhaled():
    """The model changes oromucosal absorption with a meal (Stott 2013), so the form sends it and the
    scenario's description names it; with an inhaled dose a meal changes nothing and is refused."""
    from pydantic import ValidationError

    from ecsim.server.form import arm_label
    RunRequest = request_model(MAX_PATIENTS)
    spray = RunRequest(route="oromucosal", food="low_fat")
    assert arm_label(spray).endswith("oromucosal, low-fat")
    assert build_scenario(spray).arms[1].food.value == "low_fat"
    with pytest.raises(ValidationError, match="food: got 'high_fat'"):
        RunRequest(route="inhaled", food="high_fat")
