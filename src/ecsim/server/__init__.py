"""`ecsim serve`: a web page and JSON API for virtual trials of CBD in dystonia (see docs/server.md).

FastAPI and uvicorn are imported only here and below, so `import ecsim` stays fast.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from ..errors import InputError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
MAX_JOBS_LIMIT = 16
MAX_PATIENTS_LIMIT = 100_000
DEFAULT_MAX_RUN_SECONDS = 600.0      # a run still going after this long is stopped and fails
MAX_RUN_SECONDS_LIMIT = 86_400.0
GRACEFUL_SHUTDOWN_S = 5              # requests still open when stopping get this long


def create_app(data_dir: Path, max_patients: int = 2000, max_jobs: int = 2, **options):
    """The FastAPI application (see `ecsim.server.app.create_app`)."""
    from .app import create_app as make
    return make(data_dir, max_patients, max_jobs, **options)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a name or address of this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_limits(port: int, max_patients: int, max_jobs: int,
                 max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS) -> None:
    """Refuse unusable settings with the project's one-line error."""
    if not 1 <= port <= 65535:
        raise InputError("--port", port, "a TCP port from 1 to 65535")
    if not 10 <= max_patients <= MAX_PATIENTS_LIMIT:
        raise InputError("--max-patients", max_patients, f"10 to {MAX_PATIENTS_LIMIT} patients per arm")
    if not 1 <= max_jobs <= MAX_JOBS_LIMIT:
        raise InputError("--max-jobs", max_jobs, f"1 to {MAX_JOBS_LIMIT} runs at a time")
    if not 1 <= max_run_seconds <= MAX_RUN_SECONDS_LIMIT:   # NaN fails too
        raise InputError("--max-run-seconds", max_run_seconds, f"1 to {MAX_RUN_SECONDS_LIMIT:g} seconds per run")


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, data_dir: Path = Path("results/web"),
          max_patients: int = 2000, max_jobs: int = 2, max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS,
          *, report: bool = True) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM: the run processes are stopped at once). Off
    loopback, any Host header is accepted and a warning is printed. ``report=False`` (not on the
    command line; for tests and benchmarks) skips each run's claims, uncertainty and report."""
    import uvicorn
    check_limits(port, max_patients, max_jobs, max_run_seconds)
    local = is_loopback(host)
    if not local:
        print(f"warning: serving on {host}: anyone who can reach this address can start runs "
              "(there is no authentication); see docs/server.md", file=sys.stderr)
    app = create_app(data_dir, max_patients, max_jobs, allowed_hosts=_host_names(host) if local else None,
                     report=report, max_run_seconds=max_run_seconds, prestart=True)
    print(f"ecsim: http://{_url_host(host)}:{port}/  (runs in {data_dir}/runs; Ctrl-C stops)", file=sys.stderr)
    try:
        uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning", limit_concurrency=64,
                    timeout_keep_alive=5, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    except KeyboardInterrupt:   # uvicorn stops cleanly on Ctrl-C, then raises it again
        pass
    print("ecsim: stopped", file=sys.stderr)


def _host_names(host: str) -> list[str]:
    """Host header names (without port) that reach a loopback server: IPv6 ones in brackets."""
    return sorted({"127.0.0.1", "localhost", _url_host(host)})


def _url_host(host: str) -> str:
    return f"[{host.strip('[]')}]" if ":" in host else host
