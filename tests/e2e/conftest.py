"""A real Streamlit server and Debian's Chromium driven by Playwright, for end-to-end tests.

The server gets its own store (a temp LAYERLAB_HOME) and the shared offline datasets. The browser
is never downloaded: Playwright drives /usr/bin/chromium. Screenshots land in test-artifacts/.

Every bound here is generous: the suite runs on a loaded 2-core machine (CI pins both cores), where
a start, a page or a click takes many times what it takes at rest. A bound only decides how long a
failing test takes to say so; the tests wait for conditions (see waiting.py).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
SERVER_START_SECONDS = 300
PAGE_TIMEOUT_MS = 120_000  # Playwright's own default, for a wait or an action given no timeout, is 30 s
EXPECT_TIMEOUT_MS = 60_000  # and 5 s for an `expect(...)` assertion
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, shared_datasets):
    """`streamlit run dashboard/app.py` on 127.0.0.1, with a fresh store; yields (url, home)."""
    home = tmp_path_factory.mktemp("layerlab-home")
    port = _free_port()
    env = {**os.environ, "LAYERLAB_HOME": str(home), "LAYERLAB_DATA_DIR": str(shared_datasets),
           "PYTHONPATH": str(REPO)}
    log = open(home / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=10).read() == b"ok":
                break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start:\n{(home / 'server.log').read_text()[-3000:]}")
        time.sleep(0.3)
    yield url, home
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:  # too busy to shut down in a minute
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)
    from pipelines.execution.scheduler import Scheduler, SchedulerSettings
    from pipelines.runs.sqlite_store import SQLiteRunStore

    Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers()
    if os.environ.get("CI"):
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(home / "server.log", ARTIFACTS / "server.log")


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
                                             timeout=PAGE_TIMEOUT_MS)
        yield browser
        browser.close()


def new_context(browser, *, width: int = 1400, height: int = 1000):
    """A browser context (a fresh profile) whose pages wait as long as a loaded machine needs."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    return context


@pytest.fixture
def page(browser):
    context = new_context(browser)
    page = context.new_page()
    yield page
    context.close()


SCROLL_TO_TOP = """() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })"""


def screenshot(page, name: str, *, top: bool = False) -> Path:
    """Save the page as test-artifacts/NAME.png; `top` scrolls Streamlit's main pane up first."""
    ARTIFACTS.mkdir(exist_ok=True)
    if top:
        page.evaluate(SCROLL_TO_TOP)
        page.wait_for_timeout(300)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test saves a screenshot (test-artifacts/FAILED-<test>.png) and puts the
    page's visible text and the server log's tail in its report, so a CI failure says what the
    browser showed without rerunning it."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if report.when == "call" and report.failed else None
    if page is None:
        return
    try:
        screenshot(page, f"FAILED-{item.name}"[:120])
        text = page.evaluate("() => document.body.innerText")
        report.sections.append(("page text at the failure", f"{page.url}\n{text[-4000:]}"))
    except Exception as exc:  # the page may be gone with the failure; the report still says why
        report.sections.append(("page text at the failure", f"could not read the page: {exc}"))
    server = item.funcargs.get("app_server")
    if server is not None and (server[1] / "server.log").exists():
        report.sections.append(("server log tail", (server[1] / "server.log").read_text(errors="replace")[-3000:]))


@pytest.fixture
def cpu_hogs():
    """Two busy-loop processes pinning this 2-core machine's cores, as a training run does on a
    laptop: the browser and the server then get what is left, and tests see what a user sees."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait(timeout=10)
