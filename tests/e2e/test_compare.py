"""Two real runs compared in a real browser: the overlaid curves with both runs' names and their
best epochs, what differs, and the flipped-examples gallery after asking for predictions.

Real server, real browser (Debian's chromium through Playwright); the runs are trained by the CLI
on the MNIST sample into the server's home.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
IDLE = ("() => !document.querySelector("
        "'[data-testid=\"stStatusWidget\"] [data-testid=\"stStatusWidgetRunningIcon\"]')")


def train(home: Path, data: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "train", "--home", str(home), "--data-dir", str(data),
         "--dataset", "mnist", "--preset", "mlp-128x2", "--epochs", "2", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["run_id"]


def test_two_runs_side_by_side(app_server, page, shared_datasets):
    url, home = app_server
    slow = train(home, shared_datasets, "--lr", "0.0001", "--name", "adam lr 1e-4")
    fast = train(home, shared_datasets, "--name", "adam lr 1e-3")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{url}/compare?runs={slow},{fast}")
    page.get_by_role("heading", name="2 runs").wait_for(timeout=60_000)
    page.wait_for_function(IDLE, timeout=60_000)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for(timeout=60_000)
    legend = chart.locator(".legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert "adam lr 1e-4" in legend and "adam lr 1e-3" in legend
    assert chart.locator("path.point").count() >= 4  # both runs' epochs, and their best-epoch stars
    screenshot(page, "compare-curves")

    page.get_by_role("tab", name="Baseline and what differs").click()
    page.get_by_text("What differs", exact=True).wait_for()
    page.locator("th", has_text="learning_rate").first.wait_for(state="attached")  # the grid draws on a canvas

    page.get_by_role("tab", name="Two runs, prediction by prediction").click()
    page.get_by_text("Compare their predictions on the test set").click()
    page.get_by_text("Right in adam lr 1e-3, wrong in the other").wait_for(timeout=180_000)
    page.wait_for_function(IDLE, timeout=180_000)
    screenshot(page, "compare-flipped")
    assert page.locator('[data-testid="stMain"] img').count() > 0  # the flipped examples
