"""How long a click on Train waits for its first live point (goal: <= 1.5 s with a warm spare).

Each try does what the dashboard does: with one warm spare worker already idle (started by
`ensure_workers(spare=1)`), it queues mlp-128x2 on Fashion-MNIST with `submit_run`, calls
`ensure_workers(spare=1)` as the Build page does after queueing, and then, like the Train page's
live fragment, calls it again every 0.5 s while it polls the store. The latency runs from
`submit_run` returning to the first batch-level point being readable from the store. The
browser's refresh period comes on top of it (up to one period of the fragment, 0.5 s).

A worker trains one run and exits, so every try stops its run at once and waits for a fresh
spare to be idle again before the next. The figure is the median over the tries; each try also
shows where the time went: until a worker claimed the run, until the worker logged the first
point, and until the store returned it. It is a measurement, not a test: it always exits 0.

    PYTHONPATH=. .venv/bin/python bench/first_point.py [--tries 5] [--data-dir /work/shared/datasets]
        [--no-ticks]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pipelines import paths  # noqa: E402  (needs the repo root on sys.path first)
from pipelines.execution.processes import pid_alive  # noqa: E402
from pipelines.execution.scheduler import Scheduler, SchedulerSettings  # noqa: E402
from pipelines.modelspec.presets import get_preset  # noqa: E402
from pipelines.runs.sqlite_store import SQLiteRunStore  # noqa: E402

GOAL_SECONDS = 1.5
TICK_SECONDS = 0.5
POLL_SECONDS = 0.005
SPARE_TIMEOUT_SECONDS = 180
FIRST_POINT_TIMEOUT_SECONDS = 60
WORKER_EXIT_SECONDS = 30


def wait_for_idle_spare(scheduler: Scheduler) -> float:
    """Start a spare if none is there and wait until one is idle; returns the seconds waited."""
    start = time.perf_counter()
    deadline = start + SPARE_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        scheduler.ensure_workers(spare=1)
        workers = scheduler.registry.list()
        if any(w.state == "idle" for w in workers) and not any(w.state == "busy" for w in workers):
            return time.perf_counter() - start
        time.sleep(0.1)
    raise RuntimeError(f"no spare worker became idle within {SPARE_TIMEOUT_SECONDS} s; see {scheduler.log_path}")


def wait_for_exit(pid: int | None) -> None:
    deadline = time.monotonic() + WORKER_EXIT_SECONDS
    while pid and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def measure_once(scheduler: Scheduler, ticks: bool) -> dict[str, float]:
    """One try: queue, wait for the first batch point, stop the run; returns the timings in s
    (`stopped`: from the stop request to the run's STOPPED status in the store)."""
    store = scheduler.store
    spec = get_preset("mlp-128x2").spec
    run = scheduler.submit(spec, "fashion_mnist")
    submitted_wall, submitted = time.time(), time.perf_counter()
    if ticks:
        scheduler.ensure_workers(spare=1)
    next_tick = submitted + TICK_SECONDS
    try:
        while True:
            points, _ = store.get_metrics_since(run.id, 0, kind="batch")
            now = time.perf_counter()
            if points:
                readable = now - submitted
                break
            if now - submitted > FIRST_POINT_TIMEOUT_SECONDS:
                raise RuntimeError(f"no batch point within {FIRST_POINT_TIMEOUT_SECONDS} s")
            if ticks and now >= next_tick:
                scheduler.ensure_workers(spare=1)
                next_tick += TICK_SECONDS
            current = store.get_run(run.id)
            if current.status.is_terminal:
                raise RuntimeError(f"the run ended {current.status.value} before its first point: {current.error}")
            time.sleep(POLL_SECONDS)
        started = store.get_run(run.id)
        asked = time.perf_counter()
        scheduler.stop(run.id, wait=10)
        return {"claimed": started.started_at - submitted_wall,
                "logged": points[0].timestamp - submitted_wall,
                "readable": readable,
                "stopped": time.perf_counter() - asked}
    finally:
        worker_pid = store.get_run(run.id).worker_pid
        if store.get_run(run.id).status.is_active:
            scheduler.stop(run.id, wait=10)
        wait_for_exit(worker_pid)


def benchmark(args: argparse.Namespace) -> None:
    print(f"mlp-128x2 on fashion_mnist, {args.tries} tries, "
          f"{'with' if args.ticks else 'without'} the page's ensure_workers ticks; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    home = Path(tempfile.mkdtemp(prefix="layerlab-first-point-")).resolve()
    store = SQLiteRunStore(home)
    scheduler = Scheduler(store, SchedulerSettings(data_dir=args.data_dir))
    latencies = []
    try:
        for attempt in range(1, args.tries + 1):
            waited = wait_for_idle_spare(scheduler)
            time.sleep(args.settle)
            try:
                timings = measure_once(scheduler, args.ticks)
            except RuntimeError as exc:
                print(f"try {attempt}: failed: {exc}", flush=True)
                continue
            latencies.append(timings["readable"])
            print(f"try {attempt}/{args.tries}: first point readable after {timings['readable']:.3f} s "
                  f"(claimed {timings['claimed']:.3f} s, logged {timings['logged']:.3f} s; "
                  f"stop request to STOPPED {timings['stopped']:.3f} s; "
                  f"spare was ready after {waited:.1f} s)", flush=True)
    finally:
        scheduler.end_workers()
        store.close()
        shutil.rmtree(home, ignore_errors=True)
    if latencies:
        median = statistics.median(latencies)
        verdict = "met" if median <= GOAL_SECONDS else "NOT met"
        print(f"median first-point latency over {len(latencies)} tries: {median:.3f} s "
              f"(min {min(latencies):.3f}, max {max(latencies):.3f}); goal <= {GOAL_SECONDS} s: {verdict}")
    else:
        print(f"no try measured a first point; goal <= {GOAL_SECONDS} s: unknown")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Latency from queueing a run to its first live point.")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--data-dir", help="the dataset folder (default: $LAYERLAB_DATA_DIR)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to leave an idle spare alone before queueing (default 1)")
    parser.add_argument("--no-ticks", dest="ticks", action="store_false",
                        help="do not call ensure_workers while waiting, as if no page were open")
    args = parser.parse_args(argv)
    chosen = paths.data_dir(args.data_dir)
    if chosen is None:
        parser.error("no dataset folder: pass --data-dir or set LAYERLAB_DATA_DIR")
    args.data_dir = str(chosen.resolve())
    if args.tries < 1:
        parser.error(f"--tries must be positive. Received: tries={args.tries}")
    benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
