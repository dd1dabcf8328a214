"""Sweeps as runs: the runs a sweep plans, how far it has got ("k of n done", an ETA), its best run,
and how long it should take before it starts. Pure functions of specs, runs and their points.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.errors import SpecError
from pipelines.modelspec.describe import architecture, rate_text
from pipelines.modelspec.spec import OPTIMIZERS, ModelSpec
from pipelines.modelspec.sweep import Axis, expand
from pipelines.runs.drafts import MAX_RUN_NAME
from pipelines.runs.entities import MetricPoint, PlannedRun, Run, RunStatus

# Training examples per epoch before the validation split, where no run has measured it yet.
STANDARD_TRAIN_SIZES = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
DEFAULT_SAMPLES_PER_SECOND = 5_000.0  # until a run on this dataset has finished on this machine
DEFAULT_RUN_OVERHEAD_SECONDS = 6.0  # a run's time outside `fit`: start, data, test set, saving


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_text(settings: Mapping[str, Any]) -> str:
    """`lr=0.001, units@2=64`: a combination as the CLI's --vary spells it."""
    return ", ".join(f"{setting}={_value_text(value)}" for setting, value in settings.items())


def default_sweep_name(spec: ModelSpec, axes: Sequence[Axis]) -> str:
    """What a sweep's runs are called after when the user named none: the model as Build describes
    it ("Conv32-Pool-D10 · adam 1e-3"), without the optimizer or the learning rate when the sweep
    varies them, so that no run's name states a setting it does not train with ("adam 1e-3 ·
    lr=0.0001"). Cut, as Build cuts its default, to the length a run name may have."""
    varied = {axis.setting for axis in axes}
    training = [] if "optimizer" in varied else [OPTIMIZERS[spec.compile.optimizer]["title"].lower()]
    if not varied & {"lr", "learning_rate"}:
        training.append(rate_text(spec.compile.learning_rate))
    name = " · ".join([architecture(spec), *([" ".join(training)] if training else [])])
    return name if len(name) <= MAX_RUN_NAME else name[:MAX_RUN_NAME - 1] + "…"


def plan_runs(spec: ModelSpec, axes: Sequence[Axis], *, repeats: int = 1,
              name: str = "") -> list[tuple[PlannedRun, ModelSpec]]:
    """One run per combination of the axes' values, and per seed when `repeats` > 1 (seeds
    spec.fit.seed, +1, ...; the runs of one combination then share a repeat group). Returns each
    planned run with its spec; SpecError for bad axes (see modelspec.sweep.expand)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 20:
        raise SpecError(f"`repeats` must be an integer from 1 to 20. Received: repeats={repeats!r}")
    if repeats > 1 and any(axis.setting == "seed" for axis in axes):
        raise SpecError("A sweep that varies the seed cannot also repeat each run with other seeds; "
                        "drop the seed axis or set repeats to 1.")
    combos = expand(spec, axes)
    if len(combos) * repeats > 100:
        raise SpecError(f"The sweep makes {len(combos) * repeats:,} runs; the limit is 100.")
    planned = []
    for settings, combo in combos:
        group = uuid.uuid4().hex[:10] if repeats > 1 else None
        for repeat in range(repeats):
            seeded = combo.with_fit(seed=combo.fit.seed + repeat) if repeats > 1 else combo
            label = settings_text(settings) + (f" · seed {seeded.fit.seed}" if repeats > 1 else "")
            run_name = f"{name} · {label}" if name else label
            planned.append((PlannedRun(run_name, seeded.to_dict(), seeded.fit.epochs, dict(settings), group,
                                       seeded.fit.seed), seeded))
    return planned


@dataclasses.dataclass(frozen=True)
class SweepProgress:
    """How far a sweep has got: counts by status, and an ETA once a run has finished."""

    total: int
    done: int  # ended, however (completed, stopped, failed, interrupted)
    completed: int
    failed: int
    stopped: int
    interrupted: int
    running: int
    queued: int
    fraction: float  # of all planned batches, running runs counted by their progress
    eta_seconds: float | None  # None until a run has finished (its wall time is the yardstick)

    @property
    def finished(self) -> bool:
        return self.done == self.total

    def text(self) -> str:
        """`2 of 4 done, 1 running, about 1 min 20 s left`, for a page or the CLI."""
        parts = [f"{self.done} of {self.total} done"]
        if self.running:
            parts.append(f"{self.running} running")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.eta_seconds is not None and not self.finished:
            parts.append(f"about {duration_text(self.eta_seconds)} left")
        return ", ".join(parts)


def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def wall_seconds(run: Run) -> float | None:
    """How long a finished run took: its recorded wall time, else from its start to its end."""
    if "wall_seconds" in run.metrics:
        return run.metrics["wall_seconds"]
    if run.started_at is not None and run.finished_at is not None:
        return max(0.0, run.finished_at - run.started_at)
    return None


def sweep_progress(runs: Sequence[Run], *, parallel: int | None = None) -> SweepProgress:
    """The progress of a sweep's runs. The ETA is the median wall time of its COMPLETED runs times
    the work left (queued runs, and what running ones have left), shared by `parallel` slots (by
    default as many as run now, at least 1)."""
    count = {status: sum(1 for run in runs if run.status is status) for status in RunStatus}
    running = [run for run in runs if run.status is RunStatus.RUNNING]
    done = sum(1 for run in runs if run.status.is_terminal)
    total = len(runs)
    fraction = (done + sum(run.progress.fraction for run in running)) / total if total else 1.0
    walls = [w for run in runs if run.status is RunStatus.COMPLETED and (w := wall_seconds(run)) is not None]
    eta = None
    if walls:
        left = count[RunStatus.QUEUED] + sum(1.0 - run.progress.fraction for run in running)
        eta = statistics.median(walls) * left / max(1, parallel or len(running) or 1)
    return SweepProgress(total=total, done=done, completed=count[RunStatus.COMPLETED],
                         failed=count[RunStatus.FAILED], stopped=count[RunStatus.STOPPED],
                         interrupted=count[RunStatus.INTERRUPTED], running=len(running),
                         queued=count[RunStatus.QUEUED], fraction=fraction, eta_seconds=eta)


def epoch_series(points: Sequence[MetricPoint], metric: str) -> list[MetricPoint]:
    """A run's finite epoch values of `metric`, in the order given (a NaN epoch is no one's best)."""
    return [p for p in points if p.kind == "epoch" and p.name == metric and math.isfinite(p.value)]


def best_of(points: Sequence[MetricPoint], metric: str = "val_accuracy") -> tuple[float, int] | None:
    """(the best epoch's value of an accuracy `metric`, that epoch counted from 1); None before a
    finite value is recorded, and for val_accuracy in a run that keeps no validation split."""
    series = epoch_series(points, metric)
    if not series:
        return None
    best = max(series, key=lambda p: p.value)
    return best.value, best.epoch + 1


def ranking_metric(runs: Sequence[Run], points: Mapping[str, Sequence[MetricPoint]]) -> str:
    """What a sweep's runs are ranked by: validation accuracy if any run has some, else training
    accuracy (a sweep of runs without a validation split), which the page and the CLI then name."""
    has_validation = any(best_of(points.get(run.id, ()), "val_accuracy") for run in runs)
    return "val_accuracy" if has_validation else "accuracy"


def best_run(runs: Sequence[Run], points: Mapping[str, Sequence[MetricPoint]]) -> Run | None:
    """The run with the best epoch's accuracy by `ranking_metric` (early stopping makes the last
    epoch's misleading); ties go to the earlier run. None if no run has a value yet."""
    metric = ranking_metric(runs, points)
    scored = [(best[0], -index, run) for index, run in enumerate(runs)
              if (best := best_of(points.get(run.id, ()), metric)) is not None]
    return max(scored, key=lambda item: item[:2])[2] if scored else None


@dataclasses.dataclass(frozen=True)
class SweepEstimate:
    """What a sweep should cost on this machine, before it starts."""

    runs: int
    seconds: float
    samples_per_second: float
    measured_runs: int  # finished runs the rate comes from; 0: the default rate
    basis: str  # in words, for the page: where the figure comes from

    def text(self) -> str:
        return f"{self.runs} runs, about {duration_text(self.seconds)} ({self.basis})"


def measured_speed(runs: Sequence[Run], dataset: str, spec: ModelSpec | None = None
                   ) -> tuple[float, float, int, str]:
    """(samples/s, seconds outside fit per run, how many runs measured it, which runs) from this
    machine's finished runs on `dataset`: those with the same layers as `spec` if there are any,
    else any model on that dataset; the defaults if none."""
    finished = [run for run in runs if run.dataset == dataset and run.status is RunStatus.COMPLETED
                and run.metrics.get("samples_per_second")]
    same = [run for run in finished if spec is not None and run.spec.get("layers") == spec.to_dict()["layers"]]
    chosen, which = (same, "the same model") if same else (finished, "any model")
    if not chosen:
        return DEFAULT_SAMPLES_PER_SECOND, DEFAULT_RUN_OVERHEAD_SECONDS, 0, "a default rate: no run on " \
            f"{dataset} has finished on this machine yet"
    rate = statistics.median(run.metrics["samples_per_second"] for run in chosen)
    outside = [run.metrics["wall_seconds"] - run.metrics["fit_seconds"] for run in chosen
               if "wall_seconds" in run.metrics and "fit_seconds" in run.metrics and not run.resume_count]
    overhead = statistics.median(outside) if outside else DEFAULT_RUN_OVERHEAD_SECONDS
    return rate, max(0.0, overhead), len(chosen), (
        f"{rate:,.0f} samples/s measured by {len(chosen)} finished run(s) of {which} on {dataset}")


def estimate_sweep(specs: Sequence[ModelSpec], dataset: str, n_train: int | None, runs: Sequence[Run], *,
                   parallel: int = 1) -> SweepEstimate:
    """Seconds the runs of `specs` should take on `dataset` (n_train examples before the validation
    split; the standard size when None), shared by `parallel` slots, at this machine's measured rate."""
    n_train = n_train or STANDARD_TRAIN_SIZES.get(dataset, 50_000)
    rate, overhead, measured, basis = measured_speed(runs, dataset, specs[0] if specs else None)
    seconds = sum(spec.fit.epochs * n_train * (1.0 - spec.fit.validation_split) / rate + overhead
                  for spec in specs)
    return SweepEstimate(runs=len(specs), seconds=seconds / max(1, parallel), samples_per_second=rate,
                         measured_runs=measured, basis=basis)


def elapsed_seconds(runs: Sequence[Run], now: float | None = None) -> float:
    """From the sweep's first start to its last end (or now, while it runs)."""
    starts = [run.started_at for run in runs if run.started_at is not None]
    if not starts:
        return 0.0
    now = time.time() if now is None else now
    ends = [run.finished_at or now for run in runs if run.started_at is not None]
    return max(ends) - min(starts)
