"""What the run store holds: runs, their status and progress, and their metric points.

Small frozen dataclasses, apart from any store (as MLflow keeps its entities apart from its
tracking store), so pages, the CLI and every store implementation share them.
"""
from __future__ import annotations

import dataclasses
import enum
import re
import uuid
from typing import Any

from pipelines.errors import LayerlabError, RunNotFoundError
from pipelines.modelspec.spec import ModelSpec

METRIC_KINDS = ("batch", "epoch")
_RUN_ID_PATTERN = re.compile(r"[0-9a-f]{10}")
RUN_ID_PREFIX_PATTERN = re.compile(r"[0-9a-f]{4,10}")


class RunStatus(str, enum.Enum):
    """Where a run is in its life: queued, training, or one of four ways of having ended."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"

    def __str__(self) -> str:
        # A str-mixin Enum prints as "RunStatus.QUEUED" in f-strings since Python 3.11.
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def can_resume(self) -> bool:
        """STOPPED and INTERRUPTED runs kept their checkpoints; the others have nothing to resume."""
        return self in (RunStatus.STOPPED, RunStatus.INTERRUPTED)


_TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED}
)


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a run has trained; 0 for anything not yet known."""

    epoch: int = 0
    total_epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0

    @property
    def fraction(self) -> float:
        """The share of all planned batches done, in [0, 1]; 0 while the plan is unknown."""
        if self.total_epochs <= 0:
            return 0.0
        within_epoch = self.step / self.steps_per_epoch if self.steps_per_epoch > 0 else 0.0
        return min(1.0, max(0.0, (self.epoch + within_epoch) / self.total_epochs))


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run as the store last saw it: a snapshot, re-read it to see changes."""

    id: str
    name: str
    status: RunStatus
    dataset: str
    spec: dict
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker_pid: int | None
    error: str | None
    metrics: dict[str, float]
    progress: Progress
    epochs_done: int
    best_epoch: int | None
    stop_requested: bool
    resume_count: int
    stop_requested_at: float | None = None

    @property
    def model_spec(self) -> ModelSpec:
        """The spec the run trains, as a ModelSpec (the store keeps it as plain JSON data)."""
        return ModelSpec.from_dict(self.spec)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How an attempt at a run ended: what `RunStore.finish_run` records."""

    status: RunStatus
    error: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MetricPoint:
    """One logged value. `step` is the batch index for batch points, steps_per_epoch (or 0) for
    epoch points; the store keeps insertion order, which is the order to plot them in."""

    kind: str
    epoch: int
    step: int
    name: str
    value: float
    timestamp: float

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise LayerlabError(
                f"Metric point `kind` must be one of: {', '.join(METRIC_KINDS)}. "
                f"Received: kind={self.kind!r}"
            )


def new_run_id() -> str:
    """10 hex characters: short enough to type, random enough not to collide in one home."""
    return uuid.uuid4().hex[:10]


def validate_run_id(run_id: Any) -> str:
    """Return `run_id` if it is well formed; ids become folder names, so nothing else may pass."""
    if not isinstance(run_id, str) or not _RUN_ID_PATTERN.fullmatch(run_id):
        raise RunNotFoundError(
            f"Run id must be 10 hexadecimal characters. Received: run_id={run_id!r}"
        )
    return run_id

