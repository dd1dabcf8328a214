"""Waiting on a Streamlit page in a real browser, for conditions and never for fixed times, so that
the browser tests hold on a loaded machine (CI runs them with both cores pinned).

Streamlit 1.67 shows no status widget. Its app root carries the script's state
(`data-test-script-state`: running or notRunning), which timer fragments flip too (every half
second on the Train page), and a page run marks the elements it has not redrawn yet as stale. The
page is *quiet* when no script runs and nothing is stale or a skeleton. On a busy page the quiet
moments between two fragment runs can last a few milliseconds, too short for polling to see, so a
MutationObserver in the page watches for one.
"""
from __future__ import annotations

from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Generous bounds: they only decide how long a failing test takes to say so.
SETTLE_MS = 120_000
RERUN_START_MS = 10_000

SETTLED = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'notRunning'
  && !document.querySelector('[data-testid="stSkeleton"]') && !document.querySelector('[data-stale="true"]')"""
RUN_STARTED = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'running'
  || !!document.querySelector('[data-stale="true"]')"""
# Sets window.FLAG once CONDITION holds: at once if it holds now (with `now`), else at a change to
# the page after which it holds. A new watch replaces the last one of the same flag.
_WATCH = """(now) => {
  const holds = CONDITION;
  if (window.FLAG_watch) window.FLAG_watch.disconnect();
  window.FLAG = false;
  if (now && holds()) { window.FLAG = true; return; }
  window.FLAG_watch = new MutationObserver(() => {
    if (holds()) { window.FLAG = true; window.FLAG_watch.disconnect(); }
  });
  window.FLAG_watch.observe(document.documentElement, {subtree: true, childList: true, attributes: true});
}"""


def keyed(page, key: str):
    """The element Streamlit renders for a widget or container with this key."""
    return page.locator(f".st-key-{key}")


def _watch(page, flag: str, condition: str, *, now: bool) -> None:
    page.evaluate(_WATCH.replace("FLAG", flag).replace("CONDITION", condition), now)


def settle(page, *, timeout: float = SETTLE_MS) -> None:
    """Wait until the page has been quiet at least once from now on (see the module docstring)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    _watch(page, "__layerlabQuiet", SETTLED, now=True)
    page.wait_for_function("() => window.__layerlabQuiet === true", timeout=timeout)


def act_and_settle(page, action) -> None:
    """Do `action` (a click, a key press), wait for the script run it starts to begin, then for a
    quiet page. A run that begins late (a busy machine delays it) is waited for, up to
    RERUN_START_MS; the caller then waits for what the action should show, which is the real check."""
    page.wait_for_selector('[data-testid="stApp"]')
    _watch(page, "__layerlabRunStarted", RUN_STARTED, now=False)  # only a run after the action counts
    action()
    try:
        page.wait_for_function("() => window.__layerlabRunStarted === true", timeout=RERUN_START_MS)
    except PlaywrightTimeout:
        pass  # it was over before the page could mark it, or the action needed no run
    settle(page)


def click(page, key: str) -> None:
    """Click the first button inside the keyed element and wait for the page to settle."""
    act_and_settle(page, keyed(page, key).locator("button").first.click)
