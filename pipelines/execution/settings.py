"""How runs are executed on this machine: the scheduler's settings, and the one place that reads
them from the environment (so that tests and benchmarks can hand a Scheduler settings directly)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pipelines import paths
from pipelines.errors import RunStateError
from pipelines.execution.speed import SpeedSettings


@dataclasses.dataclass(frozen=True)
class SchedulerSettings:
    """How runs are executed on this machine. Times are in seconds."""

    max_running: int = 1  # runs that train at once; the rest wait in the queue
    data_dir: Path | None = None  # the local dataset folder workers read
    # A RUNNING run's worker (or Ray driver) silent this long is taken for hung, and killed. A dead
    # one is seen at once by its pid; on a loaded 2-core machine a live heartbeat thread can stay
    # silent for several seconds, and 3 s interrupted healthy Ray runs in a test under load.
    heartbeat_timeout: float = 15.0
    starting_grace: float = 120.0  # a starting worker may take this long to import TensorFlow
    idle_seconds: float = 600.0  # a warm spare exits after waiting this long for a run
    stop_grace: float = 5.0  # a stop request not honoured this long after is enforced with SIGKILL
    save_grace: float = 30.0  # ... except while the worker is writing a file: up to this much longer
    startup_seconds: float = 5.0  # a run this young counts as starting (no spare is spawned meanwhile)
    max_failed_starts: int = 3  # workers dying at start in a row before the queue is failed
    speed: SpeedSettings = SpeedSettings()  # batches per call into TensorFlow, XLA: chosen per model unless set
    ray_address: str | None = None  # a Ray cluster for sweeps ("auto": the one `ray start` made here)
    ray_cpus_per_run: float = 1.0  # CPUs each Ray task asks for; the cluster's CPUs bound the runs at once

    def __post_init__(self) -> None:
        if isinstance(self.max_running, bool) or not isinstance(self.max_running, int) or self.max_running < 1:
            raise RunStateError(f"`max_running` must be a positive integer. Received: max_running={self.max_running!r}")
        if not isinstance(self.ray_cpus_per_run, (int, float)) or not self.ray_cpus_per_run > 0:
            raise RunStateError(f"`ray_cpus_per_run` must be a positive number. "
                                f"Received: ray_cpus_per_run={self.ray_cpus_per_run!r}")

    @classmethod
    def from_env(cls, *, data_dir: str | os.PathLike | None = None, **overrides) -> SchedulerSettings:
        """Settings from `LAYERLAB_MAX_RUNNING`, `LAYERLAB_DATA_DIR` (or `data_dir`),
        `LAYERLAB_STEPS_PER_EXECUTION`, `LAYERLAB_JIT_COMPILE`, `LAYERLAB_RAY_ADDRESS` and
        `LAYERLAB_RAY_CPUS_PER_RUN`; `overrides` win over all of them."""
        raw = os.environ.get("LAYERLAB_MAX_RUNNING", "1")
        try:
            max_running = int(raw)
        except ValueError:
            max_running = 0
        if max_running < 1:
            raise RunStateError(f"LAYERLAB_MAX_RUNNING must be a positive integer. Received: {raw!r}")
        raw_cpus = os.environ.get("LAYERLAB_RAY_CPUS_PER_RUN", "1")
        try:
            cpus = float(raw_cpus)
        except ValueError:
            cpus = 0.0
        if not cpus > 0:
            raise RunStateError(f"LAYERLAB_RAY_CPUS_PER_RUN must be a positive number. Received: {raw_cpus!r}")
        chosen = paths.data_dir(data_dir)
        found = {"max_running": max_running, "data_dir": chosen.resolve() if chosen else None,
                 "speed": SpeedSettings.from_env(), "ray_address": os.environ.get("LAYERLAB_RAY_ADDRESS") or None,
                 "ray_cpus_per_run": cpus}
        return cls(**{**found, **overrides})
