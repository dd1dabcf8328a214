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
EXECUTORS = ("local", "ray")  # who trains a run: a local worker process, or a task on a Ray cluster
_RUN_ID_PATTERN = re.compile(r"[0-9a-f]{10}")
RUN_ID_PREFIX_PATTERN = re.compile(r"[0-9a-f]{4,10}")
MAX_NAME_CHARS = 200
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_NOTE_CHARS = 10_000


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
    # For comparing runs: the user's labels, and what the run belongs to.
    tags: tuple[str, ...] = ()
    note: str = ""
    sweep_id: str | None = None  # the sweep that queued it
    sweep_settings: dict = dataclasses.field(default_factory=dict)  # its combination, e.g. {"lr": 0.001}
    repeat_group: str | None = None  # runs of one setting repeated with different seeds share it
    seed: int | None = None  # the spec's fit seed, the one thing repeats of a group differ in
    executor: str = "local"  # one of EXECUTORS

    @property
    def model_spec(self) -> ModelSpec:
        """The spec the run trains, as a ModelSpec (the store keeps it as plain JSON data)."""
        return ModelSpec.from_dict(self.spec)


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run a sweep will queue: what `RunStore.create_sweep` takes for each of its runs."""

    name: str
    spec: dict
    total_epochs: int = 0
    sweep_settings: dict = dataclasses.field(default_factory=dict)
    repeat_group: str | None = None
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One spec trained over every combination of a few settings (and seeds): a group of runs.

    `axes` are (setting, values) pairs as the CLI's `--vary` names them (`lr`, `units@2`); the runs
    themselves are the store's runs whose `sweep_id` is this id."""

    id: str
    name: str
    dataset: str
    spec: dict  # the spec every combination starts from
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    repeats: int
    created_at: float
    executor: str = "local"
    cancelled_at: float | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


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


def validate_sweep_id(sweep_id: Any) -> str:
    """Return `sweep_id` if it is well formed (sweep ids look like run ids and name files too)."""
    if not isinstance(sweep_id, str) or not _RUN_ID_PATTERN.fullmatch(sweep_id):
        raise RunNotFoundError(
            f"Sweep id must be 10 hexadecimal characters. Received: sweep_id={sweep_id!r}"
        )
    return sweep_id


def clean_name(name: Any) -> str:
    """A run's new name, stripped; LayerlabError if it is empty, too long or not one line."""
    if not isinstance(name, str) or not name.strip():
        raise LayerlabError(f"A run's name must be a non-empty text. Received: name={name!r}")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or any(char in name for char in "\r\n"):
        raise LayerlabError(f"A run's name must be one line of at most {MAX_NAME_CHARS} characters. "
                            f"Received: {len(name)} characters")
    return name


def clean_tags(tags: Any) -> tuple[str, ...]:
    """Tags stripped, empty ones dropped, duplicates (ignoring case) kept once, in the order given."""
    if isinstance(tags, str) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise LayerlabError(f"Tags must be a list of texts. Received: tags={tags!r}")
    kept: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, str):
            raise LayerlabError(f"A tag must be a text. Received: {tag!r}")
        tag = tag.strip()
        if len(tag) > MAX_TAG_CHARS or any(char in tag for char in ",\r\n"):
            raise LayerlabError(f"A tag is at most {MAX_TAG_CHARS} characters, without commas or line breaks. "
                                f"Received: {tag[:MAX_TAG_CHARS + 10]!r}")
        if tag:
            kept.setdefault(tag.lower(), tag)
    if len(kept) > MAX_TAGS:
        raise LayerlabError(f"A run takes at most {MAX_TAGS} tags. Received: {len(kept)}")
    return tuple(kept.values())


def clean_note(note: Any) -> str:
    """A note, trailing space stripped; LayerlabError if it is not text or too long."""
    if not isinstance(note, str):
        raise LayerlabError(f"A note must be a text. Received: note={note!r}")
    note = note.rstrip()
    if len(note) > MAX_NOTE_CHARS:
        raise LayerlabError(f"A note is at most {MAX_NOTE_CHARS:,} characters. Received: {len(note):,}")
    return note


def spec_seed(spec: dict) -> int | None:
    """The fit seed a spec (plain JSON data) trains with, if it names one."""
    fit = spec.get("fit")
    seed = fit.get("seed") if isinstance(fit, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def validate_executor(executor: Any) -> str:
    if executor not in EXECUTORS:
        raise LayerlabError(f"`executor` must be one of: {', '.join(EXECUTORS)}. Received: executor={executor!r}")
    return executor

