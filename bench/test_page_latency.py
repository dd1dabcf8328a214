"""Test page: mouse-up on the drawing pad -> new probabilities drawn (goal: <= 0.6 s, also while a run trains).

Starts the dashboard on a free port with a store of its own, trains LeNet for 2 epochs through the
CLI into it (or uses `--home` with a finished run), opens the Test page in Debian's Chromium and
draws `--strokes` short strokes. Each stroke is timed in the browser, from the mouseup event to the
first animation frame whose probability chart shows new numbers, and split where the time went:
- canvas: mouseup until the canvas component sends the drawing (its own 200 ms debounce and PNG);
- server: that send until the last message of the answer arrived (the rerun and its deltas);
- drawn: the last message until the new bars are on screen (React, Plotly).
`--while-training` first starts a long mlp-128x2 run on Fashion-MNIST through the CLI, as a user's
own training beside the page would, and stops it at the end. It is a measurement, not a test: it
prints medians and always exits 0.

    LAYERLAB_DATA_DIR=../shared/datasets PYTHONPATH=. .venv/bin/python bench/test_page_latency.py \
        [--strokes 12] [--while-training] [--home HOME --run RUN]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import browser_server  # noqa: E402  (needs the repo root on sys.path first)
from pipelines.runs.entities import RunStatus  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402

CHROMIUM = browser_server.CHROMIUM
GOAL_SECONDS = 0.6
TRAINING_EPOCHS = 500  # far more than a benchmark lasts: it is stopped at the end

# In the page before Streamlit loads: the time of the last mouseup, and of every WebSocket message
# out (a widget's value) and in (the server's answer).
HOOKS = """
window.__bench = {up: 0, sent: [], received: []};
document.addEventListener('mouseup', () => { window.__bench.up = performance.now(); }, true);
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) { window.__bench.sent.push(performance.now()); return send.call(this, data); };
const Native = WebSocket;
window.WebSocket = function (...args) {
  const socket = new Native(...args);
  socket.addEventListener('message', () => window.__bench.received.push(performance.now()));
  return socket;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""
PROBABILITIES = """() => {
  const plot = document.querySelector('.st-key-test_top_class_chart .js-plotly-plot');
  return plot && plot.data ? JSON.stringify(plot.data[0].x) : null;
}"""
# Resolves on the first frame whose chart differs from `before`, with the stroke's timings in ms.
TIME_STROKE = """async (before) => {
  const read = %s;
  while (read() === before) await new Promise(resolve => requestAnimationFrame(resolve));
  const drawn = performance.now(), b = window.__bench;
  const sent = b.sent.find(t => t >= b.up) ?? b.up;
  const answered = b.received.filter(t => t >= sent && t <= drawn);
  const last = answered.length ? answered[answered.length - 1] : sent;
  return {total: drawn - b.up, canvas: sent - b.up, server: last - sent, drawn: drawn - last};
}""" % PROBABILITIES
IDLE = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'notRunning'"""


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "LAYERLAB_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}


def train_lenet(home: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "pipelines", "train", "--dataset", "mnist", "--preset", "lenet",
                             "--epochs", "2", "--home", str(home)],
                            cwd=REPO_ROOT, env=environment(home), capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["run_id"]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    return browser_server.start_server(environment(home), home)


def start_training(home: Path) -> subprocess.Popen:
    """A long run through the CLI, returned once it has logged its first batch."""
    with SQLiteRunStore(home) as store:
        known = {run.id for run in store.list_runs()}
        training = subprocess.Popen([sys.executable, "-m", "pipelines", "train", "--dataset", "fashion_mnist",
                                     "--preset", "mlp-128x2", "--epochs", str(TRAINING_EPOCHS), "--home", str(home)],
                                    cwd=REPO_ROOT, env=environment(home), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and training.poll() is None:
            running = [run for run in store.list_runs([RunStatus.RUNNING]) if run.id not in known]
            if running and store.get_metrics_since(running[0].id, 0, kind="batch")[0]:
                return training
            time.sleep(0.2)
    os.killpg(training.pid, signal.SIGINT)
    raise RuntimeError("the training run did not log a batch within 120 s")


def strokes(page, url: str, run_id: str, count: int) -> list[dict[str, float]]:
    page.add_init_script(HOOKS)
    page.goto(f"{url}/test?run={run_id}")
    page.get_by_text("Draw a digit").wait_for(timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)
    page.wait_for_function(f"() => ({PROBABILITIES})() !== null", timeout=60_000)
    canvas = page.locator(".st-key-test_canvas_0 canvas").last
    canvas.wait_for()
    page.wait_for_timeout(1000)  # the canvas library sets itself up after it is mounted
    box = canvas.bounding_box()
    timings = []
    for index in range(count):
        x = box["x"] + 50 + (index * 37) % 180
        before = page.evaluate(PROBABILITIES)
        page.mouse.move(x, box["y"] + 40)
        page.mouse.down()
        for step in range(1, 13):
            page.mouse.move(x + step, box["y"] + 40 + step * 16)
        page.mouse.up()
        timings.append(page.evaluate(TIME_STROKE, before))
        page.wait_for_function(IDLE, timeout=60_000)
        page.wait_for_timeout(300)
    return timings


def report(label: str, timings: list[dict[str, float]]) -> None:
    def median(part: str) -> float:
        return statistics.median(t[part] for t in timings) / 1000

    totals = sorted(t["total"] / 1000 for t in timings)
    verdict = "met" if median("total") <= GOAL_SECONDS else "NOT met"
    print(f"{label}: mouse-up -> probabilities median {median('total'):.3f} s (min {totals[0]:.3f}, "
          f"max {totals[-1]:.3f}, {len(timings)} strokes); canvas {median('canvas'):.3f} s, "
          f"server {median('server'):.3f} s, drawn {median('drawn'):.3f} s; goal <= {GOAL_SECONDS} s: {verdict}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=12)
    parser.add_argument("--while-training", action="store_true", help="with a long run training beside the page")
    parser.add_argument("--home", type=Path, help="a Layerlab home holding a finished run (default: a new one)")
    parser.add_argument("--run", help="the finished run to draw for (with --home)")
    args = parser.parse_args(argv)
    if args.strokes < 1:
        parser.error(f"--strokes must be positive. Received: strokes={args.strokes}")
    if (args.home is None) != (args.run is None):
        parser.error("--home and --run go together")
    from playwright.sync_api import sync_playwright

    home = args.home or Path(tempfile.mkdtemp(prefix="layerlab-test-page-"))
    run_id = args.run or train_lenet(home)
    server, url = start_server(home)
    training = None
    try:
        training = start_training(home) if args.while_training else None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            timings = strokes(page, url, run_id, args.strokes)
            browser.close()
        load = os.getloadavg()[0]
        if training is not None and training.poll() is not None:
            print(f"the training run ended before the strokes did (exit {training.returncode}): "
                  "the figures below are not all under its load", flush=True)
        report(f"{'while training' if training else 'at rest'} (load {load:.2f}, {os.cpu_count()} cores)", timings)
    finally:
        if training is not None:
            os.killpg(training.pid, signal.SIGINT)  # the CLI stops its run on Ctrl-C
            training.wait(timeout=60)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
