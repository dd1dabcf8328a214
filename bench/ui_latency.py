"""What a user waits for on the Train page, timed in a real browser, at rest and with a run training.

Each repetition, in Debian's chromium driven by Playwright against a real `streamlit run`:
- click "Train this model" on Build → the Train page shown, and the first point drawn on its chart
  (goal <= 1.5 s);
- a refresh while it trains → the chart back with its points (goal <= 2 s);
- Stop → the badge says STOPPED (goal <= 2 s);
- Resume → the badge says RUNNING (goal <= 2 s).

With `--beside`, a second training run (`python -m pipelines train`, in a store of its own) takes
the cores meanwhile, as a run does on a laptop. Before each click on Train the bench waits, as a
user would have, for the warm spare worker to be idle, and before Stop for the spare that keeps
beside a training run. Medians over the repetitions; each
repetition's figures are printed too. It is a measurement, not a test: it always exits 0.

    PYTHONPATH=. .venv/bin/python bench/ui_latency.py [--reps 3] [--beside] [--data-dir ../shared/datasets]
"""
from __future__ import annotations

import argparse
import os
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

from bench.browser_server import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from pipelines.execution.registry import WorkerRegistry  # noqa: E402

EPOCHS = 30
GOALS = {"Train page shown": 1.5, "first point": 1.5, "refresh -> chart": 2.0, "stop -> STOPPED": 2.0, "resume -> RUNNING": 2.0}
CHART_POINTS = """() => {
  const plot = document.querySelector('.st-key-train_chart .js-plotly-plot');
  if (!plot || !plot.data) return 0;
  const count = (x) => {
    if (!x) return 0;
    if (x.length !== undefined) return x.length;
    const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1}[x.dtype] || 8;
    return x.bdata ? Math.floor(atob(x.bdata).length / size) : 0;
  };
  return plot.data.reduce((n, trace) => n + count(trace.x), 0);
}"""
BADGE = """(word) => [...document.querySelectorAll('[data-testid="stMarkdownContainer"] span, [data-testid="stBadge"]')]
  .some(e => e.innerText.trim() === word)"""


def start(home: Path, data_dir: str) -> tuple[subprocess.Popen, str]:
    return start_server({**os.environ, "LAYERLAB_HOME": str(home), "LAYERLAB_DATA_DIR": data_dir,
                         "PYTHONPATH": str(REPO_ROOT)}, home)


def train_beside(data_dir: str) -> subprocess.Popen:
    """A long CLI run in a store of its own: it only takes the cores, as a run does on a laptop."""
    home = tempfile.mkdtemp(prefix="layerlab-beside-")
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines", "train", "--dataset", "fashion_mnist", "--preset", "lenet",
         "--epochs", "50", "--home", home],
        cwd=REPO_ROOT, env={**os.environ, "LAYERLAB_DATA_DIR": data_dir, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_idle_spare(home: Path, timeout: float = 180) -> None:
    registry = WorkerRegistry(home)
    deadline = time.monotonic() + timeout
    while not any(w.state == "idle" for w in registry.list()) and time.monotonic() < deadline:
        time.sleep(0.1)


def timed(page, action, condition: str, arg=None, timeout_ms: int = 120_000) -> float:
    start = time.monotonic()
    action()
    page.wait_for_function(condition, arg=arg, timeout=timeout_ms, polling=50)
    return time.monotonic() - start


def one_repetition(page, url: str, home: Path) -> dict[str, float]:
    page.goto(f"{url}/build")
    page.locator(".st-key-build_train button:enabled").first.wait_for(timeout=180_000)
    epochs = page.get_by_label("Epochs", exact=True)
    if epochs.input_value() != str(EPOCHS):  # long enough that the run is still training at Resume
        epochs.fill(str(EPOCHS))
        epochs.press("Enter")
        page.wait_for_function(f"() => [...document.querySelectorAll('.st-key-build_train')].length > 0 && "
                               f"document.body.innerText.includes('{EPOCHS} epochs')", timeout=120_000)
        page.locator(".st-key-build_train button:enabled").first.wait_for(timeout=180_000)
    wait_for_idle_spare(home)
    figures = {}
    clicked = time.monotonic()
    page.locator(".st-key-build_train button").first.click()
    page.wait_for_function("() => location.pathname.endsWith('/train') && document.querySelector("
                           "'.st-key-train_chart')", timeout=120_000, polling=50)
    figures["Train page shown"] = time.monotonic() - clicked
    page.wait_for_function(f"() => ({CHART_POINTS})() > 0", timeout=120_000, polling=50)
    figures["first point"] = time.monotonic() - clicked
    figures["refresh -> chart"] = timed(page, page.reload, f"() => ({CHART_POINTS})() > 0")
    page.wait_for_function(BADGE, arg="RUNNING", timeout=60_000)
    # As a user who watched it train a little: the warm spare is up beside it by then (a Stop
    # within the run's first seconds would meet a Resume that waits for a cold worker).
    wait_for_idle_spare(home)
    figures["stop -> STOPPED"] = timed(page, lambda: page.locator(".st-key-train_stop button").first.click(),
                                       BADGE, "STOPPED")
    page.locator(".st-key-train_resume button").first.wait_for(timeout=60_000)
    figures["resume -> RUNNING"] = timed(page, lambda: page.locator(".st-key-train_resume button").first.click(),
                                         BADGE, "RUNNING")
    page.locator(".st-key-train_stop button:enabled").first.click()
    page.wait_for_function(BADGE, arg="STOPPED", timeout=60_000)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--beside", action="store_true", help="train another run meanwhile")
    parser.add_argument("--data-dir", default=os.environ.get("LAYERLAB_DATA_DIR", str(REPO_ROOT.parent / "shared" / "datasets")))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="layerlab-ui-latency-"))
    server, url = start(home, args.data_dir)
    beside = train_beside(args.data_dir) if args.beside else None
    results: dict[str, list[float]] = {name: [] for name in GOALS}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            for rep in range(args.reps):
                figures = one_repetition(page, url, home)
                print(f"rep {rep + 1}: " + ", ".join(f"{name} {value:.2f} s" for name, value in figures.items()),
                      flush=True)
                for name, value in figures.items():
                    results[name].append(value)
            browser.close()
    finally:
        if beside is not None:
            os.killpg(beside.pid, signal.SIGKILL)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        from pipelines.execution.scheduler import Scheduler, SchedulerSettings
        from pipelines.runs.sqlite_store import SQLiteRunStore

        Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers()
    label = "while another run trains" if args.beside else "at rest"
    print(f"\nmedians over {args.reps} repetition(s), {label} (load {os.getloadavg()[0]:.1f}):")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:<20} {median:5.2f} s  (goal <= {GOALS[name]:.1f} s: {'met' if median <= GOALS[name] else 'NOT met'};"
              f" range {min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
