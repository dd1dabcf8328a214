"""A user opens a finished run on the Train page, sees its script checked, downloads it, and runs it
as it is, outside Layerlab: it trains the same model to about the same test accuracy.

Real server, real browser (Debian's chromium through Playwright), a run trained by the CLI into the
server's store beforehand.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from pipelines.io.export import CHECKED_TEXT
from tests.e2e.conftest import REPO, screenshot
from tests.e2e.waiting import settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def mlp_run(app_server, shared_datasets):
    """mlp-128x2 trained for 1 epoch on the MNIST sample by the CLI, into the server's store."""
    _url, home = app_server
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "train", "--dataset", "mnist", "--preset", "mlp-128x2", "--epochs", "1",
         "--name", "export me", "--home", str(home)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "LAYERLAB_DATA_DIR": str(shared_datasets), "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "COMPLETED", summary
    return summary


def test_download_the_script_of_a_run_and_run_it(app_server, page, mlp_run, shared_datasets, tmp_path):
    url, _home = app_server
    page.goto(f"{url}/train?run={mlp_run['run_id']}")
    # The worker checked the script when the run completed: the badge is there without a click.
    page.get_by_text(CHECKED_TEXT).wait_for()
    assert page.locator(".st-key-train_export_check").count() == 0
    settle(page)
    screenshot(page, "export-train-page")

    with page.expect_download() as download_info:
        page.locator(".st-key-train_export_script button").first.click()
    download = download_info.value
    assert re.fullmatch(rf"train_export_me_{mlp_run['run_id']}\.py", download.suggested_filename)
    script = tmp_path / download.suggested_filename
    download.save_as(script)
    source = script.read_text()
    assert "keras.layers.Dense(units=128, activation='relu', name='dense_1')" in source
    assert not re.search(r"^\s*(import|from)\s+(pipelines|components|dashboard)\b", source, re.M)

    # As it is, in a fresh Python without Layerlab on its path, offline with --data.
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, str(script), "--data", str(shared_datasets / "mnist-sample" / "mnist.npz"),
                             "--epochs", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"^test accuracy: ([0-9.]+)$", result.stdout, re.M).group(1))
    assert accuracy == pytest.approx(mlp_run["test_accuracy"], abs=0.05)
