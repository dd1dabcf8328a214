"""Two real runs compared in a real browser: the overlaid curves with both runs' names and their
best epochs, what differs, and the flipped-examples gallery after asking for predictions. And a
sweep's runs at 1024 and 1440 px: the tables lead with the name, the status and the accuracies,
each name with the setting that differs, and no filter or tab label is cut.

Real server, real browser (Debian's chromium through Playwright); the runs are trained by the CLI
on the MNIST sample into the server's home.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import MetricPoint
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.e2e.conftest import screenshot
from tests.e2e.waiting import settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


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
    page.get_by_role("heading", name="2 runs").wait_for()
    settle(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for()
    # Plotly draws after the element is there: wait for both runs' epochs and best-epoch stars.
    page.wait_for_function("""() => document.querySelector('[data-testid="stPlotlyChart"]')
                              ?.querySelectorAll('path.point').length >= 4""")
    legend = chart.locator(".legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert "adam lr 1e-4" in legend and "adam lr 1e-3" in legend
    screenshot(page, "compare-curves")

    page.get_by_role("tab", name="Baseline and what differs").click()
    page.get_by_text("What differs", exact=True).wait_for()
    page.locator("th", has_text="learning_rate").first.wait_for(state="attached")  # the grid draws on a canvas

    page.get_by_role("tab", name="Two runs' predictions").click()
    page.get_by_text("Compare their predictions on the test set").click()
    page.get_by_text("Right in adam lr 1e-3, wrong in the other").wait_for(timeout=300_000)
    page.locator('[data-testid="stMain"] img').first.wait_for()  # the flipped examples
    settle(page)
    screenshot(page, "compare-flipped")


SWEPT = "Conv32-Pool-D128-Drop0.5-D10 · adam"  # as Build names a learning-rate sweep's runs of this CNN
# The font width of a text input's placeholder against the room it has: > 0 means it is cut.
PLACEHOLDER_OVERFLOW = """els => els.map(input => {
    const style = getComputedStyle(input);
    const context = document.createElement('canvas').getContext('2d');
    context.font = style.font;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return [input.placeholder, context.measureText(input.placeholder).width - room];
})"""


def sweep_runs(home: Path) -> list[str]:
    """Four finished runs of a learning-rate sweep of a CNN, named as a sweep from Build names
    them, recorded straight into the server's store (no worker trains them)."""
    spec = get_preset("lenet").spec
    ids = []
    with SQLiteRunStore(home) as store:
        for index, (lr, top) in enumerate(((0.0001, 0.85), (0.001, 0.95), (0.01, 0.93), (0.1, 0.11))):
            files = home / f"narrow-{index}"
            files.mkdir()
            run = store.add_finished_run(f"{SWEPT} · lr={lr}", "mnist",
                                         spec.with_compile(learning_rate=lr).to_dict(), files,
                                         metrics={"test_accuracy": top - 0.01, "wall_seconds": 40.0 + index})
            store.log_metrics(run.id, [MetricPoint("epoch", epoch, 40, name, value, 100.0 + epoch) for epoch in range(3)
                                       for name, value in (("val_accuracy", top - 0.03 * (2 - epoch)),
                                                           ("accuracy", top), ("val_loss", 1 - top),
                                                           ("loss", 1 - top))])
            ids.append(run.id)
    return ids


@pytest.mark.parametrize("width,height", [(1024, 768), (1440, 900)])
def test_compare_shows_what_differs_at_1024_and_1440(app_server, page, width, height):
    url, home = app_server
    with SQLiteRunStore(home) as store:  # the server is shared by the browser tests: seeded once
        ids = [run.id for run in store.list_runs() if run.name.startswith(f"{SWEPT} · lr=")] or sweep_runs(home)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{url}/compare?runs={','.join(ids)}")
    page.get_by_role("heading", name="4 runs").wait_for()
    settle(page)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.locator("td").first.wait_for(state="attached")  # the grid draws on a canvas
    screenshot(page, f"compare-{width}")
    # The grid puts only the columns in view into its accessible table: these must be among them.
    headers = table.locator("th").evaluate_all("els => els.map(e => e.textContent)")
    assert headers[:4] == ["Name", "Status", "Val acc (best)", "Test acc"]
    names = table.locator("td").evaluate_all("els => els.map(e => e.textContent)")[::len(headers)]
    ours = sorted(name for name in names if SWEPT in name)  # (the other browser tests' runs are listed too)
    assert ours == sorted(f"lr={lr} · {SWEPT}" for lr in ("0.0001", "0.001", "0.01", "0.1"))  # what differs leads
    cut = [(text, over) for text, over in page.locator('[data-testid="stMultiSelect"] input, '
                                                       '[data-testid="stTextInput"] input[placeholder]')
           .evaluate_all(PLACEHOLDER_OVERFLOW) if text and over > 0]
    assert not cut, f"filters cut short: {cut}"
    tabs = page.locator('[role="tablist"]').first
    assert tabs.evaluate("e => e.scrollWidth <= e.clientWidth"), "the tab labels scroll sideways"
    page.get_by_role("tab", name="Baseline and what differs").click()
    delta = page.locator('[data-testid="stDataFrame"]').nth(1)
    delta.locator("th", has_text="Val acc (best)").wait_for(state="attached")
    assert delta.locator("th").evaluate_all("els => els.map(e => e.textContent)")[:3] == [
        "Name", "Val acc (best)", "Test acc"]
    assert delta.locator("td").first.text_content().startswith("lr=")
