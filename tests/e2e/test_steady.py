"""The Train page stays whole while the machine is busy: with two busy-loop processes pinning both
cores, a user watches run after run train and end, and the page never goes blank.

The Streamlit front end throws its element tree away ("Bad delta path index", "Cannot set a node at a
delta path") when the deltas of two script runs interleave in a way it cannot place; the page then
goes white until a refresh. These tests fail on either message in the console, and on a page
without its heading.

Real server, real browser (Debian's chromium through Playwright), real worker processes.
"""
from __future__ import annotations

import re
import time

import pytest

from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNS_WATCHED = 20
CRASH = re.compile(r"Bad delta path|Cannot set a node|Cannot send rerun backMessage")


class Console:
    """Every console message and page error of one page, for the crash check."""

    def __init__(self, page):
        self.lines: list[str] = []
        page.on("console", lambda message: self.lines.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.lines.append(f"pageerror: {error}"))

    def crashes(self) -> list[str]:
        return [line for line in self.lines if CRASH.search(line)]


def assert_whole(page, console: Console, heading: str, when: str) -> None:
    assert not console.crashes(), f"{when}: the front end threw its element tree away: {console.crashes()}"
    assert page.get_by_role("heading", name=heading).count() == 1, f"{when}: the page lost its heading"


def tiny_spec(epochs: int = 1):
    """mlp-128x2 for one short epoch: a run that starts, draws and ends within seconds."""
    return get_preset("mlp-128x2").spec.with_fit(epochs=epochs, batch_size=256)


@pytest.fixture
def scheduler(app_server, shared_datasets, monkeypatch):
    """A scheduler on the server's store, as the CLI would be: runs it queues are the server's."""
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    return Scheduler(SQLiteRunStore(app_server[1]), SchedulerSettings())


def test_the_train_page_stays_whole_through_twenty_runs_with_the_cores_pinned(app_server, scheduler, page, cpu_hogs):
    url, _home = app_server
    console = Console(page)
    page.goto(f"{url}/train")
    page.get_by_role("heading", name="Train").wait_for(timeout=120_000)
    ended = []
    for number in range(RUNS_WATCHED):
        run = scheduler.submit(tiny_spec(), "mnist", name=f"steady {number + 1}")
        # Half opened by their link, half found as the newest run on the bare page.
        page.goto(f"{url}/train?run={run.id}" if number % 2 == 0 else f"{url}/train")
        page.get_by_text(f"Run {run.id}").wait_for(timeout=120_000)
        page.get_by_text(re.compile(r"Completed 1 epoch\(s\)")).first.wait_for(timeout=240_000)
        # The crash came about a second after the run ended: give the page's next redraws their turn.
        page.wait_for_function("() => document.querySelector('[data-testid=\"stMetric\"]') !== null",
                               timeout=60_000)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert_whole(page, console, "Train", f"run {number + 1} of {RUNS_WATCHED}")
            page.wait_for_timeout(250)
        ended.append(scheduler.store.get_run(run.id).status)
    screenshot(page, "steady-train")
    assert ended == [RunStatus.COMPLETED] * RUNS_WATCHED
    assert_whole(page, console, "Train", "at the end")


def test_the_doctors_fix_opens_build_whole_with_the_cores_pinned(app_server, scheduler, page, cpu_hogs):
    """A run that diverges (Adam at learning rate 1), its fix clicked on Train: Build opens whole."""
    url, _home = app_server
    console = Console(page)
    spec = get_preset("mlp-128x2").spec.with_fit(epochs=2, batch_size=64).with_compile(learning_rate=1.0)
    run = scheduler.submit(spec, "mnist", name="steady diverged")
    page.goto(f"{url}/train?run={run.id}")
    fix = page.locator(".st-key-train_fix_0 a").first
    fix.wait_for(timeout=300_000)
    assert_whole(page, console, "Train", "the diverged run on Train")
    fix.click()
    page.get_by_role("heading", name="Build").wait_for(timeout=120_000)
    page.locator('[data-testid="stAlert"]', has_text="Lower the learning rate to").wait_for(timeout=120_000)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert_whole(page, console, "Build", "Build after the fix")
        page.wait_for_timeout(250)
