"""The page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser
download): load it, see a bad value refused in one line, submit a small trial, see the answer and
a figure. Saves docs/screenshots/page.png when the page looks different.

Without Chromium the test is skipped locally and fails under CI (the CI variable set), where
`.ci/run` installs it."""

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from ecsim.server import create_app

CHROMIUM = Path(os.environ.get("ECSIM_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "page.png"
REPORT_SCREENSHOT = SCREENSHOT.with_name("report.png")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULT_TIMEOUT_MS = 120_000
REPORT_LOADED = """() => {
  const doc = document.querySelector('#report').contentDocument;
  return doc && doc.location.href.endsWith('/files/report.html') && doc.readyState === 'complete'
    && [...document.images].every(img => img.complete);
}"""


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the browser test: {reason}", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """uvicorn on a free loopback port, in a thread, for the module's tests."""
    import uvicorn
    app = create_app(tmp_path_factory.mktemp("web"), max_patients=200, max_jobs=1)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.should_exit = True
    thread.join(timeout=60)
    sock.close()


@pytest.fixture
def page(chromium, server, tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page = browser.new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("response", lambda r: r.status >= 400 and page.problems.append(f"{r.status} {r.url}"))
        page.goto(server)
        page.wait_for_selector("#phenotype option[value=cervical]", state="attached")
        yield page
        browser.close()


def test_bad_value_is_refused_in_one_line(page):
    page.fill("#patients", "100000")
    page.click("#submit")
    error = page.locator("#form-error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith("patients: got 100000; allowed:")
    assert page.get_attribute("#patients", "aria-invalid") == "true"
    assert not page.locator("#result").is_visible()


def test_submit_a_trial_and_see_the_answer(page):
    page.select_option("#phenotype", "cervical")
    page.select_option("#product", "isolate")
    page.fill("#dose", "150")
    page.select_option("#doses_per_day", "2")
    page.check("#botulinum_reference")
    page.fill("#weeks", "2")
    page.fill("#patients", "30")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden]), #run-error:not([hidden])", timeout=RESULT_TIMEOUT_MS)
    assert page.locator("#run-error").is_hidden(), page.inner_text("#run-error")
    answer = page.inner_text("#answer")
    assert "TWSTRS total" in answer and "Difference from placebo" in answer and "95 % CI" in answer
    assert page.inner_text("#verdict").strip()
    assert page.inner_text("#meta").startswith("30 virtual patients per arm")
    assert page.locator("#arms tbody tr").count() == 3   # placebo, isolate, toxin
    plot = page.locator("img.plot").first
    plot.wait_for(state="visible")
    assert plot.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_attribute("#report", "src").endswith("/report")
    page.wait_for_function(REPORT_LOADED)
    assert not page.problems, page.problems   # no script errors, no blocked resources
    _save_screenshot(page)


def _save_screenshot(page) -> None:
    """Write docs/screenshots/page.png if the page (the report frame masked: it names the run)
    looks different from the saved one."""
    png = page.screenshot(full_page=True, mask=[page.locator("#report")], mask_color="#e9edf1",
                          animations="disabled")
    if not SCREENSHOT.is_file() or SCREENSHOT.read_bytes() != png:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)


def test_report_renders_in_the_browser(chromium, default_report_run, tmp_path):
    """The default scenario's report opens from disk with nothing missing; saves
    docs/screenshots/report.png (its top: answer, plain words, trial table) when it looks different."""
    from playwright.sync_api import sync_playwright
    out, _, _ = default_report_run
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        page = browser.new_page()
        problems = []
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("requestfailed", lambda r: problems.append(r.url))
        page.goto((out / "report.html").as_uri())
        page.wait_for_function("() => [...document.images].every(img => img.complete && img.naturalWidth > 0)")
        assert page.locator("img").count() == 7
        assert "Can CBD help with dystonia?" in page.inner_text("#answer")
        assert not problems, problems
        png = page.screenshot(clip={"x": 0, "y": 0, "width": 1200, "height": 2200}, full_page=True,
                              animations="disabled")
        browser.close()
    if not REPORT_SCREENSHOT.is_file() or REPORT_SCREENSHOT.read_bytes() != png:
        REPORT_SCREENSHOT.write_bytes(png)
