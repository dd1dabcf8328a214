"""A user builds mlp-128x2 by clicks, trains it on Fashion-MNIST, watches it, stops and resumes it,
and finds it again after a refresh.

Real server, real browser (Debian's chromium through Playwright), real worker processes.
"""
import re
import time

import pytest
from playwright.sync_api import expect

from pipelines.execution.registry import WorkerRegistry
from tests.e2e.conftest import screenshot

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


def keyed(page, key: str):
    """The element Streamlit renders for a widget or container with this key."""
    return page.locator(f".st-key-{key}")


# Streamlit 1.67 shows no status widget; a page run marks the elements it has not redrawn yet as stale.
SETTLED = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'notRunning'
  && !document.querySelector('[data-testid="stSkeleton"]') && !document.querySelector('[data-stale="true"]')"""


def wait_for_app(page):
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(SETTLED, timeout=60_000)


def click(page, key: str):
    keyed(page, key).locator("button").first.click()
    page.wait_for_timeout(300)
    wait_for_app(page)


def card(page, layer_name: str):
    return keyed(page, f"build_card_{layer_name}")


def test_build_mlp_by_clicks_train_watch_and_refresh(app_server, page):
    url, home = app_server
    page.goto(f"{url}/build")
    page.get_by_role("heading", name="Build").wait_for(timeout=60_000)
    card(page, "dense_3").wait_for(timeout=60_000)

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
    units.press("Enter")
    wait_for_app(page)
    card(page, "dense_3").get_by_text("1,290 params").wait_for()
    card(page, "dense_3").get_by_label("activation", exact=True).click()
    page.get_by_role("option", name="softmax").click()
    # While Streamlit redraws, the old problem row can sit beside the new one for a moment: wait for none.
    expect(card(page, "dense_3").get_by_text("does not fit")).to_have_count(0, timeout=30_000)
    page.get_by_text("118,282").first.wait_for()
    assert card(page, "dense_2").get_by_text("(None, 128)").count() == 1

    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Enter")
    wait_for_app(page)
    keyed(page, "build_train").locator("button:enabled").first.wait_for()
    page.wait_for_timeout(500)
    screenshot(page, "build", top=True)

    # The dashboard keeps a warm worker for the next run: give it the time a user would have spent.
    registry = WorkerRegistry(home)
    deadline = time.monotonic() + 120
    while not any(w.state == "idle" for w in registry.list()) and time.monotonic() < deadline:
        time.sleep(0.25)
    clicked = time.monotonic()
    click(page, "build_train")
    page.wait_for_url(re.compile(r".*/train\?run=[0-9a-f]{10}"), timeout=30_000)
    switched = time.monotonic() - clicked
    run_id = page.url.rsplit("=", 1)[1]

    page.wait_for_function(f"() => ({CHART_POINTS})() > 0", timeout=120_000)
    first_point = time.monotonic() - clicked
    first = page.evaluate(CHART_POINTS)
    page.wait_for_function(f"() => ({CHART_POINTS})() > {first}", timeout=120_000)
    assert page.evaluate(CHART_POINTS) > first, "the chart gains points while training runs"
    screenshot(page, "train-live")

    click(page, "train_stop")
    page.get_by_text(re.compile(r"Stopped after \d+ finished epoch")).wait_for(timeout=30_000)
    click(page, "train_resume")

    accuracy = page.locator('[data-testid="stMetric"]', has_text="Test accuracy")
    accuracy.wait_for(timeout=300_000)
    value = float(accuracy.locator('[data-testid="stMetricValue"]').inner_text().strip().rstrip("%"))
    assert value > 80, value  # percent: 2 epochs of mlp-128x2 on Fashion-MNIST
    page.get_by_text("Completed 2 epoch(s).").wait_for()
    screenshot(page, "train-done")

    page.reload()
    accuracy.wait_for(timeout=60_000)
    assert run_id in page.url
    assert page.get_by_text(run_id).count() >= 1
    print(f"click Train -> Train page {switched:.2f} s -> first point on the chart in the browser: "
          f"{first_point:.2f} s")
