"""N browser sessions watching one training run: what each costs the server.

Starts a Streamlit server on a fresh home, queues a long mlp-128x2 run on Fashion-MNIST, and for
N = 1, 4, 8 sessions (one Debian chromium, one context per session) opens /train?run=ID in each and
measures, over a fixed window:
- time from opening the page to the first curve point drawn, per session (p50 / p95);
- the interval between chart updates in each session (p50 / p95; the page refreshes every 0.5 s);
- the server's CPU use while watching (share of one core) and its resident memory, sampled every
  second (start / max / end). The browser, the server and the training worker share the machine.

    PYTHONPATH=. LAYERLAB_DATA_DIR=../shared/datasets .venv/bin/python bench/load.py [--sessions 1 4 8]
        [--compare-with ../layerlab-before]   # a worktree of an older commit, measured side by side
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import browser_server  # noqa: E402
from pipelines import paths  # noqa: E402
from pipelines.execution.processes import child_env  # noqa: E402
from pipelines.execution.scheduler import Scheduler, SchedulerSettings  # noqa: E402
from pipelines.modelspec.presets import get_preset  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402

CHROMIUM, CHROMIUM_ARGS = browser_server.CHROMIUM, browser_server.CHROMIUM_ARGS
# Records, in the page, when the chart's point count changes (checked every 50 ms).
COUNT = """(x) => {  // an array, or Plotly's base64 encoding of a numpy array ({dtype, bdata})
    if (!x) return 0;
    if (x.length !== undefined) return x.length;
    const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1}[x.dtype] || 8;
    return x.bdata ? Math.floor(atob(x.bdata).length / size) : 0;
  }"""
WATCH_CHART = """() => {
  window.__updates = [];
  let last = -1;
  const count = """ + COUNT + """;
  setInterval(() => {
    const plot = document.querySelector('.st-key-train_chart .js-plotly-plot');
    const n = plot && plot.data ? plot.data.reduce((s, t) => s + count(t.x), 0) : 0;
    if (n !== last) { last = n; if (n > 0) window.__updates.push(performance.now()); }
  }, 50);
}"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds() -> float:
    """CPU time of every chromium process so far (the browser shares the machine with the server)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"chromium" in (proc / "cmdline").read_bytes():
                total += cpu_seconds(int(proc.name))
        except OSError:
            continue
    return total


def start_server(home: Path, data_dir: Path, root: Path = REPO_ROOT) -> tuple[subprocess.Popen, str]:
    env = child_env({"LAYERLAB_HOME": str(home), "LAYERLAB_DATA_DIR": str(data_dir), "PYTHONPATH": str(root)})
    return browser_server.start_server(env, home, root)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")


def measure(browser, url: str, run_id: str, sessions: int, window: float, server_pid: int) -> dict:
    """Open `sessions` pages on the run, then watch them for `window` seconds."""
    rss, stop = [rss_mb(server_pid)], threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            rss.append(rss_mb(server_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    contexts = [browser.new_context(viewport={"width": 1440, "height": 1000}) for _ in range(sessions)]
    pages = [context.new_page() for context in contexts]
    opened = []
    for page in pages:
        page.goto(f"{url}/train?run={run_id}")
        opened.append(time.monotonic())
    first = []
    for page, at in zip(pages, opened):
        page.wait_for_selector(".st-key-train_chart .js-plotly-plot", timeout=180_000)
        page.wait_for_function("() => { const p = document.querySelector('.st-key-train_chart .js-plotly-plot');"
                               " const count = " + COUNT + ";"
                               " return p && p.data && p.data.some(t => count(t.x) > 0); }", timeout=180_000)
        first.append(time.monotonic() - at)
        page.evaluate(WATCH_CHART)
    cpu_before, browser_before, watched_from = cpu_seconds(server_pid), browser_cpu_seconds(), time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - watched_from
    server_cpu = (cpu_seconds(server_pid) - cpu_before) / elapsed
    browser_cpu = (browser_cpu_seconds() - browser_before) / elapsed
    intervals = []
    for page in pages:
        stamps = page.evaluate("() => window.__updates")
        intervals += [(b - a) / 1000 for a, b in zip(stamps, stamps[1:])]
    stop.set()
    sampler.join()
    for context in contexts:
        context.close()
    return {"first": first, "intervals": intervals, "rss": rss, "server_cpu": server_cpu, "browser_cpu": browser_cpu}


def report(label: str, sessions: int, figures: dict) -> None:
    first, intervals, rss = figures["first"], figures["intervals"], figures["rss"]
    print(f"{label}{sessions} session(s): first curve point p50 {statistics.median(first):.2f} s, "
          f"p95 {percentile(first, 0.95):.2f} s; chart update interval p50 "
          f"{percentile(intervals, 0.5):.2f} s, p95 {percentile(intervals, 0.95):.2f} s "
          f"({len(intervals)} updates); server CPU {figures['server_cpu']:.0%} of a core, browser "
          f"{figures['browser_cpu']:.0%}; "
          f"server RSS {rss[0]:.0f} -> max {max(rss):.0f} -> {rss[-1]:.0f} MB",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N sessions watching one training run.")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--window", type=float, default=20.0, help="seconds each N is watched")
    parser.add_argument("--data-dir")
    parser.add_argument("--compare-with", type=Path,
                        help="another checkout (e.g. a git worktree of an older commit) whose server is "
                             "measured side by side, on the same run, before this one at each N")
    args = parser.parse_args(argv)
    data_dir = paths.data_dir(args.data_dir)
    if data_dir is None:
        parser.error("set LAYERLAB_DATA_DIR or --data-dir")
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="layerlab-load-")).resolve()
    store = SQLiteRunStore(home)
    scheduler = Scheduler(store, SchedulerSettings(data_dir=data_dir.resolve()))
    servers = [("", *start_server(home, data_dir.resolve()))]
    if args.compare_with:
        servers.insert(0, (f"[{args.compare_with.name}] ", *start_server(home, data_dir.resolve(),
                                                                          args.compare_with.resolve())))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    run = None
    try:
        spec = get_preset("mlp-128x2").spec.with_fit(epochs=200)
        run = scheduler.submit(spec, "fashion_mnist", name="load benchmark")
        scheduler.ensure_workers()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for sessions in args.sessions:
                for label, server, url in servers:
                    report(label, sessions, measure(browser, url, run.id, sessions, args.window, server.pid))
            browser.close()
    finally:
        if run is not None:
            scheduler.stop(run.id, wait=10)
        for _, server, _ in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        scheduler.end_workers()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
