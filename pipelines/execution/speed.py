"""How many batches Keras runs per call into TensorFlow (`steps_per_execution`), and whether XLA
compiles the step (`jit_compile`): chosen per model and machine, or fixed by a setting.

Small models on a CPU spend most of a batch in per-call overhead (Python, the callbacks, starting
a TensorFlow function): mlp-128x2 trains about twice as fast with 32 batches per call as with
Keras' default of one, to the same weights. Keras then calls the batch callbacks once per call,
so the recorder sees every Nth batch: N is chosen so that one call lasts at most about
TARGET_CALL_SECONDS (a Stop lands within that, plus Keras' validation pass) and an epoch still
has at least MIN_CALLS_PER_EPOCH calls (batch points keep coming every few batches). The cost of
a batch is estimated from the model's floating-point work and the machine's cores, at half the
rate measured on the 2-core development machine under load (about 12 GFLOP/s a core for
mlp-128x2; LeNet's convolutions ran at about 20): over-estimating a batch only gives a smaller N.
With a target of 0.15 s LeNet got 10 batches per call; 16 to 32 trained its epochs about 3 %
faster than 8 (and 10 % faster than 4), so the target is 0.3 s, which still keeps a Stop well
within 2 s: LeNet's real calls of 21 batches last about 80 ms. XLA stays off on a CPU
(Keras' own "auto"): measured there it made mlp-128x2 and LeNet 2 to 5 times slower, counting
its compile time.

A worker also chooses how many threads TensorFlow splits one operation over, before TensorFlow
starts (TF_NUM_INTRAOP_THREADS): one for a model without convolutions, whose matrix products are
too small to split (mlp-128x2 trained 25 to 45 % faster with one, mlp-512 10 %, on 2 busy cores,
to the same weights), and TensorFlow's default (all cores) for convolutional ones (LeNet was 35 %
slower with one). A Ray task gets as many as the CPUs it asks for.

    LAYERLAB_STEPS_PER_EXECUTION   "auto" (default) or a positive integer
    LAYERLAB_JIT_COMPILE           "auto" (default: XLA only with a GPU), "1" or "0"
    LAYERLAB_INTRA_OP_THREADS      "auto" (default) or a positive integer
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

from pipelines.errors import LayerlabError

TARGET_CALL_SECONDS = 0.3  # estimated; real calls were 3 to 4 times shorter
MIN_CALLS_PER_EPOCH = 8
MAX_STEPS_PER_EXECUTION = 32  # beyond it nothing was faster, and the points thin out
FLOPS_PER_CORE = 6e9  # floating-point operations per second and core: half of what was measured
STEP_OVERHEAD_SECONDS = 3e-4  # per batch even inside one call: the optimizer's update of every weight
CONVOLUTIONS = frozenset({"Conv2D"})  # layer types whose work is worth splitting over cores


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    """Fixed values, or None to choose them per model: what the environment's settings say."""

    steps_per_execution: int | None = None
    jit_compile: bool | None = None
    intra_op_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps_per_execution", "intra_op_threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise LayerlabError(f"`{name}` must be a positive integer or None (auto). Received: {name}={value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpeedSettings:
        environ = os.environ if environ is None else environ
        raw_jit = environ.get("LAYERLAB_JIT_COMPILE", "auto").strip().lower()
        jit = {"": None, "auto": None, "1": True, "true": True, "0": False, "false": False}.get(raw_jit, "bad")
        if jit == "bad":
            raise LayerlabError(f"LAYERLAB_JIT_COMPILE must be 'auto', '1' or '0'. Received: {raw_jit!r}")
        return cls(steps_per_execution=_count_or_auto(environ, "LAYERLAB_STEPS_PER_EXECUTION"), jit_compile=jit,
                   intra_op_threads=_count_or_auto(environ, "LAYERLAB_INTRA_OP_THREADS"))

    def to_args(self) -> list[str]:
        """The worker's command-line arguments that carry these settings."""
        args = []
        if self.steps_per_execution is not None:
            args += ["--steps-per-execution", str(self.steps_per_execution)]
        if self.jit_compile is not None:
            args += ["--jit-compile", "1" if self.jit_compile else "0"]
        return args


def _count_or_auto(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "auto").strip().lower()
    if raw in ("", "auto"):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise LayerlabError(f"{name} must be 'auto' or a positive integer. Received: {raw!r}")
    return value


def intra_op_threads(spec: Mapping | None, speed: SpeedSettings) -> int | None:
    """Threads per TensorFlow operation for a worker about to train `spec` (plain JSON data): the
    setting if given, else 1 for a model without convolutions; None: TensorFlow's default."""
    if speed.intra_op_threads is not None:
        return speed.intra_op_threads
    if not spec or not isinstance(spec.get("layers"), list):
        return None
    types = {layer.get("type") for layer in spec["layers"] if isinstance(layer, Mapping)}
    return None if types & CONVOLUTIONS else 1


def estimated_step_seconds(flops_per_sample: float, batch_size: int, cores: int | None = None) -> float:
    """Seconds one training batch should take: forward and backward (3x the forward work)."""
    cores = max(1, cores or os.cpu_count() or 1)
    return 3.0 * flops_per_sample * batch_size / (FLOPS_PER_CORE * cores) + STEP_OVERHEAD_SECONDS


def choose_steps_per_execution(flops_per_sample: float, batch_size: int, steps_per_epoch: int,
                               cores: int | None = None, fixed: int | None = None) -> int:
    """Batches per call: `fixed` if given, else as many as fit in TARGET_CALL_SECONDS, at most
    MAX_STEPS_PER_EXECUTION and leaving MIN_CALLS_PER_EPOCH calls per epoch; at least 1."""
    if fixed is not None:
        return max(1, int(fixed))
    step = estimated_step_seconds(flops_per_sample, batch_size, cores)
    by_time = math.floor(TARGET_CALL_SECONDS / step) if step > 0 else MAX_STEPS_PER_EXECUTION
    by_points = steps_per_epoch // MIN_CALLS_PER_EPOCH
    return max(1, min(MAX_STEPS_PER_EXECUTION, by_time, by_points))
