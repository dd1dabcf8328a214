"""A user builds mlp-128x2 by clicks, trains it on Fashion-MNIST, stops it at its first point on the
chart, resumes it and watches the chart grow, and finds it again after a refresh.

Real server, real browser (Debian's chromium through Playwright), real worker processes. Every wait
is for a condition, with bounds a loaded machine needs (the suite runs with both cores pinned).
"""
import re
import time

import pytest
from playwright.sync_api import expect

from pipelines.execution.registry import WorkerRegistry
from tests.e2e.conftest import screenshot
from tests.e2e.waiting import act_and_settle, click, keyed, settle

__all__ = ["card", "click", "keyed", "wait_for_app"]  # what other browser tests take from here

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHART_POINTS = """() => {
  const plot = document.querySelector('.st-key-train_chart .js-plotly-plot');
  if (!plot || !plot.data) return 0;
  const count = (x) => {  // an array, or Plotly's base64 encoding of a numpy array ({dtype, bdata})
    if (!x) return 0;
    if (x.length !== undefined) return x.length;
    const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1}[x.dtype] || 8;
    return x.bdata ? Math.floor(atob(x.bdata).length / size) : 0;
  };
  return plot.data.reduce((n, trace) => n + count(trace.x), 0);
}"""


def wait_for_app(page):
    """The page quiet (no script running, nothing stale): see tests/e2e/waiting.py."""
    settle(page)


def card(page, layer_name: str):
    return keyed(page, f"build_card_{layer_name}")


EPOCHS = 6  # work enough that a Stop at the first point always arrives mid-run, even on a loaded machine


def chart_points(page) -> int:
    return page.evaluate(CHART_POINTS)


def test_build_mlp_by_clicks_train_watch_and_refresh(app_server, page):
    url, home = app_server
    page.goto(f"{url}/build")
    page.get_by_role("heading", name="Build").wait_for()
    card(page, "dense_3").wait_for()

    click(page, "build_clear")
    card(page, "dense_1").wait_for(state="detached")
    for layer_type, name in (("Flatten", "flatten_1"), ("Dense", "dense_1"), ("Dense", "dense_2"),
                             ("Dense", "dense_3")):
        click(page, f"build_add_{layer_type}")
        card(page, name).wait_for()
    # The new last layer has 128 relu units: the card says so, and the model cannot train yet.
    card(page, "dense_3").get_by_text("the output has 128 units but fashion_mnist has 10 classes").wait_for()

    units = card(page, "dense_3").get_by_label("units", exact=True)
    units.fill("10")
    act_and_settle(page, lambda: units.press("Enter"))
    card(page, "dense_3").get_by_text("1,290 params").wait_for()
    card(page, "dense_3").get_by_label("activation", exact=True).click()
    page.get_by_role("option", name="softmax").click()
    # While Streamlit redraws, the old problem row can sit beside the new one for a moment: wait for none.
    expect(card(page, "dense_3").get_by_text("does not fit")).to_have_count(0)
    page.get_by_text("118,282").first.wait_for()
    assert card(page, "dense_2").get_by_text("(None, 128)").count() == 1

    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill(str(EPOCHS))
    act_and_settle(page, lambda: epochs.press("Enter"))
    page.get_by_text(f"{EPOCHS} epochs of 32").first.wait_for()
    keyed(page, "build_train").locator("button:enabled").first.wait_for()
    screenshot(page, "build", top=True)

    # The dashboard keeps a warm worker for the next run: give it the time a user would have spent.
    registry = WorkerRegistry(home)
    deadline = time.monotonic() + 300
    while not any(w.state == "idle" for w in registry.list()) and time.monotonic() < deadline:
        time.sleep(0.25)
    clicked = time.monotonic()
    click(page, "build_train")
    page.wait_for_url(re.compile(r".*/train\?run=[0-9a-f]{10}"))
    switched = time.monotonic() - clicked
    run_id = page.url.rsplit("=", 1)[1]

    page.wait_for_function(f"() => ({CHART_POINTS})() > 0", timeout=300_000)
    first_point = time.monotonic() - clicked
    screenshot(page, "train-live")

    # Stop at the first point: the buttons act in callbacks, and the selected run redraws on its
    # timer, so the outcome is waited for, not the click's run.
    keyed(page, "train_stop").locator("button:enabled").first.click()
    page.get_by_text(re.compile(r"Stopped after \d+ finished epoch")).wait_for()

    # Resumed, it trains on: the chart grows while it runs.
    keyed(page, "train_resume").locator("button:enabled").first.click()
    page.get_by_text(re.compile(rf"Epoch \d+/{EPOCHS} · batch")).wait_for(timeout=300_000)  # its progress bar
    page.wait_for_function(f"() => ({CHART_POINTS})() > 0", timeout=300_000)
    first = chart_points(page)
    page.wait_for_function(f"() => ({CHART_POINTS})() > {first}", timeout=300_000)

    accuracy = page.locator('[data-testid="stMetric"]', has_text="Test accuracy")
    accuracy.wait_for(timeout=600_000)
    value = float(accuracy.locator('[data-testid="stMetricValue"]').inner_text().strip().rstrip("%"))
    assert value > 80, value  # percent: 6 epochs of mlp-128x2 on Fashion-MNIST
    page.get_by_text(f"Completed {EPOCHS} epoch(s).").wait_for()
    screenshot(page, "train-done")

    page.reload()
    accuracy.wait_for()
    assert run_id in page.url
    page.get_by_text(run_id).first.wait_for()
    print(f"click Train -> Train page {switched:.2f} s -> first point on the chart in the browser: "
          f"{first_point:.2f} s")
