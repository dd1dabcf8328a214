"""Quick clicks count, each once and in order, while both cores are pinned: a learner who clicks six
palette buttons 0.2 s apart gets the six layers they clicked, and quick clicks on a card's buttons
move and copy exactly as clicked.

Real server, real browser (Debian's chromium through Playwright).
"""
from __future__ import annotations

import json

import pytest

from tests.e2e.test_build_and_train import click, keyed, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLICK_GAP_MS = 200
STACK = """() => [...document.querySelectorAll('[class*="st-key-build_card_"]')]
  .map(card => (card.innerText.match(/^\\s*\\d+ · (\\w+)/) || [])[1]).filter(Boolean)"""


def stack(page) -> list[str]:
    return page.evaluate(STACK)


def settled_stack(page, expected_length: int) -> list[str]:
    page.wait_for_function(f"() => ({STACK})().length >= {expected_length}", timeout=120_000)
    wait_for_app(page)
    return stack(page)


def empty_build(page, url: str) -> None:
    """Build, drawn and quiet, with its stack cleared."""
    page.goto(f"{url}/build")
    page.get_by_role("heading", name="Build").wait_for(timeout=120_000)
    wait_for_app(page)
    click(page, "build_clear")
    page.wait_for_function(f"() => ({STACK})().length === 0", timeout=60_000)


def test_palette_clicks_apply_in_order_once_each_with_the_cores_pinned(app_server, page, cpu_hogs):
    empty_build(page, app_server[0])
    clicked = ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    for layer_type in clicked:
        keyed(page, f"build_add_{layer_type}").locator("button").first.click()
        page.wait_for_timeout(CLICK_GAP_MS)
    assert settled_stack(page, len(clicked)) == clicked
    # They went through Build's click log (components/click_log.py), numbered in the browser.
    assert page.evaluate("() => window.__layerlabClickLog && window.__layerlabClickLog.seq") == len(clicked)


def test_quick_clicks_on_a_cards_buttons_apply_in_order(app_server, page, cpu_hogs):
    empty_build(page, app_server[0])
    for layer_type in ("Flatten", "Dense"):
        click(page, f"build_add_{layer_type}")
    assert settled_stack(page, 2) == ["Flatten", "Dense"]
    # Copy the Dense, then move the Flatten down twice: Dense, Dense, Flatten.
    for key in ("build_dup_dense_1", "build_down_flatten_1", "build_down_flatten_1"):
        keyed(page, key).locator("button").first.click()
        page.wait_for_timeout(CLICK_GAP_MS)
    expected = ["Dense", "Dense", "Flatten"]
    # The copy shows first; the moves may still be on their way: wait for the whole order (or time out).
    page.wait_for_function(f"() => JSON.stringify(({STACK})()) === '{json.dumps(expected, separators=(',', ':'))}'", timeout=120_000)
    wait_for_app(page)
    assert stack(page) == expected
