"""A learner trains mlp-128x2 at learning rate 1 on the MNIST sample (by the CLI, into the server's
store), opens it on the Train page and is told on its chart that it diverged, clicks the fix and
lands on Build with the learning rate lowered; the run's "Test this model" opens that run on Test,
whose canvas shows no toolbar of its own.

Real server, real browser (Debian's chromium through Playwright), a real training run.
"""
import json
import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import REPO, screenshot
from tests.e2e.waiting import settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The shaded regions on the Train page's chart, as Plotly holds them: [[x0, x1], ...].
REGIONS = """() => {
  const plot = document.querySelector('.st-key-train_chart .js-plotly-plot');
  if (!plot || !plot.layout) return [];
  return (plot.layout.shapes || []).filter(s => s.type === 'rect').map(s => [s.x0, s.x1]);
}"""
# The canvas' own toolbar (its card of buttons), inside the canvas component's shadow root; null until
# the canvas library has drawn it.
TOOLBAR = """() => {
  const host = [...document.querySelectorAll('.st-key-test_canvas_frame *')].find(e => e.shadowRoot);
  return (host && host.shadowRoot.querySelector('.dc-toolbar-card')) || null;
}"""
# Whether the canvas' own toolbar (its card of buttons) can be seen or clicked: the card's box inside
# the frame around the canvas, or the point at its centre hitting it.
TOOLBAR_REACHABLE = """() => {
  const host = [...document.querySelectorAll('.st-key-test_canvas_frame *')].find(e => e.shadowRoot);
  const card = host && host.shadowRoot.querySelector('.dc-toolbar-card');
  if (!card) return 'no toolbar found';
  const frame = document.querySelector('.st-key-test_canvas_frame').getBoundingClientRect();
  const box = card.getBoundingClientRect();
  const hit = host.shadowRoot.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  const inside = box.bottom > frame.top && box.top < frame.bottom;
  return inside || (hit !== null && card.contains(hit));
}"""


@pytest.fixture(scope="module")
def diverged_run(app_server, shared_datasets):
    """mlp-128x2 at learning rate 1 for 2 epochs on the MNIST sample, trained by the CLI."""
    _url, home = app_server
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "train", "--dataset", "mnist", "--preset", "mlp-128x2", "--epochs", "2",
         "--lr", "1", "--home", str(home)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "LAYERLAB_DATA_DIR": str(shared_datasets), "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "COMPLETED", summary
    return summary["run_id"]


def test_a_diverged_run_is_marked_on_its_chart_and_its_fix_opens_build(app_server, diverged_run, page):
    url, _home = app_server
    page.goto(f"{url}/train?run={diverged_run}")
    page.locator(".st-key-train_chart .js-plotly-plot").wait_for()
    settle(page)

    page.get_by_text(re.compile(r"Completed 2 epoch\(s\), but diverged: the loss jumped from")).wait_for()
    page.wait_for_function(f"() => ({REGIONS})().length >= 2")
    (x0, x1), *_ = page.evaluate(REGIONS)
    assert 0 < x0 < 1 and x1 == pytest.approx(2.0), (x0, x1)  # from epoch 1's second batch to the end
    chart = page.locator(".st-key-train_chart")
    assert chart.locator(".annotation-text", has_text="Diverged").count() == 2  # a label in each panel
    finding = page.locator(".st-key-train_finding_0")
    assert "Diverged in epoch 1: the loss jumped from" in finding.inner_text()
    assert "lower the learning rate" in finding.inner_text()
    screenshot(page, "train-diverged", top=True)

    settle(page)
    page.locator(".st-key-train_fix_0 a").first.click()
    page.wait_for_url(re.compile(r".*/build.*"))
    page.get_by_role("heading", name="Build").wait_for()
    # The notice, not the Train page's button of the same words that stays on screen until Build's
    # first run replaces it.
    page.locator('[data-testid="stAlert"]', has_text="Lower the learning rate to 0.001").wait_for()
    rate = page.get_by_role("slider", name=re.compile("Learning rate"))
    rate.wait_for()
    assert rate.get_attribute("aria-valuetext") == "1e-3", rate.get_attribute("aria-valuetext")
    settle(page)
    screenshot(page, "build-after-fix", top=True)


def test_test_this_model_opens_that_run_and_the_canvas_has_no_toolbar_of_its_own(app_server, diverged_run, page):
    url, _home = app_server
    page.goto(f"{url}/train?run={diverged_run}")
    link = page.get_by_role("link", name="Test this model")
    link.wait_for()
    link.click()
    page.wait_for_url(re.compile(rf".*/test\?run={diverged_run}"))
    page.get_by_text("Draw a digit").wait_for()
    settle(page)
    # The picker names the run and its settings; the caption under it, the dataset and the size.
    expect(page.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(rf"^mlp-128x2 · .* · Adam 1e0 · 2 epochs · {diverged_run}$"))
    page.get_by_text(re.compile(r"^MNIST · 118,282 params · ")).first.wait_for()

    canvas = page.locator(".st-key-test_canvas_frame canvas").last
    canvas.wait_for()
    page.wait_for_function(f"() => ({TOOLBAR})() !== null")  # the canvas library has set itself up
    canvas.hover()
    # The toolbar slides in 0.2 s after the pointer arrives: give it that, then its slide time to end.
    page.wait_for_timeout(600)
    page.wait_for_function(f"() => ({TOOLBAR})().getAnimations({{subtree: true}}).every(a => a.playState !== 'running')")
    assert page.evaluate(TOOLBAR_REACHABLE) is False
