"""The FastAPI application: the page, the JSON API and its limits.

No `from __future__ import annotations` here: FastAPI reads the route signatures at run time, and
the request model is made per server (its ``patients`` bound is the server's ``max_patients``).
"""

import logging
import mimetypes
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path
from typing import Sequence

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from ..circuit.phenotypes import PHENOTYPES
from ..clinical_summary import primary_scale
from ..errors import InputError
from ..products import Food, Product
from ..scenario import pydantic_to_input_error
from . import models as m
from .form import build_scenario
from .jobs import DEFAULT_MAX_RUN_SECONDS, Busy, Jobs, Run
from .middleware import ApiError, BodyLimit, SecurityHeaders

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY_BYTES = 64 * 1024
ERROR_CODES = (404, 409, 413, 422, 429)
ERRORS = {code: {"model": m.ErrorOut} for code in ERROR_CODES}
# Routes that answer HTML or files still answer errors in JSON; FastAPI would document them in the
# route's own media type, so these say application/json explicitly.
JSON_ERRORS = {code: {"description": "error (one line)", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/ErrorOut"}}}} for code in ERROR_CODES}
log = logging.getLogger("ecsim.server")

PRODUCT_LABELS = {"full_spectrum": "full-spectrum oil (contains some THC)",
                  "broad_spectrum": "broad-spectrum oil (THC removed, traces)",
                  "isolate": "CBD isolate oil", "pharmaceutical": "pharmaceutical CBD (Epidiolex-like, exact label)"}
ROUTE_LABELS = {"oral": "swallowed (oral)", "oromucosal": "under the tongue / spray (oromucosal)",
                "inhaled": "inhaled (vaped)"}


def create_app(data_dir: Path, max_patients: int = 2000, max_jobs: int = 2, *,
               allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS, max_body_bytes: int = MAX_BODY_BYTES,
               max_kept: int = 100, report: bool = True,
               max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS, prestart: bool = False) -> FastAPI:
    """The web page and JSON API. Runs go to ``<data_dir>/runs/<id>``; at most ``max_jobs`` at once,
    each of at most ``max_patients`` per arm, each in a process of its own that is killed after
    ``max_run_seconds``; with ``report`` each run also checks the article's claims and writes
    report.html. ``allowed_hosts`` (Host header names; None: any) defaults to loopback names, which
    also blocks DNS-rebinding pages from reaching the API. With ``prestart``, a run process is
    started (and loads the model) when the server starts rather than at the first run."""
    jobs = Jobs(Path(data_dir), max_jobs, max_kept, report, max_run_seconds)
    app = FastAPI(title="ecsim", version=__version__, lifespan=_lifespan(jobs, prestart), docs_url=None,
                  redoc_url=None, description="A virtual trial of CBD in dystonia. A model, not medical advice.")
    app.state.jobs = jobs
    app.include_router(_api(jobs, m.request_model(max_patients), max_patients), prefix="/api")
    app.add_api_route("/", _index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeaders)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app


def _lifespan(jobs: Jobs, prestart: bool):
    @asynccontextmanager
    async def lifespan(app):
        if prestart:
            jobs.prestart()
        yield
        jobs.shutdown()     # stops the run processes at once
    return lifespan


def _index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def _api(jobs: Jobs, RunRequest: type, max_patients: int) -> APIRouter:
    """The /api routes of one server."""
    api = APIRouter()

    @api.post("/runs", status_code=202, response_model=m.RunCreated, responses=ERRORS,
              summary="Start a virtual trial from the form's fields")
    def create_run(body: RunRequest, response: Response) -> m.RunCreated:
        scenario = build_scenario(body)
        try:
            run = jobs.submit(scenario.model_dump(mode="json"))
        except Busy:
            raise HTTPException(429, f"busy: {jobs.max_jobs} runs are in progress; allowed: at most "
                                     f"{jobs.max_jobs} at a time, retry in a few seconds",
                                headers={"Retry-After": "5"}) from None
        response.headers["Location"] = f"/api/runs/{run.id}"
        return m.RunCreated(id=run.id, status=run.status, status_url=f"/api/runs/{run.id}",
                            report_url=f"/api/runs/{run.id}/report")

    @api.get("/runs/{run_id}", response_model=m.RunStatus, responses=ERRORS, summary="A run's status and result")
    def get_run(run_id: str) -> m.RunStatus:
        run = _known(jobs, run_id)
        done = run.status == "done"
        return m.RunStatus(id=run.id, status=run.status, progress=run.progress, created=run.created,
                           error=run.error, files=run.files(), summary=jobs.summary(run),
                           report_url=f"/api/runs/{run.id}/report" if done else None)

    @api.get("/runs/{run_id}/report", response_class=HTMLResponse, summary="The run's HTML report",
             responses=JSON_ERRORS | {307: {"description": "redirect to the run's report.html"}})
    def get_report(run_id: str):
        run = _finished(jobs, run_id)
        if "report.html" in run.files():
            return RedirectResponse(f"/api/runs/{run.id}/files/report.html", status_code=307)
        return HTMLResponse(_fallback_report(run))

    @api.get("/runs/{run_id}/files/{name}", response_class=FileResponse,
             responses=JSON_ERRORS | {200: {"description": "the file", "content": {"*/*": {}}}},
             summary="One file of a finished run (only names the run folder lists)")
    def get_file(run_id: str, name: str) -> FileResponse:
        run = _finished(jobs, run_id)
        files = run.files()
        if name not in files:
            raise ApiError(404, InputError("name", name, "one of the run's files: " + ", ".join(files)))
        path = run.folder / name
        if not path.is_file():          # evicted between the listing and now
            raise ApiError(404, InputError("run_id", run_id, "a run the server still keeps"))
        return FileResponse(path, media_type=_media_type(name))

    @api.get("/health", response_model=m.Health, summary="Liveness and limits")
    def health() -> m.Health:
        return m.Health(status="ok", version=__version__, active_runs=jobs.active(), max_jobs=jobs.max_jobs,
                        max_patients=max_patients, max_run_seconds=jobs.max_run_seconds)

    @api.get("/phenotypes", response_model=list[m.PhenotypeOut], summary="Forms of dystonia on offer")
    def phenotypes() -> list[m.PhenotypeOut]:
        return [m.PhenotypeOut(name=p.name, label=p.label, cause=p.cause, primary_scale=primary_scale(p.name, None),
                               botulinum_reference=p.name in m.TOXIN_PHENOTYPES)
                for p in PHENOTYPES.values() if p.name in m.CHOSEN_PHENOTYPES]

    @api.get("/options", response_model=m.Options, summary="The form's choices, limits and defaults")
    def options() -> m.Options:
        return m.Options(
            products=[m.Choice(value=p.value, label=PRODUCT_LABELS[p.value]) for p in Product],
            routes=[m.Choice(value=r, label=ROUTE_LABELS[r]) for r in m.ROUTES],
            foods=[m.Choice(value=f.value, label=f.value.replace("_", " ")) for f in Food],
            max_patients=max_patients, min_patients=m.MIN_PATIENTS, max_weeks=m.MAX_WEEKS, max_dose=m.MAX_DOSE,
            max_clobazam_mg_per_day=m.MAX_CLOBAZAM_MG_PER_DAY, max_run_seconds=jobs.max_run_seconds,
            defaults=RunRequest().model_dump(mode="json"))

    return api


def _known(jobs: Jobs, run_id: str) -> Run:
    run = jobs.get(run_id)
    if run is None:
        raise ApiError(404, InputError("run_id", run_id, "the id of a run started on this server"))
    return run


def _finished(jobs: Jobs, run_id: str) -> Run:
    run = _known(jobs, run_id)
    if run.status != "done":
        raise ApiError(409, InputError("run_id", run_id, f"a finished run (this one is {run.status})"))
    return run


def _media_type(name: str) -> str:
    if name.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _fallback_report(run: Run) -> str:
    """A plain page with the run's figures and files, for folders without a report.html."""
    files = run.files()
    images = "".join(f'<p><img src="files/{escape(f)}" alt="{escape(f)}" style="max-width:100%"></p>'
                     for f in files if f.endswith(".png"))
    links = "".join(f'<li><a href="files/{escape(f)}">{escape(f)}</a></li>' for f in files)
    return (f"<!doctype html><meta charset=utf-8><title>ecsim run {run.id}</title>"
            f"<body style='font-family:sans-serif'><h1>Run {run.id}</h1>"
            f"<p>A model, not medical advice.</p>{images}<h2>Files</h2><ul>{links}</ul></body>")


def _error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"detail": one line, "field": ...}``; never a traceback."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _input_error(_request_error(exc))

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return _input_error(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:   # FastAPI could not decode the body
            return _input_error(InputError("body", "undecodable bytes", "a UTF-8 JSON object with the form's fields"))
        return JSONResponse({"detail": str(exc.detail).replace("\n", " "), "field": getattr(exc, "field", None)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; see the server log", "field": None}, status_code=500)


def _request_error(exc: RequestValidationError) -> InputError:
    """FastAPI's validation error as the project's InputError, fields named as in the form."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid" or tuple(first["loc"]) == ("body",) and first["type"] != "value_error":
        given = {"json_invalid": "invalid JSON", "missing": "no body"}.get(first["type"], first.get("input"))
        return InputError("body", given, "a JSON object with the form's fields")
    err = pydantic_to_input_error(exc)   # reads only .errors(), which FastAPI's exception shares
    return InputError(err.field.removeprefix("body."), err.value, err.allowed)


def _input_error(err: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(err), "field": err.field or None}, status_code=422)
