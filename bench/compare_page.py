"""The Compare page with many stored runs: server render time, warm, with some selected.

Fills a fresh home with N finished runs (20 epochs of curves each), then renders the Compare page
through Streamlit's AppTest with K runs in `?runs=`: once cold, then R times warm (the same as a
user changing a control). Prints the cold time and the warm median (goal: <= 1.5 s for 200 runs
and 10 selected), then the median after one run changed between renders, as while a run trains
(only that run's row is read again).

    PYTHONPATH=. .venv/bin/python bench/compare_page.py [--runs 200] [--selected 10] [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

GOAL_SECONDS = 1.5


def fill(home: Path, count: int) -> list[str]:
    from pipelines.modelspec.presets import get_preset
    from pipelines.runs.entities import MetricPoint, RunStatus
    from pipelines.runs.sqlite_store import SQLiteRunStore

    spec = get_preset("mlp-128x2").spec
    ids = []
    with SQLiteRunStore(home) as store:
        for i in range(count):
            rate = [1e-4, 1e-3, 1e-2, 1e-1][i % 4]
            run = store.create_run(f"run {i} lr {rate:g}", "fashion_mnist",
                                   spec.with_compile(learning_rate=rate).with_fit(seed=i).to_dict(), total_epochs=20)
            store.claim_next_run(1, 1)
            store.log_metrics(run.id, [MetricPoint("epoch", e, 100, name, 0.5 + e / 50 - (i % 4) / 20, 1000.0 + e)
                                       for e in range(20) for name in ("accuracy", "val_accuracy", "loss", "val_loss")])
            store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": 0.8, "wall_seconds": 30.0})
            ids.append(run.id)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare page render time with many runs.")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--selected", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    if args.runs < args.selected + args.reps or min(args.selected, args.reps) < 1:
        parser.error(f"--runs must be at least --selected + --reps (the changed runs are not selected), and "
                     f"both positive. Received: runs={args.runs}, selected={args.selected}, reps={args.reps}")
    home = Path(tempfile.mkdtemp(prefix="layerlab-compare-"))
    os.environ["LAYERLAB_HOME"] = str(home)
    ids = fill(home, args.runs)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["runs"] = ",".join(ids[: args.selected])
    started = time.perf_counter()
    at.switch_page("views/compare.py").run()
    cold = time.perf_counter() - started
    if at.exception:
        print(f"the page failed: {at.exception}")
        return 1
    warm = []
    for _ in range(args.reps):
        started = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - started)
    changed = []
    from pipelines.runs.sqlite_store import SQLiteRunStore
    for rep in range(args.reps):  # as while a run trains: one run (not selected) changes between renders
        with SQLiteRunStore(home) as store:
            store.set_note(ids[-1 - rep], f"changed {rep}")
        started = time.perf_counter()
        at.run()
        changed.append(time.perf_counter() - started)
    median = statistics.median(warm)
    print(f"{args.runs} runs, {args.selected} selected; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}: cold {cold:.2f} s, warm median {median:.2f} s over {args.reps} "
          f"(min {min(warm):.2f}); goal <= {GOAL_SECONDS} s warm: {'met' if median <= GOAL_SECONDS else 'NOT met'}")
    print(f"after one run changed: median {statistics.median(changed):.2f} s over {args.reps} (cold {cold:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
